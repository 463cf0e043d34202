"""load-keys and dump-keys: the logic with fakes (every path), then through the charm."""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ops import testing

import bulk_actions
from bulk_actions import (
    ActionFailedError,
    count_public_keys,
    dump_keys,
    go_glob_quote,
    load_keys,
    parse_load_output,
)
from tests.unit.conftest import (
    FakeBlocklist,
    FakeSnapd,
    FakeSystemd,
    base_state,
    ready_state,
)
from tests.unit.fake_service import FakeService

COMMON = "/var/snap/hockeypuck/common"
KEYS = Path(__file__).parents[1] / "data/hockeypuck/keys"
JUJU_KEY = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
NOW = datetime(2026, 11, 26, 2, 51, 53, tzinfo=UTC)


def assert_juju_results(results: dict[str, Any]) -> None:
    for key, value in results.items():
        assert JUJU_KEY.fullmatch(key), key
        assert isinstance(value, str), f"{key}: {value!r}"


def dearmor(path: Path) -> bytes:
    """The binary packets of an ASCII-armored key (RFC 4880 section 6.2)."""
    lines = path.read_text().splitlines()
    body = lines[lines.index("") + 1 :]
    data = [line for line in body if line and not line.startswith(("=", "-----"))]
    return base64.b64decode("".join(data))


def keyring(*names: str) -> bytes:
    """A binary keyring such as hockeypuck-dump writes: keys one after the other."""
    return b"".join(dearmor(KEYS / name) for name in names)


def load_log(path: str, found: int, inserted: int, updated: int = 0) -> str:
    """hockeypuck-load's output for one file, as logged by 2.3.3 (tools.md, case 7)."""
    prefix = 'time="2026-11-26T02:52:04Z" level=info msg='
    quoted = path.replace('"', '\\"')
    lines = [
        f'{prefix}"processing file \\"{quoted}\\"..."',
        f'{prefix}"found {found} keys in \\"{quoted}\\"..."',
        f'{prefix}"bulk insertion skipped (small number of keys); reverting to normal insertion"',
    ]
    if inserted or updated:
        lines.append(
            f'{prefix}"inserted {inserted}, updated {updated} keys from \\"{quoted}\\" in 5.7ms"'
        )
    lines += [
        f'{prefix}"recon processing: stopping" label="recon 127.0.0.1:21370"',
        f'{prefix}"recon peer: stopped" label="recon 127.0.0.1:21370"',
    ]
    return "\n".join(lines)


def duplicates_log(path: str, duplicates: int) -> str:
    """The second load of the same file (tools.md, case 8)."""
    return "\n".join(
        [
            f'time="t" level=info msg="processing file \\"{path}\\"..."',
            f'time="t" level=info msg="found {duplicates} keys in \\"{path}\\"..."',
            f'time="t" level=error msg="some keys failed to insert from \\"{path}\\": '
            f'{duplicates} duplicates, 0 errors, 0 warnings; errors: []"',
        ]
    )


class Machine(FakeService):
    """The service and the snap's tools, recording what happened in order."""

    def __init__(self, common: Path):
        super().__init__()
        self.common = common
        self.outputs: dict[str, str] = {}  # load argument -> output
        self.fail_on: str | None = None  # load argument, or "dump"
        self.keys_in_database = [3, 5]  # what count_keys answers, in turn
        self.dump_files: dict[str, bytes] = {}
        self.dump_delay = 0.0

    def load(self, argument: str) -> str:
        self.events.append(f"load {argument}")
        if argument == self.fail_on:
            raise RuntimeError("load failed: resource temporarily unavailable")
        return self.outputs.get(argument, "")

    def dump(self, directory: str, count: int) -> str:
        self.events.append(f"dump {directory} {count}")
        host = self.common / Path(directory).relative_to(COMMON)
        assert host.is_dir(), "hockeypuck-dump never creates its directory"
        for name, content in self.dump_files.items():
            (host / name).write_bytes(content)
            time.sleep(self.dump_delay)
        if self.fail_on == "dump":
            raise RuntimeError("dump failed: pq: connection refused")
        return ""

    def count_keys(self) -> int:
        return self.keys_in_database.pop(0)


@pytest.fixture
def common(tmp_path: Path) -> Path:
    directory = tmp_path / "machine" / COMMON.lstrip("/")
    directory.mkdir(parents=True)
    (directory / "hockeypuck.conf").write_text("config")
    return directory


@pytest.fixture
def machine(common: Path) -> Machine:
    return Machine(common)


@pytest.fixture
def logs() -> list[str]:
    return []


def load(machine: Machine, path: str, logs: list[str] | None = None, **kwargs: Any):
    ticks = iter([100.0, *[100.0 + 30.0 * n for n in range(1, 50)]])
    kwargs.setdefault("count_keys", machine.count_keys)
    return load_keys(
        path,
        common_dir=machine.common,
        stop_service=machine.stop,
        start_service=machine.start,
        run_load=machine.load,
        log=(logs if logs is not None else []).append,
        clock=lambda: next(ticks),
        **kwargs,
    )


def put(common: Path, relative: str, content: bytes = b"") -> Path:
    path = common / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


# --- load-keys ---------------------------------------------------------------------------------


def test_load_pinned_results_and_sequence(machine: Machine, common: Path, logs: list[str]):
    put(common, "import/hkp-dump-0001.pgp")
    put(common, "import/hkp-dump-0000.pgp")
    first, second = f"{COMMON}/import/hkp-dump-0000.pgp", f"{COMMON}/import/hkp-dump-0001.pgp"
    machine.outputs = {first: load_log(first, 2, 2), second: load_log(second, 3, 2, 1)}

    results = load(machine, f"{COMMON}/import/*.pgp", logs)

    assert results == {
        "result": "loaded",
        "files": "2",
        "files-loaded": "2",
        "duration-seconds": "90.0",
        "keys-found": "5",
        "keys-inserted": "4",
        "keys-updated": "1",
        "keys-already-stored": "0",
        "keys-rejected": "0",
        "counted-by": "the load tool",
        "key-count": "5",
    }
    assert_juju_results(results)
    assert machine.events == ["stop", f"load {first}", f"load {second}", "start"]
    assert any("hours" in line for line in logs)
    assert f"loading file 1 of 2: {first}" in logs
    assert any(
        line.startswith("hkp-dump-0001.pgp: 3 keys, 2 inserted, 1 updated") for line in logs
    )


def test_load_accepts_a_directory_and_relative_paths(machine: Machine, common: Path):
    put(common, "import/a.pgp")
    put(common, "import/notes.txt")
    put(common, "import/sub/b.pgp")

    load(machine, "import")

    assert machine.events == ["stop", f"load {COMMON}/import/a.pgp", "start"]


def test_load_single_file_and_dot_dot_that_stays_inside(machine: Machine, common: Path):
    put(common, "import/a.pgp")

    load(machine, f"{COMMON}/import/../import/./a.pgp")

    assert machine.events[1] == f"load {COMMON}/import/a.pgp"


def test_load_passes_paths_quoted_for_go_glob(machine: Machine, common: Path):
    put(common, "import/keys[1]*.pgp")

    load(machine, "import")

    # Go's Match: `\c` matches c; a `]` outside a class is literal.
    assert machine.events[1] == f"load {COMMON}/import/keys\\[1]\\*.pgp"


def test_go_glob_quote():
    assert go_glob_quote("/a/b.pgp") == "/a/b.pgp"
    assert go_glob_quote("/a/[x]?*\\.pgp") == "/a/\\[x]\\?\\*\\\\.pgp"


def test_load_follows_symlinks_inside_the_common_dir(machine: Machine, common: Path):
    put(common, "dumps/2026/a.pgp")
    (common / "import").symlink_to("dumps/2026")

    load(machine, "import/*.pgp")

    assert machine.events[1] == f"load {COMMON}/dumps/2026/a.pgp"


def test_load_same_file_twice_through_a_link_is_loaded_once(machine: Machine, common: Path):
    put(common, "import/a.pgp")
    (common / "import/b.pgp").symlink_to("a.pgp")

    results = load(machine, "import/*.pgp")

    assert results["files"] == "1"


@pytest.mark.parametrize(
    "path",
    [
        "/home/ubuntu/dump/*.pgp",
        "/tmp/hkp-dump-0000.pgp",
        f"{COMMON}/../../../../etc/*.pgp",
        f"{COMMON}/../current/keys.pgp",
        "../../../../home/ubuntu/a.pgp",
        "/var/snap/hockeypuck/commonplace/a.pgp",
    ],
)
def test_load_refuses_paths_outside_the_common_dir(machine: Machine, path: str):
    with pytest.raises(ActionFailedError) as failure:
        load(machine, path)

    message = failure.value.message
    assert f"is outside {COMMON}" in message
    assert "juju scp dump/*.pgp hockeypuck/0:/tmp/" in message
    assert f"sudo mv /tmp/*.pgp {COMMON}/import/" in message
    assert f"path={COMMON}/import/*.pgp" in message
    assert machine.events == []


def test_load_refusal_names_this_unit(machine: Machine):
    with pytest.raises(ActionFailedError) as failure:
        load(machine, "/home/ubuntu/a.pgp", unit="keyserver/3")

    assert "`juju scp dump/*.pgp keyserver/3:/tmp/` then `juju ssh keyserver/3 -- '" in (
        failure.value.message
    )


def test_load_refuses_a_symlinked_file_escaping_the_common_dir(
    machine: Machine, common: Path, tmp_path: Path
):
    outside = put(tmp_path / "elsewhere", "secret.pgp")
    put(common, "import/good.pgp")
    (common / "import/evil.pgp").symlink_to(outside)

    with pytest.raises(ActionFailedError) as failure:
        load(machine, "import/*.pgp")

    assert failure.value.message.startswith(
        f"{COMMON}/import/evil.pgp resolves to {outside}, outside {COMMON}: copy the files"
    )
    assert machine.events == []


def test_load_refuses_a_symlinked_directory_escaping_the_common_dir(
    machine: Machine, common: Path, tmp_path: Path
):
    put(tmp_path / "elsewhere", "a.pgp")
    (common / "import").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(ActionFailedError, match="resolves to .*elsewhere/a.pgp, outside"):
        load(machine, f"{COMMON}/import")

    assert machine.events == []


def test_load_refuses_dot_dot_through_a_symlink(machine: Machine, common: Path, tmp_path: Path):
    """`link/..` is the link target's parent for the kernel, whatever it looks like."""
    put(tmp_path / "elsewhere/deep", "x")
    put(tmp_path / "elsewhere", "a.pgp")
    (common / "link").symlink_to(tmp_path / "elsewhere/deep")

    with pytest.raises(ActionFailedError, match="outside"):
        load(machine, "link/../a.pgp")

    assert machine.events == []


def test_load_with_no_matching_file_fails_without_stopping(machine: Machine, common: Path):
    (common / "import").mkdir()

    with pytest.raises(ActionFailedError) as failure:
        load(machine, "import/*.pgp")

    assert failure.value.message == (
        f"no keydump file matches {COMMON}/import/*.pgp; nothing was done"
    )
    assert machine.events == []


def test_load_empty_directory_says_what_a_directory_means(machine: Machine, common: Path):
    put(common, "import/readme.txt")

    with pytest.raises(ActionFailedError, match=r"a directory stands for the \*\.pgp files"):
        load(machine, "import")


def test_load_missing_file_says_where_to_put_files(machine: Machine):
    with pytest.raises(ActionFailedError) as failure:
        load(machine, "import/hkp-dump-0000.pgp")

    assert failure.value.message.startswith(f"{COMMON}/import/hkp-dump-0000.pgp does not exist")
    assert "juju scp" in failure.value.message
    assert machine.events == []


@pytest.mark.parametrize(
    ("path", "message"),
    [("", "the path is empty"), ("  ", "the path is empty"), ("a\nb", "control characters")],
)
def test_load_refuses_bad_input(machine: Machine, path: str, message: str):
    with pytest.raises(ActionFailedError, match=message):
        load(machine, path)
    assert machine.events == []


def test_load_tool_failure_starts_the_service_again(machine: Machine, common: Path):
    for name in ("a", "b", "c"):
        put(common, f"import/{name}.pgp")
    first = f"{COMMON}/import/a.pgp"
    machine.outputs = {first: load_log(first, 2, 2)}
    machine.fail_on = f"{COMMON}/import/b.pgp"

    with pytest.raises(ActionFailedError) as failure:
        load(machine, "import/*.pgp")

    assert machine.events == ["stop", f"load {first}", f"load {COMMON}/import/b.pgp", "start"]
    assert failure.value.message == (
        f"the load failed on {COMMON}/import/b.pgp (load failed: resource temporarily "
        "unavailable); 1 of 3 file(s) were loaded before it; Hockeypuck was started again. "
        "Loading the same files again is safe (stored keys are skipped as duplicates)"
    )
    assert failure.value.results["result"] == "partly loaded"
    assert failure.value.results["files-loaded"] == "1"
    assert failure.value.results["keys-inserted"] == "2"


def test_load_tool_and_start_failing_says_both(machine: Machine, common: Path):
    put(common, "import/a.pgp")
    machine.fail_on = f"{COMMON}/import/a.pgp"
    machine.start_fails = True

    with pytest.raises(ActionFailedError) as failure:
        load(machine, "import/a.pgp")

    assert failure.value.message == (
        f"the load failed on {COMMON}/import/a.pgp (load failed: resource temporarily "
        "unavailable); 0 of 1 file(s) were loaded before it; could not start Hockeypuck "
        "again: systemctl start failed"
    )
    assert machine.events[-1] == "start"


def test_load_start_failure_after_success_fails_the_action(machine: Machine, common: Path):
    put(common, "import/a.pgp")
    machine.start_fails = True

    with pytest.raises(ActionFailedError) as failure:
        load(machine, "import/a.pgp")

    assert failure.value.message == "could not start Hockeypuck again: systemctl start failed"


def test_load_stop_failure_loads_nothing_and_tries_to_start(machine: Machine, common: Path):
    put(common, "import/a.pgp")
    machine.stop_fails = True

    with pytest.raises(ActionFailedError) as failure:
        load(machine, "import/a.pgp")

    assert failure.value.message == (
        "could not stop Hockeypuck (systemctl stop failed); nothing was done"
    )
    assert machine.events == ["stop", "start"]


def test_load_unreadable_file_is_reported_after_the_others(machine: Machine, common: Path):
    put(common, "import/a.pgp")
    put(common, "import/b.pgp")
    bad, good = f"{COMMON}/import/a.pgp", f"{COMMON}/import/b.pgp"
    machine.outputs = {
        bad: (
            f'time="t" level=info msg="processing file \\"{bad}\\"..."\n'
            'time="t" level=error msg="error reading key: openpgp: invalid data: tag byte does '
            'not have MSB set"'
        ),
        good: load_log(good, 1, 1),
    }

    with pytest.raises(ActionFailedError) as failure:
        load(machine, "import")

    assert machine.events == ["stop", f"load {bad}", f"load {good}", "start"]
    assert failure.value.message == (
        "1 of 2 file(s) could not be read (a.pgp: error reading key: openpgp: invalid data: "
        "tag byte does not have MSB set); the other 1 were loaded; Hockeypuck was started again"
    )
    assert failure.value.results["keys-inserted"] == "1"


def test_load_again_counts_keys_already_stored(machine: Machine, common: Path):
    put(common, "import/a.pgp")
    path = f"{COMMON}/import/a.pgp"
    machine.outputs = {path: duplicates_log(path, 2)}

    results = load(machine, "import/a.pgp")

    assert results["keys-found"] == "2"
    assert results["keys-inserted"] == "0"
    assert results["keys-already-stored"] == "2"


def test_load_counts_the_database_when_the_log_level_hides_the_counts(
    machine: Machine, common: Path
):
    put(common, "import/a.pgp")
    machine.keys_in_database = [1000, 16000]

    results = load(machine, "import/a.pgp")

    assert results["keys-inserted"] == "15000"
    assert results["key-count"] == "16000"
    assert results["counted-by"].startswith("database key count before and after")
    assert "keys-found" not in results


def test_load_without_any_count_says_unknown(machine: Machine, common: Path):
    put(common, "import/a.pgp")

    def unreachable() -> int:
        raise RuntimeError("cannot connect to the database")

    results = load(machine, "import/a.pgp", count_keys=unreachable)

    assert results["keys-inserted"] == "unknown"
    assert results["key-count"] == "unknown"
    assert machine.events[-1] == "start"


def test_load_tells_to_rebuild_the_other_units_trees(machine: Machine, common: Path):
    put(common, "import/a.pgp")

    assert "note" not in load(machine, "import/a.pgp")
    machine.keys_in_database = [0, 0]
    assert "rebuild-prefix-tree" in load(machine, "import/a.pgp", other_units=2)["note"]


def test_parse_load_output_of_a_real_run():
    output = "\n".join(
        load_log(f"<workdir>/dump2/hkp-dump-000{n}.pgp", keys, keys)
        for n, keys in enumerate([2, 2, 1])
    )
    counts = parse_load_output(output)
    assert (counts.reported, counts.found, counts.inserted, counts.updated) == (True, 5, 5, 0)
    assert counts.file_errors == []


def test_parse_load_output_counts_rejected_keys():
    counts = parse_load_output(
        'level=error msg="validation error, ignoring: no valid self-signature"\n'
        'level=error msg="some keys failed to insert from \\"/d/f-2024 1.pgp\\": 1 duplicates, '
        '2 errors, 0 warnings; errors: [...]"\n'
        'level=error msg="some keys failed to insert from \\"g\\": 1234 duplicates, 0 errors, '
        '0 warnings; errors: []"'
    )
    assert (counts.reported, counts.duplicates, counts.rejected) == (False, 1235, 3)


# --- dump-keys ---------------------------------------------------------------------------------


def dump(machine: Machine, path: str = "", keys_per_file: object = 15000, **kwargs: Any):
    ticks = iter([200.0 + 10.0 * n for n in range(100)])
    kwargs.setdefault("count_keys", machine.count_keys)
    kwargs.setdefault("log", [].append)
    return dump_keys(
        path,
        keys_per_file,
        common_dir=machine.common,
        stop_service=machine.stop,
        start_service=machine.start,
        run_dump=machine.dump,
        clock=lambda: next(ticks),
        now=lambda: NOW,
        **kwargs,
    )


def test_dump_pinned_results_and_sequence(machine: Machine, common: Path):
    machine.dump_files = {
        "hkp-dump-0000.pgp": keyring("alice.pub.asc", "bob.pub.asc"),
        "hkp-dump-0001.pgp": keyring("carol.pub.asc"),
    }
    machine.keys_in_database = [3]

    results = dump(machine, "backups/2026", 2)

    target = f"{COMMON}/backups/2026"
    size = sum(len(content) for content in machine.dump_files.values())
    assert results == {
        "result": "dumped",
        "path": target,
        "files": "2",
        "bytes": str(size),
        "keys-per-file": "2",
        "key-count": "3",
        "database-key-count": "3",
        "duration-seconds": "10.0",
    }
    assert_juju_results(results)
    assert machine.events == ["stop", f"dump {target} 2", "start"]


def test_dump_default_directory_is_named_after_the_time(machine: Machine, common: Path):
    results = dump(machine)

    target = f"{COMMON}/dump/20261126T025153Z"
    assert results["path"] == target
    assert machine.events == ["stop", f"dump {target} 15000", "start"]
    assert (common / "dump/20261126T025153Z").is_dir()
    assert (results["files"], results["key-count"]) == ("0", "0")


def test_dump_into_an_existing_empty_directory(machine: Machine, common: Path):
    (common / "out").mkdir()
    machine.dump_files = {"hkp-dump-0000.pgp": keyring("alice.pub.asc")}

    results = dump(machine, f"{COMMON}/out")

    assert results["key-count"] == "1"


def test_dump_warns_when_the_tree_misses_keys(machine: Machine):
    machine.dump_files = {"hkp-dump-0000.pgp": keyring("alice.pub.asc", "bob.pub.asc")}
    machine.keys_in_database = [5]

    results = dump(machine, "out")

    assert results["warning"] == (
        "the dump holds 2 keys but the database 5: hockeypuck-dump exports the keys listed in "
        "this unit's prefix tree, which is out of date; run rebuild-prefix-tree, then dump again"
    )


def test_dump_without_a_database_count(machine: Machine):
    def unreachable() -> int:
        raise RuntimeError("refused")

    results = dump(machine, "out", count_keys=unreachable)

    assert "database-key-count" not in results
    assert "warning" not in results


def test_dump_reports_progress_while_the_tool_runs(machine: Machine):
    machine.dump_files = {f"hkp-dump-000{n}.pgp": keyring("alice.pub.asc") for n in range(3)}
    machine.dump_delay = 0.05
    logs: list[str] = []

    dump(machine, "out", 1, log=logs.append, progress_interval=0.01)

    assert any("file(s) written so far (hkp-dump-000" in line for line in logs)
    assert logs[-1] == f"dumped 3 keys into 3 file(s) in {COMMON}/out"


def test_dump_refuses_a_directory_that_is_not_empty(machine: Machine, common: Path):
    put(common, "out/hkp-dump-0000.pgp", b"old")

    with pytest.raises(ActionFailedError, match=f"{COMMON}/out is not empty"):
        dump(machine, "out")

    assert machine.events == []
    assert (common / "out/hkp-dump-0000.pgp").read_bytes() == b"old"


def test_dump_refuses_a_file(machine: Machine, common: Path):
    put(common, "out", b"")

    with pytest.raises(ActionFailedError, match="exists and is not a directory"):
        dump(machine, "out")


@pytest.mark.parametrize(
    "path", ["/tmp/dump", f"{COMMON}/../../../../tmp/dump", "../dump", "/var/snap/hockeypuck/x"]
)
def test_dump_refuses_paths_outside_the_common_dir(machine: Machine, path: str):
    with pytest.raises(ActionFailedError) as failure:
        dump(machine, path)

    assert f"is outside {COMMON}" in failure.value.message
    assert f"{COMMON}/dump/<name>" in failure.value.message
    assert machine.events == []


def test_dump_refuses_a_symlink_escaping_the_common_dir(
    machine: Machine, common: Path, tmp_path: Path
):
    (tmp_path / "elsewhere").mkdir()
    (common / "out").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(ActionFailedError, match="resolves to .*elsewhere/new"):
        dump(machine, "out/new")

    assert machine.events == []
    assert not (tmp_path / "elsewhere/new").exists()


@pytest.mark.parametrize("path", [COMMON, ".", f"{COMMON}/dump/.."])
def test_dump_refuses_the_common_dir_itself(machine: Machine, path: str):
    with pytest.raises(ActionFailedError, match="is the snap's common directory itself"):
        dump(machine, path)


@pytest.mark.parametrize("count", [0, -1, "100", True, 1.5, None])
def test_dump_refuses_bad_keys_per_file(machine: Machine, count: object):
    with pytest.raises(ActionFailedError, match="keys-per-file must be a positive integer"):
        dump(machine, "out", count)
    assert machine.events == []


def test_dump_tool_failure_removes_the_partial_dump_and_starts_again(
    machine: Machine, common: Path
):
    machine.dump_files = {"hkp-dump-0000.pgp": keyring("alice.pub.asc")}
    machine.fail_on = "dump"

    with pytest.raises(ActionFailedError) as failure:
        dump(machine, "backups/new")

    assert failure.value.message == (
        "the dump failed (dump failed: pq: connection refused); the partial dump was removed; "
        "Hockeypuck was started again"
    )
    assert machine.events == ["stop", f"dump {COMMON}/backups/new 15000", "start"]
    assert not (common / "backups/new").exists()


def test_dump_failure_keeps_a_directory_it_did_not_create(machine: Machine, common: Path):
    (common / "out").mkdir()
    machine.dump_files = {"hkp-dump-0000.pgp": b"partial"}
    machine.fail_on = "dump"

    with pytest.raises(ActionFailedError):
        dump(machine, "out")

    assert list((common / "out").iterdir()) == []


def test_dump_stop_failure_removes_the_new_directory(machine: Machine, common: Path):
    machine.stop_fails = True

    with pytest.raises(ActionFailedError, match="could not stop Hockeypuck"):
        dump(machine, "out")

    assert machine.events == ["stop", "start"]
    assert not (common / "out").exists()


def test_dump_start_failure_fails_the_action(machine: Machine):
    machine.start_fails = True

    with pytest.raises(ActionFailedError, match="^could not start Hockeypuck again"):
        dump(machine, "out")


def test_dump_with_an_unparsable_file_says_unknown(machine: Machine):
    machine.dump_files = {"hkp-dump-0000.pgp": b"not openpgp"}

    results = dump(machine, "out")

    assert results["key-count"] == "unknown"
    assert "warning" not in results


# --- counting keys in keyring files ------------------------------------------------------------


def test_count_public_keys_in_real_keys(tmp_path: Path):
    path = put(tmp_path, "k.pgp", keyring("alice.pub.asc", "bob.pub.asc", "carol.pub.asc"))
    assert count_public_keys(path) == 3


def new_format(tag: int, body: bytes, length: bytes | None = None) -> bytes:
    if length is None:
        size = len(body)
        if size < 192:
            length = bytes([size])
        elif size < 8384:
            length = bytes([((size - 192) >> 8) + 192, (size - 192) & 0xFF])
        else:
            length = b"\xff" + size.to_bytes(4, "big")
    return bytes([0xC0 | tag]) + length + body


def test_count_public_keys_new_format_lengths(tmp_path: Path):
    data = (
        new_format(6, b"k" * 10)  # one-octet length
        + new_format(13, b"u" * 300)  # two-octet length
        + new_format(2, b"s" * 9000)  # five-octet length
        + new_format(14, b"s" * 20)  # a subkey is not a key
        + new_format(6, b"k" * 5, length=b"\xff\x00\x00\x00\x05")
        # partial lengths: 2 bytes, then 4 bytes, then a final 1-octet length of 3
        + bytes([0xC6, 0xE1])
        + b"aa"
        + b"\xe2"
        + b"bbbb"
        + b"\x03"
        + b"ccc"
    )
    path = put(tmp_path, "k.pgp", data)
    assert count_public_keys(path) == 3


def test_count_public_keys_old_format_lengths(tmp_path: Path):
    one_octet_key = bytes([0x98, 3]) + b"abc"
    two_octet_key = bytes([0x99, 0, 2]) + b"ab"
    four_octet_user_id = bytes([0xB6, 0, 0, 0, 1]) + b"u"
    indeterminate_key = bytes([0x9B]) + b"rest of the file"
    data = one_octet_key + two_octet_key + four_octet_user_id + indeterminate_key
    path = put(tmp_path, "k.pgp", data)
    assert count_public_keys(path) == 3


@pytest.mark.parametrize(
    "data",
    [b"plain text", bytes([0x98, 10]) + b"short", bytes([0xC6]), bytes([0x99, 0])],
)
def test_count_public_keys_refuses_malformed_files(tmp_path: Path, data: bytes):
    path = put(tmp_path, "k.pgp", data)
    with pytest.raises(ValueError, match=r"k\.pgp|truncated|not an OpenPGP"):
        count_public_keys(path)


def test_count_public_keys_of_an_empty_file(tmp_path: Path):
    assert count_public_keys(put(tmp_path, "k.pgp")) == 0


# --- through the charm (ops.testing) -----------------------------------------------------------

Runner = Callable[[list[str]], subprocess.CompletedProcess[str]]


@pytest.fixture
def tools(monkeypatch: pytest.MonkeyPatch, snapd: FakeSnapd, root: Path) -> dict[str, Runner]:
    """Tool behaviour on top of the fake snapd's `snap run`: per app, what the tool does."""
    behaviour: dict[str, Runner] = {}

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        done = snapd.run(command, **kwargs)
        if command[:2] == ["snap", "run"] and done.returncode == 0:
            app = command[2].split(".", 1)[1]
            if app in behaviour:
                return behaviour[app](command)
        return done

    monkeypatch.setattr(subprocess, "run", run)
    return behaviour


def common_on(root: Path) -> Path:
    return root / COMMON.lstrip("/")


def test_load_keys_action_stops_loads_each_file_and_starts(
    ctx: testing.Context,
    snapd: FakeSnapd,
    systemctl: FakeSystemd,
    blocklist_db: FakeBlocklist,
    tools: dict[str, Runner],
    root: Path,
):
    state = ctx.run(ctx.on.config_changed(), ready_state())
    put(common_on(root), "import/hkp-dump-0000.pgp")
    put(common_on(root), "import/hkp-dump-0001.pgp")

    def load_tool(command: list[str]) -> subprocess.CompletedProcess[str]:
        assert not systemctl.running, "the tool runs only while Hockeypuck is stopped"
        return subprocess.CompletedProcess(command, 0, "", load_log(command[3], 4, 3, 1))

    tools["load"] = load_tool

    ctx.run(ctx.on.action("load-keys", params={"path": f"{COMMON}/import/*.pgp"}), state)

    assert snapd.tool_runs == [
        ["hockeypuck.load", f"{COMMON}/import/hkp-dump-0000.pgp"],
        ["hockeypuck.load", f"{COMMON}/import/hkp-dump-0001.pgp"],
    ]
    assert (systemctl.stops, systemctl.running, systemctl.enabled) == (1, True, True)
    assert ctx.action_results is not None
    assert ctx.action_results["keys-inserted"] == "6"
    assert ctx.action_results["keys-updated"] == "2"
    assert ctx.action_results["files-loaded"] == "2"
    assert "note" not in ctx.action_results
    assert any("hours" in line for line in ctx.action_logs)
    assert any(line.startswith("loading file 2 of 2") for line in ctx.action_logs)


def test_load_keys_action_counts_the_database_without_tool_counts(
    ctx: testing.Context, blocklist_db: FakeBlocklist, snapd: FakeSnapd, root: Path
):
    blocklist_db.stored_keys = {"a", "b"}
    state = ctx.run(ctx.on.config_changed(), ready_state())
    put(common_on(root), "import/a.pgp")

    ctx.run(ctx.on.action("load-keys", params={"path": "import/a.pgp"}), state)

    assert ctx.action_results is not None
    assert ctx.action_results["keys-inserted"] == "0"
    assert ctx.action_results["key-count"] == "2"


def test_load_keys_action_refuses_a_path_outside_and_stops_nothing(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd
):
    state = ctx.run(ctx.on.config_changed(), ready_state())

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("load-keys", params={"path": "/home/ubuntu/*.pgp"}), state)

    assert failure.value.message.startswith(f"/home/ubuntu/*.pgp is outside {COMMON}")
    assert "`juju scp dump/*.pgp hockeypuck/0:/tmp/`" in failure.value.message
    assert systemctl.stops == 0
    assert snapd.tool_runs == []


def test_load_keys_action_tool_failure_starts_hockeypuck_again(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd, root: Path
):
    state = ctx.run(ctx.on.config_changed(), ready_state())
    put(common_on(root), "import/a.pgp")
    snapd.tool_fails = True

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("load-keys", params={"path": "import"}), state)

    assert failure.value.message.startswith(
        f"the load failed on {COMMON}/import/a.pgp (load failed: resource temporarily unavailable)"
    )
    assert (systemctl.stops, systemctl.running) == (1, True)


def test_load_keys_action_notes_the_other_units(
    ctx: testing.Context, snapd: FakeSnapd, root: Path
):
    peers = testing.PeerRelation("hockeypuck-peers", peers_data={1: {}, 2: {}})
    state = ctx.run(ctx.on.config_changed(), ready_state(peers))
    put(common_on(root), "import/a.pgp")

    ctx.run(ctx.on.action("load-keys", params={"path": "import"}), state)

    assert ctx.action_results is not None
    assert "run rebuild-prefix-tree on each other unit" in ctx.action_results["note"]


def test_bulk_actions_refuse_an_unconfigured_unit(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd, root: Path
):
    put(common_on(root), "import/a.pgp")

    for action, params in (("load-keys", {"path": "import"}), ("dump-keys", {})):
        with pytest.raises(testing.ActionFailed) as failure:
            ctx.run(ctx.on.action(action, params=params), base_state())
        assert failure.value.message.startswith("Hockeypuck is not configured on this unit yet")

    assert systemctl.stops == 0
    assert snapd.tool_runs == []


def test_dump_keys_action_default_directory(
    ctx: testing.Context,
    snapd: FakeSnapd,
    systemctl: FakeSystemd,
    blocklist_db: FakeBlocklist,
    tools: dict[str, Runner],
    root: Path,
):
    blocklist_db.stored_keys = {"a", "b"}
    state = ctx.run(ctx.on.config_changed(), ready_state())

    def dump_tool(command: list[str]) -> subprocess.CompletedProcess[str]:
        assert not systemctl.running, "the tool runs only while Hockeypuck is stopped"
        directory = root / command[command.index("-path") + 1].lstrip("/")
        (directory / "hkp-dump-0000.pgp").write_bytes(keyring("alice.pub.asc", "bob.pub.asc"))
        return subprocess.CompletedProcess(command, 0, "", "")

    tools["dump"] = dump_tool

    ctx.run(ctx.on.action("dump-keys"), state)

    [run] = snapd.tool_runs
    assert run[0] == "hockeypuck.dump"
    assert run[1] == "-path"
    assert re.fullmatch(rf"{COMMON}/dump/\d{{8}}T\d{{6}}Z", run[2])
    assert run[3:] == ["-count", "15000"]
    assert (systemctl.stops, systemctl.running) == (1, True)
    assert ctx.action_results is not None
    assert ctx.action_results["path"] == run[2]
    assert ctx.action_results["key-count"] == "2"
    assert ctx.action_results["database-key-count"] == "2"
    assert "warning" not in ctx.action_results


def test_dump_keys_action_with_path_and_count(ctx: testing.Context, snapd: FakeSnapd, root: Path):
    state = ctx.run(ctx.on.config_changed(), ready_state())

    ctx.run(ctx.on.action("dump-keys", params={"path": "backups/one", "keys-per-file": 2}), state)

    assert snapd.tool_runs == [
        ["hockeypuck.dump", "-path", f"{COMMON}/backups/one", "-count", "2"]
    ]
    assert (common_on(root) / "backups/one").is_dir()
    assert ctx.action_results is not None
    assert ctx.action_results["files"] == "0"


def test_dump_keys_action_tool_failure_starts_hockeypuck_again(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd, root: Path
):
    state = ctx.run(ctx.on.config_changed(), ready_state())
    snapd.tool_fails = True

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(ctx.on.action("dump-keys", params={"path": "backups/one"}), state)

    assert failure.value.message == (
        "the dump failed (dump failed: resource temporarily unavailable); the partial dump was "
        "removed; Hockeypuck was started again"
    )
    assert (systemctl.stops, systemctl.running) == (1, True)
    assert not (common_on(root) / "backups/one").exists()


def test_dump_keys_action_refuses_a_path_outside(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd
):
    state = ctx.run(ctx.on.config_changed(), ready_state())

    with pytest.raises(testing.ActionFailed, match="is outside"):
        ctx.run(ctx.on.action("dump-keys", params={"path": "/home/ubuntu/dump"}), state)

    assert systemctl.stops == 0


def test_the_actions_are_declared_with_their_parameters():
    import yaml  # noqa: PLC0415

    actions = yaml.safe_load((Path(__file__).parents[2] / "charmcraft.yaml").read_text())[
        "actions"
    ]
    load_action, dump_action = actions["load-keys"], actions["dump-keys"]
    assert load_action["required"] == ["path"]
    assert load_action["additionalProperties"] is False
    assert dump_action["additionalProperties"] is False
    assert dump_action["params"]["keys-per-file"] == {
        "type": "integer",
        "default": bulk_actions.DEFAULT_KEYS_PER_FILE,
        "minimum": 1,
        "description": "Keys written to each file (hockeypuck-dump's -count).",
    }
    for action in (load_action, dump_action):
        text = " ".join(action["description"].split())
        assert "STOPPED for the whole" in text
        assert "started again whatever happened" in text
    assert "tens of thousands of keys a minute" in " ".join(load_action["description"].split())
