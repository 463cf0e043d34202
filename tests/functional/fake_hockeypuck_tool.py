r"""A fake of the snap's tools `hockeypuck.load` and `hockeypuck.dump`, run by the fake `snap run`.

`python -S -I fake_hockeypuck_tool.py APP ARGS...` (the executables `write_apps` puts into the
directory the fake `snap run` looks in) behaves as the 2.3.3 tools do as far as the charm can
tell (../shared/reference/hockeypuck-2.3.3/tools.md):

- the config file $SNAP_COMMON/hockeypuck.conf must exist (`Error loading configuration file`);
- the prefix tree is locked by the daemon: while the unit `snap.hockeypuck.hockeypuck.service`
  is active in the fake systemctl's state, the tool dies with `resource temporarily
  unavailable` and a Go stack trace, writing nothing;
- `load FILE|GLOB...` expands Go glob patterns (with `\` escapes), splits each file into keys
  (public-key packet to the next one), adds new ones to the database and the prefix tree and
  logs, at INFO level unless the config's `loglevel` hides it, `processing file`, `found N keys`,
  `inserted N, updated 0 keys`, and duplicates at ERROR level; a file that is not OpenPGP is
  only logged (`error reading key`), exit 0;
- `dump -path DIR -count N` writes the keys listed in the prefix tree into
  DIR/hkp-dump-NNNN.pgp, N a file; a missing DIR is an error; it logs nothing at INFO level.

Environment: `SNAP_COMMON` (set by the fake snap run), `FAKE_SNAP_ROOT` (the machine's root on
the host), `FAKE_SYSTEMCTL_STATE` (the fake systemctl's state directory: the lock, and the
tool's run is logged into its call log as `snap-run<TAB>APP<TAB>ARGS...`, so a test sees the
order of systemctl calls and tool runs), `FAKE_TOOL_FAIL` (`load`, `load:<file name>` or
`dump`: die with a database error, after writing the first dump file). The database (the
`keys` table) is `FAKE_SNAP_ROOT/fake-database.json`, {md5: base64 key}; the prefix tree is
`$SNAP_COMMON/ptree/digests.json`, a list of md5s.
"""

import base64
import fcntl
import glob
import hashlib
import json
import os
import re
import sys

SERVICE = "snap.hockeypuck.hockeypuck.service"
SNAP_APPS = ("load", "dump")
_LEVELS = {"trace": 6, "debug": 5, "info": 4, "warning": 3, "warn": 3, "error": 2, "fatal": 1}


def write_apps(directory: str) -> None:
    """Put `hockeypuck.load` and `hockeypuck.dump` stand-ins into `directory`."""
    os.makedirs(directory, exist_ok=True)
    for app in SNAP_APPS:
        path = os.path.join(directory, f"hockeypuck.{app}")
        with open(path, "w") as file:
            file.write(f'#!/bin/sh\nexec "{sys.executable}" -S -I "{__file__}" {app} "$@"\n')
        os.chmod(path, 0o755)  # noqa: S103


class ToolDiedError(Exception):
    """cmd.Die: the error printed with %+v (message, then the stack), exit 1."""

    def __init__(self, message: str, frame: str):
        super().__init__(message)
        self.frame = frame


def _host(snap_path: str) -> str:
    return os.path.join(os.environ["FAKE_SNAP_ROOT"], snap_path.lstrip("/"))


def _common() -> str:
    return _host(os.environ["SNAP_COMMON"])


def _log(level: str, message: str) -> None:
    if _LEVELS[level] <= _configured_level():
        escaped = message.replace('"', '\\"')
        print(f'time="2026-11-26T02:52:04Z" level={level} msg="{escaped}"', file=sys.stderr)


def _configured_level() -> int:
    with open(os.path.join(_common(), "hockeypuck.conf")) as file:
        found = re.search(r'^loglevel\s*=\s*"([A-Za-z]+)"', file.read(), re.MULTILINE)
    return _LEVELS.get(found[1].lower(), 4) if found else 4


def _read_json(path: str, default: object) -> object:
    try:
        with open(path) as file:
            return json.load(file)
    except FileNotFoundError:
        return default


def _write_json(path: str, value: object) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        json.dump(value, file)


def _database_path() -> str:
    return os.path.join(os.environ["FAKE_SNAP_ROOT"], "fake-database.json")


def _tree_path() -> str:
    return os.path.join(_common(), "ptree", "digests.json")


def _check_lock(app: str, argv: list[str]) -> None:
    """Die as the tools do while the daemon holds the tree; log the run into the call log."""
    state = os.environ["FAKE_SYSTEMCTL_STATE"]
    descriptor = os.open(os.path.join(state, "lock"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        with open(os.path.join(state, "calls.log"), "a") as file:
            file.write("\t".join(["snap-run", app, *argv]) + "\n")
        try:
            with open(os.path.join(state, "units")) as file:
                lines = file.read().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            name, active, *_ = line.split()
            if name == SERVICE and active == "1":
                raise ToolDiedError(
                    "resource temporarily unavailable",
                    "hockeypuck/conflux/recon/leveldb.(*prefixTree).Create",
                )
    finally:
        os.close(descriptor)


def _maybe_fail(what: str) -> None:
    if os.environ.get("FAKE_TOOL_FAIL") == what:
        raise ToolDiedError(
            'pq: password authentication failed for user "relation-7"', "main.load"
        )


def split_keys(data: bytes) -> list[bytes]:
    """The keys in a binary keyring: each from a public-key packet to the next one."""
    keys: list[bytes] = []
    offset = 0
    while offset < len(data):
        octet = data[offset]
        if not octet & 0x80:
            raise ValueError("openpgp: invalid data: tag byte does not have MSB set")
        if octet & 0x40:
            tag, first = octet & 0x3F, data[offset + 1]
            if first < 192:
                header, length = 2, first
            elif first < 224:
                header, length = 3, ((first - 192) << 8) + data[offset + 2] + 192
            else:
                header, length = 6, int.from_bytes(data[offset + 2 : offset + 6], "big")
        else:
            tag, size = (octet >> 2) & 0x0F, 1 << (octet & 0x03)
            header = 1 + size
            length = int.from_bytes(data[offset + 1 : offset + header], "big")
        end = offset + header + length
        if end > len(data):
            raise ValueError("unexpected EOF")
        if tag == 6:
            keys.append(b"")
        if not keys:
            raise ValueError("openpgp: invalid data: no public key packet first")
        keys[-1] += data[offset:end]
        offset = end
    return keys


def _go_glob(pattern: str) -> list[str]:
    r"""Go's filepath.Glob on the host (a `\c` escape matches c)."""
    converted, escaped = [], False
    for char in pattern:
        if escaped:
            converted.append(glob.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            converted.append(char)
    host_pattern = os.path.join(
        glob.escape(os.environ["FAKE_SNAP_ROOT"]), "".join(converted).lstrip("/")
    )
    root = os.environ["FAKE_SNAP_ROOT"].rstrip("/")
    return ["/" + os.path.relpath(path, root) for path in sorted(glob.glob(host_pattern))]


def load(argv: list[str]) -> None:
    """hockeypuck-load FILE|GLOB..."""
    if not argv:
        _log("error", "usage: hockeypuck-load [flags] <file1> [file2 .. fileN]")
        raise ToolDiedError("missing PGP key file arguments", "main.main")
    _check_lock("hockeypuck.load", argv)
    _maybe_fail("load")
    database = _read_json(_database_path(), {})
    tree = _read_json(_tree_path(), [])
    assert isinstance(database, dict)
    assert isinstance(tree, list)
    try:
        for argument in argv:
            for file in _go_glob(argument):
                _load_file(file, database, tree)
    finally:
        _write_json(_database_path(), database)
        _write_json(_tree_path(), tree)
    _log("info", "recon processing: stopping")
    _log("info", "recon peer: stopped")


def _load_file(file: str, database: dict, tree: list) -> None:
    _log("info", f'processing file "{file}"...')
    _maybe_fail(f"load:{os.path.basename(file)}")
    try:
        with open(_host(file), "rb") as handle:
            keys = split_keys(handle.read())
    except (OSError, ValueError) as error:
        _log("error", f"error reading key: {error}")
        return
    _log("info", f'found {len(keys)} keys in "{file}"...')
    inserted = duplicates = 0
    for key in keys:
        digest = hashlib.md5(key).hexdigest()  # noqa: S324 - Hockeypuck's key digest
        if digest in database:
            duplicates += 1
            continue
        database[digest] = base64.b64encode(key).decode()
        tree.append(digest)
        inserted += 1
    if duplicates:
        _log(
            "error",
            f'some keys failed to insert from "{file}": {duplicates} duplicates, 0 errors, '
            "0 warnings; errors: []",
        )
    if inserted:
        _log("info", f'inserted {inserted}, updated 0 keys from "{file}" in 1.3ms')


def dump(argv: list[str]) -> None:
    """hockeypuck-dump [-path DIR] [-count N]."""
    options = {"-path": ".", "-count": "15000"}
    for index in range(0, len(argv), 2):
        options[argv[index]] = argv[index + 1]
    _check_lock("hockeypuck.dump", argv)
    database = _read_json(_database_path(), {})
    tree = _read_json(_tree_path(), [])
    assert isinstance(database, dict)
    assert isinstance(tree, list)
    count = int(options["-count"])
    for number, start in enumerate(range(0, len(tree), count)):
        name = os.path.join(options["-path"], f"hkp-dump-{number:04d}.pgp")
        try:
            with open(_host(name), "wb") as file:
                for digest in tree[start : start + count]:
                    if digest in database:
                        file.write(base64.b64decode(database[digest]))
        except FileNotFoundError:
            raise ToolDiedError(
                f"open {name}: no such file or directory", "main.writeKeys"
            ) from None
        _maybe_fail("dump")


def main(app: str, argv: list[str]) -> int:
    """Run one tool; return its exit code."""
    config = os.path.join(os.environ["SNAP_COMMON"], "hockeypuck.conf")
    try:
        if not os.path.exists(_host(config)):
            print(f"Error loading configuration file '{config}'.", file=sys.stderr)
            raise ToolDiedError(
                f"open {config}: no such file or directory", "hockeypuck/server/cmd.Init"
            )
        {"load": load, "dump": dump}[app](argv)
    except ToolDiedError as died:
        print(
            f"{died}\n{died.frame}\n"
            f"\t/build/hockeypuck/src/hockeypuck/server/cmd/hockeypuck-{app}/main.go:47\n"
            "runtime.goexit\n\t/usr/lib/go-1.24/src/runtime/asm_amd64.s:1700",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
