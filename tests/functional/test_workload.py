"""The Hockeypuck workload class, for real, through charmlibs.snap and charmlibs.systemd.

The libraries are the real ones; only the daemons behind them are fakes (conftest.py): snapd
on a Unix socket, `systemctl` and `snap` first on PATH. Restarts are counted from the fake
systemctl's log of command lines, so they are what the workload really ran.
"""

from __future__ import annotations

import configparser
import datetime
import errno
import os
import stat
from pathlib import Path

import pytest
from charmlibs import snap, systemd
from charmlibs.snap import _client as snap_client

import workload
from tests.functional.conftest import SERVICE, Machine, config_text
from tests.functional.fake_snapd import write_snap_file
from workload import Hockeypuck, ServiceError, SnapError

pytestmark = pytest.mark.functional

CONFIG = Path("var/snap/hockeypuck/common/hockeypuck.conf")
STORE_CONFIG = Path("var/snap/hockeypuck/common/config")
DROP_IN = Path(f"etc/systemd/system/{SERVICE}.d/10-hockeypuck-charm.conf")


@pytest.fixture
def hockeypuck(machine: Machine) -> Hockeypuck:
    return Hockeypuck(machine.root)


def restarts(machine: Machine) -> int:
    return machine.systemctl.count("restart", SERVICE)


def _temporary_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.startswith("."))


# The snap


def snapd_view(machine: Machine) -> snap.InstalledInfo | None:
    """What snapd reports, through the real library (`snap list hockeypuck`)."""
    try:
        return snap.list_one("hockeypuck")
    except snap.NotInstalledError:
        return None


def test_install_from_channel_then_hold(machine: Machine, hockeypuck: Hockeypuck):
    assert snapd_view(machine) is None
    assert hockeypuck.installed_revision() is None

    info = hockeypuck.install("2.3/stable", None)

    assert (info.revision, info.tracking, info.version) == ("51", "2.3/stable", "2.3.3")
    assert machine.snapd.posts("install") == [{"action": "install", "channel": "2.3/stable"}]
    assert machine.snapd.posts("hold") == [
        {"action": "hold", "hold-level": "general", "time": "forever"}
    ]
    # Held "forever", which snapd reports as a date about 292 years ahead.
    assert info.hold is not None
    assert info.hold > datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=365 * 200)
    assert repr(snapd_view(machine)) == repr(info)
    assert machine.snap_cli_calls() == []


def test_installed_revision_is_remembered_without_asking_snapd(
    machine: Machine, hockeypuck: Hockeypuck
):
    hockeypuck.install("2.3/stable", None)
    hockeypuck.install("2.3/edge", None)
    requests = len(machine.snapd.requests)

    assert Hockeypuck(machine.root).installed_revision() == "53"
    assert len(machine.snapd.requests) == requests


def test_install_again_on_the_same_channel_changes_nothing(
    machine: Machine, hockeypuck: Hockeypuck
):
    hockeypuck.install("2.3/stable", None)

    info = hockeypuck.install("2.3/stable", None)

    assert info.revision == "51"
    assert len(machine.snapd.posts("install")) == 1
    assert machine.snapd.posts("refresh") == []
    assert machine.systemctl.count("restart", by="snapd") == 0


def test_channel_change_refreshes_and_keeps_the_hold(machine: Machine, hockeypuck: Hockeypuck):
    hockeypuck.install("2.3/stable", None)

    info = hockeypuck.install("2.3/edge", None)

    assert (info.revision, info.tracking) == ("53", "2.3/edge")
    assert info.hold is not None
    assert machine.snapd.posts("refresh") == [{"action": "refresh", "channel": "2.3/edge"}]
    assert hockeypuck.installed_revision() == "53"


def test_unavailable_channel_is_a_snap_error(machine: Machine, hockeypuck: Hockeypuck):
    with pytest.raises(SnapError, match="no snap revision on specified channel"):
        hockeypuck.install("9.9/stable", None)

    assert snapd_view(machine) is None
    assert hockeypuck.installed_revision() is None


def test_snapd_unreachable_is_a_snap_error(
    hockeypuck: Hockeypuck, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setattr(snap_client, "_SOCKET_PATH", str(tmp_path / "no-snapd.socket"))

    with pytest.raises(SnapError, match="cannot query snapd"):
        hockeypuck.install("2.3/stable", None)


def test_install_from_a_resource_file(machine: Machine, hockeypuck: Hockeypuck, tmp_path: Path):
    snap_file = write_snap_file(tmp_path / "hockeypuck.snap", version="2.3.3")

    info = hockeypuck.install("2.3/stable", snap_file)

    assert (info.revision, info.version, info.tracking) == ("x1", "2.3.3", "")
    assert info.hold is not None
    assert machine.snap_cli_calls() == [["install", "--dangerous", str(snap_file)]]
    assert machine.snapd.posts("install") == []
    assert hockeypuck.installed_revision() == "x1"


def test_same_resource_file_is_not_installed_twice(
    machine: Machine, hockeypuck: Hockeypuck, tmp_path: Path
):
    snap_file = write_snap_file(tmp_path / "hockeypuck.snap")
    hockeypuck.install("2.3/stable", snap_file)

    assert hockeypuck.install("2.3/stable", snap_file).revision == "x1"

    assert len(machine.snap_cli_calls()) == 1


def test_new_resource_file_is_installed(machine: Machine, hockeypuck: Hockeypuck, tmp_path: Path):
    hockeypuck.install("2.3/stable", write_snap_file(tmp_path / "a.snap", version="2.3.3"))

    info = hockeypuck.install("2.3/stable", write_snap_file(tmp_path / "b.snap", "2.3.4"))

    assert (info.revision, info.version) == ("x2", "2.3.4")
    assert len(machine.snap_cli_calls()) == 2


def test_resource_over_a_store_snap(machine: Machine, hockeypuck: Hockeypuck, tmp_path: Path):
    hockeypuck.install("latest/edge", None)

    info = hockeypuck.install("latest/edge", write_snap_file(tmp_path / "h.snap"))

    assert info.revision == "x1"
    assert len(machine.snap_cli_calls()) == 1


def test_unreadable_resource_is_a_snap_error(
    machine: Machine, hockeypuck: Hockeypuck, tmp_path: Path
):
    bad = tmp_path / "hockeypuck.snap"
    bad.write_bytes(b"<html>not a snap</html>")

    with pytest.raises(SnapError, match="snap install --dangerous failed: error: .*squashfs"):
        hockeypuck.install("2.3/stable", bad)

    assert snapd_view(machine) is None
    # Nothing recorded as installed: the next hook tries again.
    assert hockeypuck.installed_revision() is None
    assert not (machine.root / "var/lib/hockeypuck-charm/snap-resource.sha256").exists()


def test_back_to_the_store_after_a_resource(hockeypuck: Hockeypuck, tmp_path: Path):
    hockeypuck.install("latest/edge", None)
    hockeypuck.install("latest/edge", write_snap_file(tmp_path / "h.snap"))

    # The operator attached the empty resource again: the charm passes no file.
    info = hockeypuck.install("latest/edge", None)

    assert info.revision == "42"


def test_store_channel_after_a_resource_only_install(hockeypuck: Hockeypuck, tmp_path: Path):
    snap_file = write_snap_file(tmp_path / "h.snap")
    hockeypuck.install("2.3/stable", snap_file)

    info = hockeypuck.install("2.3/stable", None)

    assert (info.revision, info.tracking) == ("51", "2.3/stable")
    # And attaching the same file again must install it again.
    assert hockeypuck.install("2.3/stable", snap_file).revision == "x2"


# The systemd drop-in


def test_drop_in_written_once_with_a_daemon_reload(machine: Machine, hockeypuck: Hockeypuck):
    hockeypuck.install("2.3/stable", None)
    hockeypuck.install("2.3/stable", None)

    drop_in = machine.root / DROP_IN
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment] - systemd keys are case-sensitive
    parser.read_string(drop_in.read_text())
    assert {section: dict(parser[section]) for section in parser.sections()} == {
        "Unit": {"StartLimitIntervalSec": "0"},
        "Service": {"Restart": "on-failure", "RestartSec": "5s"},
    }
    assert stat.S_IMODE(drop_in.stat().st_mode) == 0o644
    assert machine.systemctl.count("daemon-reload") == 1


def test_changed_drop_in_is_restored(machine: Machine, hockeypuck: Hockeypuck):
    hockeypuck.install("2.3/stable", None)
    drop_in = machine.root / DROP_IN
    drop_in.write_text("[Service]\nRestart=no\n")

    hockeypuck.install("2.3/stable", None)

    assert drop_in.read_text() == workload.SERVICE_DROP_IN
    assert machine.systemctl.count("daemon-reload") == 2


# The config file


def test_config_written_atomically_with_mode_0600(machine: Machine, hockeypuck: Hockeypuck):
    path = machine.root / CONFIG

    assert hockeypuck.write_config(config_text("first")) is True

    assert path.read_text() == config_text("first")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _temporary_files(path.parent) == []


def test_unchanged_config_is_not_rewritten(machine: Machine, hockeypuck: Hockeypuck):
    path = machine.root / CONFIG
    hockeypuck.write_config(config_text("same"))
    before = path.stat()

    assert hockeypuck.write_config(config_text("same")) is False

    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_changed_config_replaces_the_file(machine: Machine, hockeypuck: Hockeypuck):
    path = machine.root / CONFIG
    hockeypuck.write_config(config_text("old"))
    inode = path.stat().st_ino
    path.chmod(0o644)

    assert hockeypuck.write_config(config_text("new")) is True

    # A new inode renamed over the old one: a reader sees old or new, never half.
    assert path.stat().st_ino != inode
    assert path.read_text() == config_text("new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _temporary_files(path.parent) == []


def test_failed_write_leaves_the_old_config(
    machine: Machine, hockeypuck: Hockeypuck, monkeypatch: pytest.MonkeyPatch
):
    path = machine.root / CONFIG
    hockeypuck.write_config(config_text("old"))

    def disk_full(_: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(workload.os, "fsync", disk_full)

    with pytest.raises(workload.FileWriteError, match="No space left"):
        hockeypuck.write_config(config_text("new"))

    assert path.read_text() == config_text("old")
    assert _temporary_files(path.parent) == []


def test_store_snap_config_is_a_link_to_the_config(machine: Machine, hockeypuck: Hockeypuck):
    hockeypuck.install("latest/edge", None)

    hockeypuck.write_config(config_text("content"))

    link = machine.root / STORE_CONFIG
    assert link.is_symlink()
    assert os.readlink(link) == "hockeypuck.conf"  # relative: valid inside the snap's view
    assert link.read_text() == config_text("content")


@pytest.mark.parametrize("existing", ["file", "wrong link", "dangling link"])
def test_store_snap_config_is_replaced_by_the_link(
    machine: Machine, hockeypuck: Hockeypuck, existing: str
):
    link = machine.root / STORE_CONFIG
    link.parent.mkdir(parents=True)
    if existing == "file":
        link.write_text("[hockeypuck]\n# the store snap's default\n")
    elif existing == "wrong link":
        (link.parent / "other.conf").write_text("other\n")
        link.symlink_to("other.conf")
    else:
        link.symlink_to("/nowhere")

    hockeypuck.write_config(config_text("content"))

    assert os.readlink(link) == "hockeypuck.conf"
    assert link.read_text() == config_text("content")


# The service


def test_ensure_running_restarts_only_for_a_new_config_or_revision(
    machine: Machine, hockeypuck: Hockeypuck
):
    hockeypuck.install("2.3/stable", None)  # the project's snap: installed disabled
    assert machine.systemctl.unit(SERVICE) == {"active": False, "enabled": False, "failed": False}
    hockeypuck.write_config(config_text("one"))

    assert hockeypuck.ensure_running("51") is True
    assert machine.systemctl.unit(SERVICE)["active"]
    assert machine.systemctl.unit(SERVICE)["enabled"]
    assert restarts(machine) == 1

    assert hockeypuck.ensure_running("51") is False
    assert hockeypuck.write_config(config_text("one")) is False
    assert hockeypuck.ensure_running("51") is False
    assert restarts(machine) == 1
    assert machine.systemctl.count("start", SERVICE) == 0

    assert hockeypuck.write_config(config_text("two")) is True
    assert hockeypuck.ensure_running("51") is True
    assert restarts(machine) == 2

    assert hockeypuck.ensure_running("52") is True
    assert restarts(machine) == 3


def test_ensure_running_starts_a_crashed_service_without_a_restart(
    machine: Machine, hockeypuck: Hockeypuck
):
    hockeypuck.install("2.3/stable", None)
    hockeypuck.write_config(config_text("one"))
    hockeypuck.ensure_running("51")
    machine.systemctl.set(SERVICE, active=False, failed=True)

    assert hockeypuck.ensure_running("51") is False

    assert hockeypuck.is_running()
    assert machine.systemctl.count("start", SERVICE) == 1
    assert restarts(machine) == 1


def test_refresh_of_a_running_service_is_its_restart(machine: Machine, hockeypuck: Hockeypuck):
    hockeypuck.install("2.3/stable", None)
    hockeypuck.write_config(config_text("one"))
    hockeypuck.ensure_running("51")

    assert hockeypuck.install("2.3/edge", None).revision == "53"
    # snapd restarted the daemon on the new revision, with the config on disk...
    assert machine.systemctl.count("restart", SERVICE, by="snapd") == 1

    # ...so the charm has nothing left to restart.
    assert hockeypuck.ensure_running("53") is False
    assert restarts(machine) == 1


def test_refresh_of_a_stopped_service_restarts_on_the_next_ensure_running(
    machine: Machine, hockeypuck: Hockeypuck
):
    hockeypuck.install("2.3/stable", None)
    hockeypuck.write_config(config_text("one"))
    hockeypuck.ensure_running("51")
    hockeypuck.stop()

    hockeypuck.install("2.3/edge", None)

    assert not hockeypuck.is_running()  # disabled: snapd did not start it
    assert hockeypuck.ensure_running("53") is True
    assert hockeypuck.is_running()
    assert restarts(machine) == 2


def test_store_snap_started_by_snapd_is_restarted_with_the_config(
    machine: Machine, hockeypuck: Hockeypuck
):
    hockeypuck.install("latest/edge", None)  # the store snap starts on install
    assert hockeypuck.is_running()
    hockeypuck.write_config(config_text("one"))

    assert hockeypuck.ensure_running("42") is True
    assert restarts(machine) == 1


def test_ensure_running_without_a_config_file(hockeypuck: Hockeypuck):
    hockeypuck.install("2.3/stable", None)

    with pytest.raises(ServiceError, match=r"hockeypuck\.conf does not exist"):
        hockeypuck.ensure_running("51")


def test_ensure_running_without_the_snap_is_a_service_error(
    machine: Machine, hockeypuck: Hockeypuck
):
    hockeypuck.write_config(config_text("one"))

    with pytest.raises(ServiceError, match=r"(?s)cannot start .*Unit file \S+ does not exist"):
        hockeypuck.ensure_running("51")


def test_service_that_does_not_stay_up_is_not_running(machine: Machine, hockeypuck: Hockeypuck):
    hockeypuck.install("2.3/stable", None)
    hockeypuck.write_config(config_text("one"))
    machine.systemctl.set(SERVICE, broken=True)

    with pytest.raises(ServiceError, match=f"{SERVICE} is not running"):
        hockeypuck.ensure_running("51")

    assert not hockeypuck.is_running()
    assert systemd.service_failed(SERVICE)


def test_stop_stops_and_disables(machine: Machine, hockeypuck: Hockeypuck):
    hockeypuck.install("2.3/stable", None)
    hockeypuck.write_config(config_text("one"))
    hockeypuck.ensure_running("51")

    hockeypuck.stop()

    assert machine.systemctl.unit(SERVICE) == {"active": False, "enabled": False, "failed": False}
    assert not hockeypuck.is_running()
    assert machine.systemctl.count("stop", SERVICE) == 1
    assert machine.systemctl.count("disable", SERVICE) == 1


def test_stop_of_a_stopped_service_only_disables(machine: Machine, hockeypuck: Hockeypuck):
    hockeypuck.install("latest/edge", None)
    hockeypuck.stop()

    hockeypuck.stop()

    assert machine.systemctl.count("stop", SERVICE) == 1
    assert machine.systemctl.count("disable", SERVICE) == 2


def test_stop_without_the_snap_is_a_service_error(hockeypuck: Hockeypuck):
    with pytest.raises(ServiceError, match="cannot stop"):
        hockeypuck.stop()
