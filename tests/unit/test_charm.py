"""State-transition tests of the charm's events, with the machine faked at one seam."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest
from charmlibs import snap
from ops import testing

import charm
import snap_layout
import workload
from tests.unit.conftest import (
    DB_PASSWORD,
    DB_USER,
    FakeSnapd,
    FakeSystemd,
    base_state,
    config_file,
    db_relation,
    ready_state,
    user_secret,
)


def test_install_without_database_installs_held_snap_and_blocks(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd, root: Path
):
    out = ctx.run(ctx.on.install(), base_state())

    assert snapd.installed is not None
    assert snapd.installed.tracking == "latest/edge"
    assert snapd.held
    assert out.unit_status == testing.BlockedStatus("needs a database relation")
    assert out.workload_version == "2.3.3+rev42"
    assert {port.port for port in out.opened_ports} == {11371, 11370}
    assert not systemctl.running
    assert not config_file(root).exists()


def test_install_writes_restart_drop_in(ctx: testing.Context, systemctl: FakeSystemd, root: Path):
    ctx.run(ctx.on.install(), base_state())

    drop_in = root / f"etc/systemd/system/{snap_layout.SERVICE}.d/10-hockeypuck-charm.conf"
    assert "Restart=on-failure" in drop_in.read_text()
    assert systemctl.daemon_reloads == 1


def test_install_from_attached_resource(ctx: testing.Context, snapd: FakeSnapd, tmp_path: Path):
    snap_file = tmp_path / "hockeypuck.snap"
    snap_file.write_bytes(b"a squashfs image")
    resource = testing.Resource(name="hockeypuck-snap", path=snap_file)

    out = ctx.run(ctx.on.install(), base_state(resources={resource}))

    assert len(snapd.local_installs) == 1
    assert snapd.installed is not None and snapd.installed.revision == "x1"
    assert out.workload_version == "2.3.3+revx1"


def test_empty_resource_means_store_channel(
    ctx: testing.Context, snapd: FakeSnapd, tmp_path: Path
):
    empty = tmp_path / "empty.snap"
    empty.write_bytes(b"")
    resource = testing.Resource(name="hockeypuck-snap", path=empty)

    ctx.run(ctx.on.install(), base_state(resources={resource}))

    assert snapd.local_installs == []
    assert snapd.installed is not None and snapd.installed.tracking == "latest/edge"


def test_same_resource_is_not_reinstalled_on_upgrade(
    ctx: testing.Context, snapd: FakeSnapd, tmp_path: Path
):
    snap_file = tmp_path / "hockeypuck.snap"
    snap_file.write_bytes(b"image one")
    state = base_state(resources={testing.Resource(name="hockeypuck-snap", path=snap_file)})

    ctx.run(ctx.on.install(), state)
    ctx.run(ctx.on.upgrade_charm(), state)
    snap_file.write_bytes(b"image two")
    ctx.run(ctx.on.upgrade_charm(), state)

    assert len(snapd.local_installs) == 2


def test_leader_requests_database_with_secrets(ctx: testing.Context):
    relation = db_relation()

    out = ctx.run(ctx.on.relation_created(relation), base_state(leader=True, relations={relation}))

    local = out.get_relation(relation.id).local_app_data
    assert local == {
        "database": "hockeypuck",
        "requested-secrets": json.dumps(
            ["username", "password", "tls", "tls-ca", "uris", "read-only-uris"]
        ),
    }


def test_non_leader_writes_nothing_to_the_database_relation(ctx: testing.Context):
    relation = db_relation()

    out = ctx.run(ctx.on.relation_created(relation), base_state(relations={relation}))

    assert out.get_relation(relation.id).local_app_data == {}


def test_waits_while_the_provider_has_not_answered(ctx: testing.Context, systemctl: FakeSystemd):
    relation = testing.Relation("database", remote_app_name="postgresql")

    out = ctx.run(ctx.on.relation_changed(relation), base_state(relations={relation}))

    assert out.unit_status == testing.WaitingStatus("waiting for database credentials")
    assert systemctl.restarts == 0


def test_waits_for_the_secret_content(ctx: testing.Context):
    relation = db_relation()

    out = ctx.run(ctx.on.relation_changed(relation), base_state(relations={relation}))

    assert out.unit_status == testing.WaitingStatus("waiting for database credentials")


def test_credentials_from_secret_configure_and_start(
    ctx: testing.Context, systemctl: FakeSystemd, root: Path
):
    state = ready_state(leader=True)
    relation = next(iter(state.relations))

    out = ctx.run(ctx.on.relation_changed(relation), state)

    assert out.unit_status == testing.ActiveStatus()
    assert systemctl.running and systemctl.enabled
    assert systemctl.restarts == 1
    path = config_file(root)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    dsn = tomllib.loads(path.read_text())["hockeypuck"]["openpgp"]["db"]["dsn"]
    assert dsn == (
        f"database='hockeypuck' host='10.0.0.5' port='5432' user='{DB_USER}' "
        f"password='{DB_PASSWORD}' sslmode='disable'"
    )


def test_store_snap_config_path_points_at_the_rendered_file(ctx: testing.Context, root: Path):
    state = ready_state()

    ctx.run(ctx.on.config_changed(), state)

    link = root / snap_layout.STORE_SNAP_CONFIG_FILE.relative_to("/")
    assert link.is_symlink()
    assert link.resolve() == config_file(root).resolve()


def test_plain_field_credentials_are_accepted(ctx: testing.Context, root: Path):
    relation = db_relation(username="plain-user", password="plain-pw", tls="True")

    out = ctx.run(ctx.on.relation_changed(relation), base_state(relations={relation}))

    assert out.unit_status == testing.ActiveStatus()
    dsn = tomllib.loads(config_file(root).read_text())["hockeypuck"]["openpgp"]["db"]["dsn"]
    assert "user='plain-user' password='plain-pw' sslmode='require'" in dsn


def test_first_endpoint_is_used_after_failover(ctx: testing.Context, root: Path):
    secret = user_secret()
    relation = db_relation(secret, endpoints="10.0.0.9:5432,10.0.0.5:5432")

    ctx.run(ctx.on.relation_changed(relation), base_state(relations={relation}, secrets={secret}))

    assert "host='10.0.0.9'" in config_file(root).read_text()


def test_password_rotation_restarts_once(ctx: testing.Context, systemctl: FakeSystemd, root: Path):
    secret = user_secret()
    relation = db_relation(secret)
    ctx.run(ctx.on.relation_changed(relation), base_state(relations={relation}, secrets={secret}))
    rotated = testing.Secret(
        id=secret.id,
        tracked_content=secret.tracked_content,
        latest_content={"username": DB_USER, "password": "rotated-pw"},
    )
    state = base_state(relations={relation}, secrets={rotated})

    after = ctx.run(ctx.on.secret_changed(rotated), state)
    ctx.run(ctx.on.update_status(), after)
    ctx.run(ctx.on.config_changed(), after)

    assert "password='rotated-pw'" in config_file(root).read_text()
    assert systemctl.restarts == 2


@pytest.mark.parametrize(
    "event_name", ["update_status", "leader_elected", "config_changed", "start"]
)
def test_no_op_events_never_restart(ctx: testing.Context, systemctl: FakeSystemd, event_name: str):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    assert systemctl.restarts == 1

    outs = [ctx.run(getattr(ctx.on, event_name)(), state) for _ in range(5)]

    assert systemctl.restarts == 1
    assert all(out.unit_status == testing.ActiveStatus() for out in outs)


def test_relation_broken_stops_the_service(ctx: testing.Context, systemctl: FakeSystemd):
    state = ready_state()
    relation = next(iter(state.relations))
    ctx.run(ctx.on.config_changed(), state)

    out = ctx.run(ctx.on.relation_broken(relation), state)

    assert out.unit_status == testing.BlockedStatus("needs a database relation")
    assert not systemctl.running and not systemctl.enabled


def test_service_that_does_not_stay_up_is_reported(ctx: testing.Context, systemctl: FakeSystemd):
    systemctl.stays_up = False

    out = ctx.run(ctx.on.config_changed(), ready_state())

    assert out.unit_status == testing.BlockedStatus(
        f"{snap_layout.SERVICE} is not running (see journalctl -u {snap_layout.SERVICE})"
    )


def test_crashed_service_is_started_not_restarted(ctx: testing.Context, systemctl: FakeSystemd):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    systemctl.running = False

    ctx.run(ctx.on.update_status(), state)

    assert (systemctl.restarts, systemctl.starts, systemctl.running) == (1, 1, True)


def test_snap_store_error_is_a_status_not_a_crash(ctx: testing.Context, snapd: FakeSnapd):
    snapd.fail_with = snap.ConnectionError("snapd is not answering")

    out = ctx.run(ctx.on.install(), base_state())

    assert out.unit_status == testing.BlockedStatus(
        "cannot install the hockeypuck snap: snapd is not answering"
    )


def test_unknown_channel_is_reported(ctx: testing.Context):
    out = ctx.run(ctx.on.install(), base_state(config={"snap-channel": "9.9/stable"}))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "no channel 9.9/stable" in out.unit_status.message


def test_channel_change_refreshes_once_and_restarts_once(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd
):
    state = ready_state()
    ctx.run(ctx.on.install(), state)
    ctx.run(ctx.on.config_changed(), state)
    assert systemctl.restarts == 1
    changed = ready_state(config={"snap-channel": "2.3/stable"})

    out = ctx.run(ctx.on.config_changed(), changed)
    ctx.run(ctx.on.config_changed(), changed)
    ctx.run(ctx.on.update_status(), changed)

    assert snapd.installed is not None and snapd.installed.revision == "51"
    assert out.workload_version == "2.3.3+rev51"
    assert systemctl.restarts == 2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"contact-fingerprint": "0xABCD"}, "contact-fingerprint: '0xABCD' has 4 hex digits"),
        ({"admin-keys": "not-hex"}, "admin-keys: 'not-hex' is not a hexadecimal fingerprint"),
        (
            {"external-peers": "peer.example.com,11371"},
            "external-peers: 'peer.example.com,11371' needs 3 fields",
        ),
        (
            {"external-peers": "bad_host!,11371,11370"},
            "'bad_host!' is not a host name or IP address",
        ),
        ({"external-peers": "peer.example.com,11371,70000"}, "'70000' is not a port number"),
        ({"log-level": "VERBOSE"}, "log-level: 'VERBOSE' is not one of"),
        (
            {"hostname": "-bad-.example.com"},
            "hostname: '-bad-.example.com' is not a fully qualified",
        ),
        ({"max-key-length": 0}, "max-key-length: 0 is not a positive whole number"),
    ],
)
def test_invalid_config_blocks_and_writes_nothing(
    ctx: testing.Context, systemctl: FakeSystemd, root: Path, config: dict[str, str], message: str
):
    good = ready_state()
    ctx.run(ctx.on.config_changed(), good)
    before = config_file(root).read_text()

    out = ctx.run(ctx.on.config_changed(), ready_state(config=config))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("invalid config: ")
    assert message in out.unit_status.message
    assert config_file(root).read_text() == before
    assert systemctl.restarts == 1


def test_resource_and_channel_conflict_blocks_with_the_fix(
    ctx: testing.Context, snapd: FakeSnapd, tmp_path: Path
):
    snap_file = tmp_path / "hockeypuck.snap"
    snap_file.write_bytes(b"a squashfs image")
    resource = testing.Resource(name="hockeypuck-snap", path=snap_file)
    state = ready_state(resources={resource}, config={"snap-channel": "2.3/stable"})

    out = ctx.run(ctx.on.upgrade_charm(), state)
    again = ctx.run(ctx.on.update_status(), state)

    assert snapd.local_installs == [str(snap_file)]
    message = (
        "invalid config: snap-channel: '2.3/stable' conflicts with the attached "
        "hockeypuck-snap resource; reset snap-channel (juju config hockeypuck --reset "
        "snap-channel) or attach an empty resource to install from the store"
    )
    assert out.unit_status == testing.BlockedStatus(message)
    assert again.unit_status == testing.BlockedStatus(message)


def test_resource_with_default_channel_is_fine(
    ctx: testing.Context, snapd: FakeSnapd, tmp_path: Path
):
    snap_file = tmp_path / "hockeypuck.snap"
    snap_file.write_bytes(b"a squashfs image")
    state = ready_state(resources={testing.Resource(name="hockeypuck-snap", path=snap_file)})

    out = ctx.run(ctx.on.install(), state)

    assert out.unit_status == testing.ActiveStatus()


def test_units_on_different_minor_versions_are_flagged(ctx: testing.Context):
    peers = testing.PeerRelation(
        "hockeypuck-peers",
        peers_data={
            1: {"address": "10.0.0.1", "hockeypuck-version": "2.3.3+rev42"},
            2: {"address": "10.0.0.2", "hockeypuck-version": "2.2.9"},
        },
    )

    ctx.run(ctx.on.install(), ready_state(peers))
    out = ctx.run(ctx.on.update_status(), ready_state(peers))

    assert out.unit_status == testing.BlockedStatus(
        "hockeypuck-2 runs 2.2.9, this unit 2.3.3+rev42: recon peers must run the same minor "
        "version"
    )


def test_same_minor_version_with_other_patch_level_is_fine(ctx: testing.Context):
    peers = testing.PeerRelation(
        "hockeypuck-peers", peers_data={1: {"address": "10.0.0.1", "hockeypuck-version": "2.3.1"}}
    )

    ctx.run(ctx.on.install(), ready_state(peers))
    out = ctx.run(ctx.on.update_status(), ready_state(peers))

    assert out.unit_status == testing.ActiveStatus()


def test_back_to_the_store_after_a_resource_uses_amend(
    ctx: testing.Context, snapd: FakeSnapd, tmp_path: Path
):
    snap_file = tmp_path / "hockeypuck.snap"
    snap_file.write_bytes(b"a squashfs image")
    ctx.run(
        ctx.on.install(),
        ready_state(resources={testing.Resource(name="hockeypuck-snap", path=snap_file)}),
    )

    out = ctx.run(ctx.on.upgrade_charm(), ready_state())

    assert snapd.installed is not None
    assert (snapd.installed.tracking, snapd.installed.revision) == ("latest/edge", "42")
    assert out.unit_status == testing.ActiveStatus()


def test_unchanged_state_is_not_rendered_again(
    ctx: testing.Context, monkeypatch: pytest.MonkeyPatch, root: Path
):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)

    def no_render(*_: object) -> str:
        raise AssertionError("rendered although nothing changed")

    monkeypatch.setattr(charm, "render", no_render)
    out = ctx.run(ctx.on.update_status(), state)

    assert out.unit_status == testing.ActiveStatus()


def test_hand_edited_config_is_put_right(ctx: testing.Context, systemctl: FakeSystemd, root: Path):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    rendered = config_file(root).read_text()
    config_file(root).write_text(rendered.replace('loglevel = "INFO"', 'loglevel = "DEBUG"'))

    ctx.run(ctx.on.update_status(), state)

    assert config_file(root).read_text() == rendered
    # The daemon never read the edit (no restart since), so it needs no restart now either.
    assert systemctl.restarts == 1


def test_upgrade_charm_keeps_config_and_data_without_a_restart(
    ctx: testing.Context, systemctl: FakeSystemd, root: Path
):
    state = ready_state()
    ctx.run(ctx.on.config_changed(), state)
    tree = root / "var/snap/hockeypuck/common/ptree"
    tree.mkdir(parents=True)
    (tree / "CURRENT").write_text("MANIFEST-000001")
    before = config_file(root).read_text()

    out = ctx.run(ctx.on.upgrade_charm(), state)

    assert out.unit_status == testing.ActiveStatus()
    assert config_file(root).read_text() == before
    assert (tree / "CURRENT").read_text() == "MANIFEST-000001"
    assert systemctl.restarts == 1


def test_config_changed_never_takes_a_new_revision_of_the_same_channel(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd
):
    state = ready_state()
    ctx.run(ctx.on.install(), state)
    ctx.run(ctx.on.config_changed(), state)
    snapd.channels["latest/edge"] = "43"  # published to the store meanwhile

    ctx.run(ctx.on.config_changed(), state)

    assert snapd.installed is not None and snapd.installed.revision == "42"
    assert systemctl.restarts == 1


def test_upgrade_charm_takes_the_channels_newest_revision_and_restarts_once(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd
):
    state = ready_state()
    ctx.run(ctx.on.install(), state)
    ctx.run(ctx.on.config_changed(), state)
    snapd.channels["latest/edge"] = "43"

    out = ctx.run(ctx.on.upgrade_charm(), state)
    ctx.run(ctx.on.update_status(), state)

    assert snapd.installed is not None and snapd.installed.revision == "43"
    assert out.workload_version == "2.3.3+rev43"
    assert systemctl.restarts == 2


def test_daemon_that_dies_right_after_the_restart_is_not_reported_active(
    ctx: testing.Context, systemctl: FakeSystemd
):
    systemctl.dies_after_start = True  # e.g. PostgreSQL refuses it: exit within milliseconds

    out = ctx.run(ctx.on.config_changed(), ready_state())

    assert out.unit_status == testing.BlockedStatus(
        f"{snap_layout.SERVICE} is not running (see journalctl -u {snap_layout.SERVICE})"
    )


def test_failed_refresh_is_retried_by_the_next_hook(
    ctx: testing.Context, snapd: FakeSnapd, systemctl: FakeSystemd
):
    state = ready_state()
    ctx.run(ctx.on.install(), state)
    ctx.run(ctx.on.config_changed(), state)
    snapd.fail_with = snap.ConnectionError("snapd is not answering")
    changed = ready_state(config={"snap-channel": "2.3/stable"})

    failed = ctx.run(ctx.on.config_changed(), changed)
    snapd.fail_with = None
    retried = ctx.run(ctx.on.update_status(), changed)

    assert failed.unit_status == testing.BlockedStatus(
        "cannot install the hockeypuck snap: snapd is not answering"
    )
    assert snapd.installed is not None and snapd.installed.revision == "51"
    assert retried.unit_status == testing.ActiveStatus()


@pytest.mark.parametrize(
    ("shipped", "templates", "webroot"),
    [
        (
            "usr/share/hockeypuck/templates",
            "usr/share/hockeypuck/templates",
            "usr/share/hockeypuck/www",
        ),
        ("templates", "templates", "www"),  # the store snap's layout (upstream recipe)
    ],
)
def test_web_paths_follow_the_installed_snap(
    ctx: testing.Context, root: Path, shipped: str, templates: str, webroot: str
):
    (root / "snap/hockeypuck/current" / shipped).mkdir(parents=True)
    (root / "snap/hockeypuck/current" / shipped / "index.html.tmpl").write_text("{{ . }}")

    ctx.run(ctx.on.config_changed(), ready_state())

    hockeypuck = tomllib.loads(config_file(root).read_text())["hockeypuck"]
    assert hockeypuck["indexTemplate"] == f"/snap/hockeypuck/current/{templates}/index.html.tmpl"
    assert hockeypuck["statsTemplate"] == f"/snap/hockeypuck/current/{templates}/stats.html.tmpl"
    assert hockeypuck["webroot"] == f"/snap/hockeypuck/current/{webroot}"


def test_a_snap_without_web_files_uses_hockeypucks_built_in_pages(
    ctx: testing.Context, root: Path
):
    ctx.run(ctx.on.config_changed(), ready_state())

    hockeypuck = tomllib.loads(config_file(root).read_text())["hockeypuck"]
    assert not {"indexTemplate", "vindexTemplate", "statsTemplate", "webroot"} & set(hockeypuck)


def test_install_adds_gnupg_when_the_machine_lacks_it(
    ctx: testing.Context, snapd: FakeSnapd, monkeypatch: pytest.MonkeyPatch
):
    commands: list[list[str]] = []
    which = shutil.which
    monkeypatch.setattr(
        workload.shutil, "which", lambda name, **kw: None if name == "gpg" else which(name, **kw)
    )
    snap_run = snapd.run

    def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        if command[0] == "apt-get":
            commands.append(command)
            return subprocess.CompletedProcess(command, 0, "", "")
        return snap_run(command, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)

    out = ctx.run(ctx.on.install(), base_state())

    assert commands == [["apt-get", "install", "-y", "--no-install-recommends", "gnupg"]]
    assert out.unit_status == testing.BlockedStatus("needs a database relation")


def write_snap_yaml(root: Path, slots: dict[str, object]) -> None:
    path = root / snap_layout.SNAP_YAML.relative_to("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": "hockeypuck", "slots": slots}))  # JSON is YAML


def test_a_snap_sharing_its_log_gets_a_rotated_log_file(ctx: testing.Context, root: Path):
    write_snap_yaml(
        root, {"logs": {"interface": "content", "source": {"read": ["$SNAP_COMMON/logs"]}}}
    )
    state = ready_state()

    ctx.run(ctx.on.install(), state)
    ctx.run(ctx.on.config_changed(), state)

    hockeypuck = tomllib.loads(config_file(root).read_text())["hockeypuck"]
    assert hockeypuck["logfile"] == "/var/snap/hockeypuck/common/logs/hockeypuck.log"
    assert (root / "var/snap/hockeypuck/common/logs").is_dir()
    logrotate = (root / "etc/logrotate.d/hockeypuck").read_text()
    assert "/var/snap/hockeypuck/common/logs/hockeypuck.log {" in logrotate
    assert "copytruncate" in logrotate


def test_a_snap_without_a_log_slot_logs_to_the_journal(ctx: testing.Context, root: Path):
    write_snap_yaml(root, {})
    state = ready_state()

    ctx.run(ctx.on.install(), state)
    ctx.run(ctx.on.config_changed(), state)

    assert "logfile" not in tomllib.loads(config_file(root).read_text())["hockeypuck"]
    assert not (root / "etc/logrotate.d/hockeypuck").exists()


def test_without_hostname_or_haproxy_the_machine_name_is_rendered(
    ctx: testing.Context, root: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("socket.getfqdn", lambda: "node-7.maas.example")

    ctx.run(ctx.on.install(), ready_state())

    hockeypuck = tomllib.loads(config_file(root).read_text())["hockeypuck"]
    assert hockeypuck["hostname"] == "node-7.maas.example"


def test_machine_name_is_looked_up_on_machine_events_only(
    ctx: testing.Context, root: Path, monkeypatch: pytest.MonkeyPatch
):
    lookups: list[str] = []
    monkeypatch.setattr("socket.getfqdn", lambda: lookups.append("x") or "node-7.maas.example")
    state = ctx.run(ctx.on.install(), ready_state())

    ctx.run(ctx.on.update_status(), state)
    ctx.run(ctx.on.leader_elected(), state)

    assert lookups == ["x"]
