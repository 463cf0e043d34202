"""Faults injected at the machine's seams: each becomes a clear status, and the next hook heals.

A full disk, damaged state files, snapd and systemctl failing with multi-line errors, the
database refusing a running daemon, a relation gone while an action runs, a config file whose
mode was loosened by hand, and the offline tools on a unit the charm had stopped.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from charmlibs import snap, systemd
from ops import testing

import snap_layout
import workload
from tests.unit.conftest import (
    FakeBlocklist,
    FakeHkpPort,
    FakeSnapd,
    FakeSystemd,
    base_state,
    config_file,
    db_relation,
    ready_state,
)
from tests.unit.hostile import check_config_file, check_status
from tests.unit.test_keyserver_actions import FakeHkp

SERVICE = snap_layout.SERVICE
JOURNAL = f"(see journalctl -u {SERVICE})"
SYSTEMCTL_FAILURE = (
    f"Command ['systemctl', 'restart', '{SERVICE}'] failed with returncode 1. systemctl output:\n"
    "stdout: \n"
    f"stderr: Job for {SERVICE} failed because the control process exited with error code.\n"
    f'See "systemctl status {SERVICE}" and "journalctl -xeu {SERVICE}" for details.\n'
)


def state_dir(root: Path) -> Path:
    return root / "var/lib/hockeypuck-charm"


# --- a full disk -------------------------------------------------------------------------------


def test_a_full_disk_is_a_status_the_old_file_stays_and_the_next_hook_heals(
    ctx: testing.Context, root: Path, monkeypatch: pytest.MonkeyPatch
):
    ctx.run(ctx.on.config_changed(), ready_state())
    before = config_file(root).read_text()
    changed = ready_state(config={"log-level": "DEBUG"})

    def disk_full(_: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(workload.os, "fsync", disk_full)
        full = ctx.run(ctx.on.update_status(), changed)
    kept = config_file(root).read_text()
    leftovers = [p.name for p in config_file(root).parent.iterdir() if p.name.startswith(".")]
    healed = ctx.run(ctx.on.update_status(), changed)

    assert full.unit_status == testing.BlockedStatus(
        f"cannot write {config_file(root)}: No space left on device"
    )
    assert kept == before
    assert leftovers == []
    assert healed.unit_status == testing.ActiveStatus()
    assert 'loglevel = "DEBUG"' in config_file(root).read_text()


def test_a_full_disk_under_the_charms_state_directory_is_a_status(
    ctx: testing.Context, root: Path, monkeypatch: pytest.MonkeyPatch
):
    def no_space(*_: object, **__: object) -> tuple[int, str]:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(workload.tempfile, "mkstemp", no_space)

    out = ctx.run(ctx.on.install(), base_state())

    check_status(out.unit_status)
    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(f"cannot write {root}/")
    assert out.unit_status.message.endswith(": No space left on device")


def test_an_unwritable_template_cache_only_costs_a_compilation(ctx: testing.Context, root: Path):
    state_dir(root).mkdir(parents=True)
    (state_dir(root) / "template-cache").write_text("a file where a directory should be")

    out = ctx.run(ctx.on.config_changed(), ready_state())

    assert out.unit_status == testing.ActiveStatus()
    assert check_config_file(root) is not None


# --- damaged state files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("applied.json", '{"config": "ab'),
        ("rendered.json", "["),
        ("blocklist.json", '["not-a-fingerprint"'),
        ("blocklist.json", "\x00\x00"),
        ("snap-revision", "4\n2"),
        ("snap-version", "2.3.3\n" * 50),
        ("log-file", "/etc/shadow"),
    ],
)
def test_a_truncated_or_garbage_state_file_is_rebuilt(
    ctx: testing.Context,
    root: Path,
    blocklist_db: FakeBlocklist,
    systemctl: FakeSystemd,
    name: str,
    content: str,
):
    blocklist_db.entries = {"ab" * 20: "spam"}
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    (state_dir(root) / name).write_text(content)

    out = ctx.run(ctx.on.update_status(), state)

    assert out.unit_status == testing.ActiveStatus()
    if name not in ("snap-version", "log-file"):  # ignored until the next install writes them
        assert (state_dir(root) / name).read_text() != content
    document = check_config_file(root)
    assert document is not None
    assert document["hockeypuck"]["openpgp"]["blacklist"] == ["ab" * 20]
    assert "logfile" not in document["hockeypuck"]


def test_an_unreadable_block_list_record_is_read_again_from_the_database(
    ctx: testing.Context, root: Path, blocklist_db: FakeBlocklist
):
    blocklist_db.entries = {"ab" * 20: "spam"}
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    (state_dir(root) / "blocklist.json").write_text("{")
    connections = blocklist_db.connections

    ctx.run(ctx.on.update_status(), state)

    assert blocklist_db.connections == connections + 1
    assert json.loads((state_dir(root) / "blocklist.json").read_text()) == ["ab" * 20]


def test_a_missing_block_list_record_costs_update_status_no_database_connection(
    ctx: testing.Context, root: Path, blocklist_db: FakeBlocklist
):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    assert json.loads((state_dir(root) / "blocklist.json").read_text()) == []
    (state_dir(root) / "blocklist.json").unlink()
    connections = blocklist_db.connections

    out = ctx.run(ctx.on.update_status(), state)

    assert blocklist_db.connections == connections
    assert out.unit_status == testing.ActiveStatus()


def test_block_list_rows_that_are_not_fingerprints_are_left_out(
    ctx: testing.Context, root: Path, blocklist_db: FakeBlocklist
):
    blocklist_db.entries = {"ab" * 20: "spam", "0xab": "by hand", 'x"]\n[y': "hostile"}
    state = ready_state()

    ctx.run(ctx.on.config_changed(), state)
    connections = blocklist_db.connections
    ctx.run(ctx.on.update_status(), state)

    document = check_config_file(root)
    assert document is not None
    assert document["hockeypuck"]["openpgp"]["blacklist"] == ["ab" * 20]
    assert blocklist_db.connections == connections  # the record is usable: no re-read


# --- snapd and systemctl -----------------------------------------------------------------------


def test_a_multi_line_snapd_error_is_one_bounded_line(ctx: testing.Context, snapd: FakeSnapd):
    snapd.fail_with = snap.ConnectionError("snapd went away\n" + "trace line\n" * 500)

    out = ctx.run(ctx.on.install(), base_state())

    check_status(out.unit_status)
    assert out.unit_status.message.startswith(
        "cannot install the hockeypuck snap: snapd went away trace line trace line"
    )
    assert out.unit_status.message.endswith("…")


def test_a_failing_local_snap_install_is_one_line(
    ctx: testing.Context, snapd: FakeSnapd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import subprocess  # noqa: PLC0415

    snap_file = tmp_path / "hockeypuck.snap"
    snap_file.write_bytes(b"not a squashfs")

    def refuse(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        raise subprocess.CalledProcessError(1, command, "", "error: cannot install\n  details\n")

    monkeypatch.setattr(subprocess, "run", refuse)
    resource = testing.Resource(name="hockeypuck-snap", path=snap_file)

    out = ctx.run(ctx.on.install(), base_state(resources={resource}))

    assert out.unit_status == testing.BlockedStatus(
        "snap install --dangerous failed: error: cannot install details"
    )


def test_a_multi_line_systemctl_failure_is_its_first_stderr_line(
    ctx: testing.Context, systemctl: FakeSystemd, monkeypatch: pytest.MonkeyPatch
):
    def fail(unit: str) -> bool:
        raise systemd.SystemdError(SYSTEMCTL_FAILURE)

    monkeypatch.setattr(systemd, "service_restart", fail)

    out = ctx.run(ctx.on.config_changed(), ready_state())

    check_status(out.unit_status)
    assert out.unit_status == testing.BlockedStatus(
        f"cannot start {SERVICE}: Job for {SERVICE} failed because the control process exited "
        f"with error code. {JOURNAL}"
    )


def test_a_failing_daemon_reload_is_one_line_and_retried(
    ctx: testing.Context, root: Path, monkeypatch: pytest.MonkeyPatch
):
    def fail() -> bool:
        raise systemd.SystemdError(SYSTEMCTL_FAILURE.replace("restart", "daemon-reload"))

    with monkeypatch.context() as patch:
        patch.setattr(systemd, "daemon_reload", fail)
        failed = ctx.run(ctx.on.install(), ready_state())
    (root / f"etc/systemd/system/{SERVICE}.d/10-hockeypuck-charm.conf").unlink()
    retried = ctx.run(ctx.on.install(), ready_state())

    assert failed.unit_status.message.startswith("systemctl daemon-reload failed: Job for ")
    check_status(failed.unit_status)
    assert retried.unit_status == testing.ActiveStatus()


# --- the database goes away under a running daemon ---------------------------------------------


def test_revoked_credentials_under_a_running_daemon_are_reported_then_clear(
    ctx: testing.Context, systemctl: FakeSystemd, hkp_port: FakeHkpPort
):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    hkp_port.lookup_status = 500  # what Hockeypuck answers a lookup once PostgreSQL refuses it

    revoked = ctx.run(ctx.on.update_status(), state)
    hkp_port.lookup_status = 404
    restored = ctx.run(ctx.on.update_status(), state)

    host, port = hkp_port.address
    assert revoked.unit_status == testing.BlockedStatus(
        f"database unreachable with current credentials: a lookup on {host}:{port} answered 500"
    )
    assert restored.unit_status == testing.ActiveStatus()
    assert systemctl.restarts == 1


def test_update_status_asks_the_daemon_exactly_once(ctx: testing.Context, hkp_port: FakeHkpPort):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    asked = hkp_port.requests

    ctx.run(ctx.on.update_status(), state)

    assert hkp_port.requests == asked + 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_daemon_that_does_not_answer_hkp_is_reported(
    ctx: testing.Context, monkeypatch: pytest.MonkeyPatch
):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    port = _free_port()
    monkeypatch.setattr(workload.Hockeypuck, "hkp_address", ("127.0.0.1", port))

    out = ctx.run(ctx.on.update_status(), state)

    assert out.unit_status == testing.BlockedStatus(
        f"the HKP port does not serve: Hockeypuck is not answering on 127.0.0.1:{port} "
        f"(Connection refused) {JOURNAL}"
    )


def test_a_just_restarted_daemon_gets_time_to_listen(
    ctx: testing.Context, hkp_port: FakeHkpPort, monkeypatch: pytest.MonkeyPatch
):
    port = _free_port()
    monkeypatch.setattr(workload.Hockeypuck, "hkp_address", ("127.0.0.1", port))
    monkeypatch.setattr(workload, "STARTUP_GRACE_SECONDS", 10.0)
    listening = threading.Event()

    def listen_late() -> None:  # the daemon binds its port a second after the restart
        time.sleep(1.0)
        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen()
            listening.set()
            connection, _ = server.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=listen_late, daemon=True)
    thread.start()

    out = ctx.run(ctx.on.config_changed(), ready_state())
    thread.join(10)

    assert listening.is_set()
    assert out.unit_status == testing.ActiveStatus()


# --- a relation broken while an action runs ----------------------------------------------------


@pytest.fixture
def hkp(monkeypatch: pytest.MonkeyPatch) -> FakeHkp:
    import hkp_client  # noqa: PLC0415

    fake = FakeHkp()
    monkeypatch.setattr(hkp_client, "HkpClient", fake)
    return fake


def test_an_action_after_the_database_relation_went_away_fails_with_a_message(
    ctx: testing.Context, hkp: FakeHkp
):
    with pytest.raises(testing.ActionFailed, match="there is no database relation"):
        ctx.run(ctx.on.action("list-blocked-keys"), base_state())


def test_an_action_whose_credentials_vanished_fails_with_a_message(
    ctx: testing.Context, hkp: FakeHkp
):
    relation = db_relation()  # the provider's data without the secret: credentials gone

    with pytest.raises(testing.ActionFailed, match="no database credentials yet"):
        ctx.run(
            ctx.on.action("unblock-keys", params={"fingerprints": "ab" * 20}),
            base_state(relations={relation}),
        )


def test_an_action_whose_database_fails_mid_way_fails_with_a_message(
    ctx: testing.Context, hkp: FakeHkp, blocklist_db: FakeBlocklist
):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    hkp.database_up = False  # the daemon's database fails once the block list is written

    with pytest.raises(testing.ActionFailed) as failure:
        ctx.run(
            ctx.on.action("block-keys", params={"fingerprints": "ab" * 20, "comment": "spam"}),
            state,
        )

    assert "could not apply the new block list" in failure.value.message
    assert "a lookup on 127.0.0.1:11371 answered 500" in failure.value.message
    assert "it tries again on its next hook" in failure.value.message
    assert blocklist_db.entries == {"ab" * 20: "spam"}  # kept: the next hook applies it


# --- the config file's mode --------------------------------------------------------------------


def test_a_loosened_config_mode_is_set_back_on_every_hook(ctx: testing.Context, root: Path):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    path = config_file(root)
    inode = path.stat().st_ino
    path.chmod(0o644)

    ctx.run(ctx.on.update_status(), state)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino == inode  # content unchanged: not rewritten, only the mode


def test_the_config_mode_is_set_back_even_when_the_config_is_invalid(
    ctx: testing.Context, root: Path
):
    ctx.run(ctx.on.config_changed(), ready_state())
    config_file(root).chmod(0o644)

    out = ctx.run(ctx.on.config_changed(), ready_state(config={"log-level": "LOUD"}))

    assert out.unit_status.message.startswith("invalid config: log-level")
    assert stat.S_IMODE(config_file(root).stat().st_mode) == 0o600


# --- the offline tools leave the service as the charm wants it ---------------------------------


@pytest.mark.parametrize(
    ("action", "params"),
    [
        ("rebuild-prefix-tree", {}),
        ("load-keys", {"path": "import/a.pgp"}),
        ("dump-keys", {"path": "out"}),
    ],
)
def test_offline_tools_leave_a_service_the_charm_stopped_stopped(
    ctx: testing.Context,
    root: Path,
    systemctl: FakeSystemd,
    snapd: FakeSnapd,
    hkp: FakeHkp,
    action: str,
    params: dict[str, str],
):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    common = root / snap_layout.SNAP_COMMON.relative_to("/")
    (common / "import").mkdir()
    (common / "import/a.pgp").write_bytes(b"")
    relation = next(iter(state.relations))
    ctx.run(ctx.on.relation_broken(relation), state)  # the charm stops and disables it
    starts = systemctl.starts

    ctx.run(ctx.on.action(action, params=params), base_state())

    assert snapd.tool_runs
    assert "left Hockeypuck stopped: the charm had stopped it (no database relation)" in (
        ctx.action_logs
    )
    assert (systemctl.running, systemctl.enabled, systemctl.starts) == (False, False, starts)


def test_offline_tools_start_a_service_the_charm_runs_again(
    ctx: testing.Context, systemctl: FakeSystemd, snapd: FakeSnapd, hkp: FakeHkp
):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)

    ctx.run(ctx.on.action("rebuild-prefix-tree"), state)

    assert snapd.tool_runs == [["hockeypuck.pbuild"]]
    assert (systemctl.running, systemctl.enabled) == (True, True)
    assert ctx.action_logs[-1] == "started Hockeypuck again"
