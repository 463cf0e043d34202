"""A fake `snap` command: the two command lines a charm shells out for, against the fake snapd.

`python fake_snap_cli.py SOCKET LOG ARGS...` (through the `snap` wrapper on PATH):

- `snap install --dangerous FILE`: sideloads FILE (private route of the fake snapd, standing in
  for snapd's multipart upload), prints `<name> <version> installed`;
- `snap refresh [--amend] [--channel=C | --channel C] NAME`: the real REST call, with `amend`.
- `snap run NAME.APP ARGS...`: runs the app's stand-in, the executable `NAME.APP` in the
  directory named by the environment variable `FAKE_SNAP_APPS` (a test puts a fake tool there,
  see fake_hockeypuck_tool.py), with ARGS and the environment plus `SNAP_NAME` and
  `SNAP_COMMON` as snapd sets them; its output and exit code are the command's. Like the real
  command, it fails when the snap is not installed or has no such app.

Errors go to stderr as `error: ...` with exit code 1, as the real CLI does. Every invocation is
appended to LOG (one JSON list per line).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str):
        super().__init__("localhost", timeout=30)
        self._socket_path = socket_path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._socket_path)


class CliError(Exception):
    """What the real CLI prints after `error: `."""


def _call(socket_path: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    connection = _UnixConnection(socket_path)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload else {}
        connection.request(method, path, body=payload, headers=headers)
        document = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    if document["type"] == "error":
        result = document["result"]
        if result.get("kind") == "snap-local":
            raise CliError(
                f"local snap {path.rsplit('/', 1)[-1]!r} is unknown to the store, "
                "use --amend to proceed anyway"
            )
        raise CliError(result["message"])
    if document["type"] == "async":
        while True:
            change = _call(socket_path, "GET", f"/v2/changes/{document['change']}")
            if change["ready"]:
                if change["status"] != "Done":
                    raise CliError(change.get("err", change["status"]))
                return change
            time.sleep(0.05)
    return document["result"]


def _installed(socket_path: str, name: str) -> str:
    info = _call(socket_path, "GET", f"/v2/snaps/{name}")
    return f"{info['name']} {info['version']}"


def main(socket_path: str, log: Path, argv: list[str]) -> int:
    """Run one snap command line; return its exit code."""
    with log.open("a") as file:
        file.write(json.dumps(argv) + "\n")
    try:
        if argv[:1] == ["run"] and len(argv) >= 2:
            return _run_app(socket_path, argv[1], argv[2:])
        if len(argv) == 3 and argv[:2] == ["install", "--dangerous"]:
            path = Path(argv[2]).absolute()
            change = _call(socket_path, "POST", "/x-test/sideload", {"path": str(path)})
            name = change["data"]["snap-names"][0]
            print(f"{_installed(socket_path, name)} installed")
            return 0
        if argv[:1] == ["refresh"] and len(argv) >= 2:
            options = argv[1:-1]
            name = argv[-1]
            body: dict[str, Any] = {"action": "refresh", "amend": "--amend" in options}
            for index, option in enumerate(options):
                if option.startswith("--channel="):
                    body["channel"] = option.split("=", 1)[1]
                elif option == "--channel":
                    body["channel"] = options[index + 1]
            _call(socket_path, "POST", f"/v2/snaps/{name}", body)
            print(f"{_installed(socket_path, name)} refreshed")
            return 0
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"fake snap: unsupported command line {argv}", file=sys.stderr)
    return 1


def _run_app(socket_path: str, snap_app: str, args: list[str]) -> int:
    """`snap run NAME.APP ARGS...`: exec the app's stand-in (it never returns on success)."""
    name, _, app = snap_app.partition(".")
    app = app or name
    try:
        _call(socket_path, "GET", f"/v2/snaps/{name}")
    except CliError:
        raise CliError(
            f"cannot find current revision for snap {name}: readlink /snap/{name}/current: "
            "no such file or directory"
        ) from None
    executable = Path(os.environ.get("FAKE_SNAP_APPS", "/nonexistent")) / f"{name}.{app}"
    if not os.access(executable, os.X_OK):
        raise CliError(f'cannot find app "{app}" in "{name}"')
    environment = {**os.environ, "SNAP_NAME": name, "SNAP_COMMON": f"/var/snap/{name}/common"}
    sys.stdout.flush()
    os.execve(executable, [str(executable), *args], environment)  # noqa: S606
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]), sys.argv[3:]))
