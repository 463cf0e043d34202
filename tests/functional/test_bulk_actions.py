"""load-keys and dump-keys through the real workload: fake systemctl, fake `snap run`, fake tools.

The workload's stop/start go through the real charmlibs.systemd to the fake systemctl, its
`run_tool` through a real `snap run ...` process to the fake snap CLI, which runs the fake
tool (fake_hockeypuck_tool.py). Like the real tools, the fake ones die with `resource
temporarily unavailable` while the daemon's unit is active, so a test passes only if the
service was stopped first; they log each run into the fake systemctl's call log, which gives
the order of stops, tool runs and starts. Keydumps are real keyrings (the test keys), in a
temporary machine root.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bulk_actions import ActionFailedError, dump_keys, load_keys
from tests.functional import fake_hockeypuck_tool
from tests.functional.conftest import SERVICE, Machine, config_text
from workload import Hockeypuck, ToolError

pytestmark = pytest.mark.functional

COMMON = "/var/snap/hockeypuck/common"
KEYS = Path(__file__).parents[1] / "data/hockeypuck/keys"


def dearmor(name: str) -> bytes:
    lines = (KEYS / name).read_text().splitlines()
    body = lines[lines.index("") + 1 :]
    return base64.b64decode("".join(ln for ln in body if ln and not ln.startswith(("=", "---"))))


def digest(key: bytes) -> str:
    return hashlib.md5(key).hexdigest()  # noqa: S324 - Hockeypuck's key digest


ALICE, BOB, CAROL = (dearmor(f"{name}.pub.asc") for name in ("alice", "bob", "carol"))


@pytest.fixture
def hockeypuck(machine: Machine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hockeypuck:
    """The snap installed, configured and running; the fake tools behind `snap run`."""
    apps = tmp_path / "apps"
    fake_hockeypuck_tool.write_apps(str(apps))
    monkeypatch.setenv("FAKE_SNAP_APPS", str(apps))
    monkeypatch.setenv("FAKE_SNAP_ROOT", str(machine.root))
    monkeypatch.setenv("FAKE_SYSTEMCTL_STATE", str(machine.systemctl.state_dir))
    monkeypatch.delenv("FAKE_TOOL_FAIL", raising=False)
    workload = Hockeypuck(machine.root)
    workload.install("2.3/stable", None)
    workload.write_config(config_text())
    workload.ensure_running("51")
    assert workload.is_running()
    return workload


class Calls:
    """What happened since it was made: systemctl changes and tool runs, in order."""

    def __init__(self, machine: Machine):
        self.log = machine.systemctl.state_dir / "calls.log"
        self.start = len(self.lines())

    def lines(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [line.split("\t") for line in self.log.read_text().splitlines()]

    def since(self) -> list[str]:
        happened = []
        for by, *argv in self.lines()[self.start :]:
            words = [word for word in argv if not word.startswith("--")]
            if by == "snap-run":
                happened.append(" ".join(["run", *argv]))
            elif by == "systemctl" and words[0] in ("stop", "start", "enable", "disable"):
                happened.append(words[0])
        return happened


def database(machine: Machine) -> dict[str, str]:
    path = machine.root / "fake-database.json"
    return json.loads(path.read_text()) if path.exists() else {}


def tree(machine: Machine) -> list[str]:
    path = machine.root / COMMON.lstrip("/") / "ptree/digests.json"
    return json.loads(path.read_text()) if path.exists() else []


def put(hockeypuck: Hockeypuck, relative: str, content: bytes) -> None:
    path = hockeypuck.common_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def restore(hockeypuck: Hockeypuck) -> None:
    """What the actions pass as start_service: start again unless the charm had stopped it."""
    hockeypuck.resume()


def load(hockeypuck: Hockeypuck, machine: Machine, path: str, **kwargs: object):
    return load_keys(
        path,
        common_dir=hockeypuck.common_dir,
        stop_service=hockeypuck.pause,
        start_service=lambda: restore(hockeypuck),
        run_load=lambda argument: hockeypuck.run_tool("load", argument),
        count_keys=lambda: len(database(machine)),
        **kwargs,  # type: ignore[arg-type]
    )


def dump(hockeypuck: Hockeypuck, machine: Machine, path: str, count: int = 15000, **kwargs):
    return dump_keys(
        path,
        count,
        common_dir=hockeypuck.common_dir,
        stop_service=hockeypuck.pause,
        start_service=lambda: restore(hockeypuck),
        run_dump=lambda directory, keys: hockeypuck.run_tool(
            "dump", "-path", directory, "-count", str(keys)
        ),
        count_keys=lambda: len(database(machine)),
        **kwargs,
    )


def service(machine: Machine) -> dict[str, bool]:
    return machine.systemctl.unit(SERVICE)


RUNNING = {"active": True, "enabled": True, "failed": False}


# --- the fake tools themselves -----------------------------------------------------------------


def test_the_fake_tool_is_locked_out_while_the_daemon_runs(
    machine: Machine, hockeypuck: Hockeypuck
):
    put(hockeypuck, "import/a.pgp", ALICE)

    with pytest.raises(ToolError):
        hockeypuck.run_tool("load", f"{COMMON}/import/a.pgp")

    assert database(machine) == {}
    assert ["run", "hockeypuck.load", f"{COMMON}/import/a.pgp"] in machine.snap_cli_calls()


def test_snap_run_of_an_app_the_snap_lacks_fails_like_snap(hockeypuck: Hockeypuck):
    hockeypuck.stop()
    with pytest.raises(ToolError, match='cannot find app "pbuild" in "hockeypuck"'):
        hockeypuck.run_tool("pbuild")


# --- load-keys ---------------------------------------------------------------------------------


def test_load_stops_loads_each_file_and_starts(machine: Machine, hockeypuck: Hockeypuck):
    put(hockeypuck, "import/hkp-dump-0000.pgp", ALICE + BOB)
    put(hockeypuck, "import/hkp-dump-0001.pgp", CAROL)
    calls = Calls(machine)
    logs: list[str] = []

    results = load(hockeypuck, machine, f"{COMMON}/import/*.pgp", log=logs.append)

    assert calls.since() == [
        "stop",
        f"run hockeypuck.load {COMMON}/import/hkp-dump-0000.pgp",
        f"run hockeypuck.load {COMMON}/import/hkp-dump-0001.pgp",
        "start",
    ]
    assert service(machine) == RUNNING
    assert results["result"] == "loaded"
    assert (results["keys-found"], results["keys-inserted"], results["key-count"]) == (
        "3",
        "3",
        "3",
    )
    assert set(database(machine)) == {digest(ALICE), digest(BOB), digest(CAROL)}
    assert sorted(tree(machine)) == sorted(database(machine))
    assert "hkp-dump-0000.pgp: 2 keys, 2 inserted, 0 updated, 0 already stored" in logs[3]


def test_loading_the_same_files_again_skips_the_stored_keys(
    machine: Machine, hockeypuck: Hockeypuck
):
    put(hockeypuck, "import/a.pgp", ALICE + BOB)
    load(hockeypuck, machine, "import")

    results = load(hockeypuck, machine, "import")

    assert (results["keys-inserted"], results["keys-already-stored"]) == ("0", "2")
    assert service(machine) == RUNNING


def test_load_leaves_a_service_the_charm_stopped_stopped(machine: Machine, hockeypuck: Hockeypuck):
    put(hockeypuck, "import/a.pgp", ALICE)
    hockeypuck.stop()  # what the charm does without a database relation
    calls = Calls(machine)

    load(hockeypuck, machine, f"{COMMON}/import/a.pgp")

    assert calls.since() == [f"run hockeypuck.load {COMMON}/import/a.pgp"]
    assert service(machine) == {"active": False, "enabled": False, "failed": False}


def test_dump_leaves_a_service_the_charm_stopped_stopped(machine: Machine, hockeypuck: Hockeypuck):
    loaded(machine, hockeypuck)
    hockeypuck.stop()
    calls = Calls(machine)

    dump(hockeypuck, machine, "out")

    assert [call for call in calls.since() if not call.startswith("run")] == []
    assert service(machine) == {"active": False, "enabled": False, "failed": False}


def test_load_tool_failure_starts_the_service_again(
    machine: Machine, hockeypuck: Hockeypuck, monkeypatch: pytest.MonkeyPatch
):
    put(hockeypuck, "import/a.pgp", ALICE)
    put(hockeypuck, "import/b.pgp", BOB)
    put(hockeypuck, "import/c.pgp", CAROL)
    monkeypatch.setenv("FAKE_TOOL_FAIL", "load:b.pgp")
    calls = Calls(machine)

    with pytest.raises(ActionFailedError) as failure:
        load(hockeypuck, machine, "import/*.pgp")

    assert calls.since() == [
        "stop",
        f"run hockeypuck.load {COMMON}/import/a.pgp",
        f"run hockeypuck.load {COMMON}/import/b.pgp",
        "start",
    ]
    assert service(machine) == RUNNING
    assert failure.value.message.startswith(f"the load failed on {COMMON}/import/b.pgp (")
    assert "1 of 3 file(s) were loaded before it; Hockeypuck was started again" in (
        failure.value.message
    )
    assert failure.value.results["files-loaded"] == "1"
    assert set(database(machine)) == {digest(ALICE)}


def test_load_tool_failure_message_carries_the_tools_error(
    machine: Machine, hockeypuck: Hockeypuck, monkeypatch: pytest.MonkeyPatch
):
    put(hockeypuck, "import/a.pgp", ALICE)
    monkeypatch.setenv("FAKE_TOOL_FAIL", "load")

    with pytest.raises(ActionFailedError) as failure:
        load(hockeypuck, machine, "import/a.pgp")

    assert "password authentication failed" in failure.value.message


def test_unreadable_file_fails_the_action_after_loading_the_others(
    machine: Machine, hockeypuck: Hockeypuck
):
    put(hockeypuck, "import/a.pgp", b"this is not a keyring")
    put(hockeypuck, "import/b.pgp", CAROL)

    with pytest.raises(ActionFailedError) as failure:
        load(hockeypuck, machine, "import")

    assert failure.value.message.startswith(
        "1 of 2 file(s) could not be read (a.pgp: error reading key: openpgp: invalid data"
    )
    assert set(database(machine)) == {digest(CAROL)}
    assert service(machine) == RUNNING


def test_load_counts_the_database_when_the_log_level_hides_the_counts(
    machine: Machine, hockeypuck: Hockeypuck
):
    hockeypuck.write_config(config_text(loglevel="WARNING"))
    put(hockeypuck, "import/a.pgp", ALICE + BOB + CAROL)

    results = load(hockeypuck, machine, "import/a.pgp")

    assert "keys-found" not in results
    assert (results["keys-inserted"], results["key-count"]) == ("3", "3")


def test_load_of_a_file_name_with_glob_characters(machine: Machine, hockeypuck: Hockeypuck):
    put(hockeypuck, "import/keys [2026]*.pgp", ALICE)
    put(hockeypuck, "import/keys 2.pgp", BOB)  # what the unquoted name would also match

    results = load(hockeypuck, machine, "import/keys [[]2026]*.pgp")

    assert results["files"] == "1"
    assert set(database(machine)) == {digest(ALICE)}


def test_load_refusals_stop_nothing(machine: Machine, hockeypuck: Hockeypuck, tmp_path: Path):
    outside = tmp_path / "home-ubuntu"
    outside.mkdir()
    (outside / "a.pgp").write_bytes(ALICE)
    (hockeypuck.common_dir / "import").mkdir()
    (hockeypuck.common_dir / "import/a.pgp").symlink_to(outside / "a.pgp")
    calls = Calls(machine)

    for path in ("/home/ubuntu/*.pgp", f"{COMMON}/../../../../tmp/*.pgp", "import/*.pgp"):
        with pytest.raises(ActionFailedError, match="outside"):
            load(hockeypuck, machine, path)
    with pytest.raises(ActionFailedError, match="no keydump file matches"):
        load(hockeypuck, machine, "import/*.asc")

    assert calls.since() == []
    assert service(machine) == RUNNING
    assert not [call for call in machine.snap_cli_calls() if call[0] == "run"]


# --- dump-keys ---------------------------------------------------------------------------------


def loaded(machine: Machine, hockeypuck: Hockeypuck) -> None:
    put(hockeypuck, "import/a.pgp", ALICE + BOB + CAROL)
    load(hockeypuck, machine, "import/a.pgp")


def test_dump_stops_dumps_and_starts(machine: Machine, hockeypuck: Hockeypuck):
    loaded(machine, hockeypuck)
    calls = Calls(machine)

    results = dump(hockeypuck, machine, "backups/one", 2)

    target = f"{COMMON}/backups/one"
    assert calls.since() == [
        "stop",
        f"run hockeypuck.dump -path {target} -count 2",
        "start",
    ]
    assert service(machine) == RUNNING
    assert (results["path"], results["files"], results["key-count"]) == (target, "2", "3")
    assert results["database-key-count"] == "3"
    assert "warning" not in results
    files = sorted((hockeypuck.common_dir / "backups/one").iterdir())
    assert [file.name for file in files] == ["hkp-dump-0000.pgp", "hkp-dump-0001.pgp"]
    dumped = b"".join(file.read_bytes() for file in files)
    assert sorted(map(digest, fake_hockeypuck_tool.split_keys(dumped))) == sorted(
        database(machine)
    )


def test_a_dump_loads_into_a_fresh_database(machine: Machine, hockeypuck: Hockeypuck):
    loaded(machine, hockeypuck)
    dump(hockeypuck, machine, "backups/one", 1)
    before = database(machine)
    (machine.root / "fake-database.json").unlink()
    (hockeypuck.common_dir / "ptree/digests.json").unlink()

    results = load(hockeypuck, machine, "backups/one")

    assert (results["files"], results["keys-inserted"]) == ("3", "3")
    assert database(machine) == before


def test_dump_to_the_default_directory(machine: Machine, hockeypuck: Hockeypuck):
    loaded(machine, hockeypuck)

    results = dump(hockeypuck, machine, "")

    assert results["path"].startswith(f"{COMMON}/dump/")
    assert results["key-count"] == "3"
    assert (machine.root / results["path"].lstrip("/") / "hkp-dump-0000.pgp").is_file()


def test_dump_warns_when_the_tree_misses_keys(machine: Machine, hockeypuck: Hockeypuck):
    loaded(machine, hockeypuck)
    tree_file = hockeypuck.common_dir / "ptree/digests.json"
    tree_file.write_text(json.dumps(tree(machine)[:2]))  # drift: one key not in the tree

    results = dump(hockeypuck, machine, "out")

    assert (results["key-count"], results["database-key-count"]) == ("2", "3")
    assert "run rebuild-prefix-tree, then dump again" in results["warning"]


def test_dump_tool_failure_removes_the_partial_dump_and_starts_again(
    machine: Machine, hockeypuck: Hockeypuck, monkeypatch: pytest.MonkeyPatch
):
    loaded(machine, hockeypuck)
    monkeypatch.setenv("FAKE_TOOL_FAIL", "dump")
    calls = Calls(machine)

    with pytest.raises(ActionFailedError) as failure:
        dump(hockeypuck, machine, "backups/one", 1)

    assert calls.since()[-1:] == ["start"]
    assert service(machine) == RUNNING
    assert failure.value.message.startswith("the dump failed (")
    assert failure.value.message.endswith(
        "the partial dump was removed; Hockeypuck was started again"
    )
    assert not (hockeypuck.common_dir / "backups/one").exists()
    assert (hockeypuck.common_dir / "backups").is_dir()


def test_dump_refusals_stop_nothing(machine: Machine, hockeypuck: Hockeypuck, tmp_path: Path):
    (hockeypuck.common_dir / "full").mkdir()
    (hockeypuck.common_dir / "full/hkp-dump-0000.pgp").write_bytes(ALICE)
    (hockeypuck.common_dir / "away").symlink_to(tmp_path)
    calls = Calls(machine)

    refusals: dict[str, Callable[[], object]] = {
        "is outside": lambda: dump(hockeypuck, machine, "/home/ubuntu/dump"),
        "resolves to": lambda: dump(hockeypuck, machine, "away/dump"),
        "is not empty": lambda: dump(hockeypuck, machine, "full"),
        "positive integer": lambda: dump(hockeypuck, machine, "new", 0),
    }
    for message, refused in refusals.items():
        with pytest.raises(ActionFailedError, match=message):
            refused()

    assert calls.since() == []
    assert service(machine) == RUNNING
    assert not (tmp_path / "dump").exists()
    assert not (hockeypuck.common_dir / "new").exists()
