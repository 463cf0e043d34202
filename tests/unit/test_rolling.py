"""Rolling restarts: several units, each its own machine, stepped hook by hook (`Cluster`).

The lock is charmlibs-rollingops' own (peer mode); its worker process, which dispatches the
leader's own turn, is faked at `subprocess.Popen` (conftest's `worker`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys
from pathlib import Path

import pytest
from ops import testing

import charm
import rolling
import workload
from tests.unit.cluster import PEERS, WAITING, Cluster
from tests.unit.conftest import FakeSnapd, FakeSystemd, FakeWorker, ready_state


@pytest.fixture
def cluster(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    blocklist_db: object,
    admin_keys_made: object,
    worker: FakeWorker,
    hkp_port: object,
) -> Cluster:
    three = Cluster(tmp_path, monkeypatch, 3)
    for unit in (0, 1, 2):
        three.run(unit, "install")
    for unit in (0, 1, 2):  # units that joined later changed the others' recon partners
        three.run(unit, "config_changed")
    three.roll()
    three.restart_log.clear()
    return three


def test_units_start_at_once_without_the_lock(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    blocklist_db: object,
    admin_keys_made: object,
    worker: FakeWorker,
    hkp_port: object,
):
    three = Cluster(tmp_path, monkeypatch, 3)

    for unit in (0, 1, 2):
        three.run(unit, "install")

    assert [m.systemd.running for m in three.machines] == [True, True, True]
    assert worker.commands == []


def test_a_config_change_restarts_one_unit_at_a_time(cluster: Cluster, worker: FakeWorker):
    cluster.config = {"log-level": "DEBUG"}
    started_before = len(worker.commands)
    health_before = [m.systemd.health_waits for m in cluster.machines]

    for unit in (0, 1, 2):
        cluster.run(unit, "config_changed")

    # Nobody restarted yet: the leader granted itself the lock and started the worker
    # process, which dispatches its turn in a hook of its own.
    assert cluster.restart_log == []
    assert all(cluster.status(unit) == WAITING for unit in (0, 1, 2))
    assert cluster.app_data[rolling.GRANTED_KEY] == "hockeypuck/0"
    assert len(worker.commands) == 1 + started_before
    assert "--unit-name" in worker.commands[0]

    cluster.run(0, "update_status")  # the worker's hook, or the next update-status
    assert cluster.restart_log == [0]
    assert cluster.status(0) == testing.ActiveStatus()
    assert cluster.app_data[rolling.GRANTED_KEY] == "hockeypuck/1"
    assert cluster.status(1) == WAITING

    cluster.run(1, "relation_changed", remote=0)
    assert cluster.restart_log == [0, 1]
    assert cluster.status(1) == testing.ActiveStatus()

    cluster.run(0, "relation_changed", remote=1)
    assert cluster.app_data[rolling.GRANTED_KEY] == "hockeypuck/2"
    cluster.run(2, "relation_changed", remote=0)
    cluster.run(0, "relation_changed", remote=2)

    assert cluster.restart_log == [0, 1, 2]
    assert cluster.out_of_turn == []
    assert [cluster.log_level(unit) for unit in (0, 1, 2)] == ["DEBUG"] * 3
    assert all(cluster.status(unit) == testing.ActiveStatus() for unit in (0, 1, 2))
    assert not cluster.app_data.get(rolling.GRANTED_KEY)
    assert [
        m.systemd.health_waits - before
        for m, before in zip(cluster.machines, health_before, strict=True)
    ] == [1, 1, 1]


def test_a_unit_that_does_not_answer_after_its_restart_keeps_the_lock(cluster: Cluster):
    cluster.config = {"log-level": "DEBUG"}
    for unit in (1, 2, 0):
        cluster.run(unit, "config_changed")
    assert cluster.app_data[rolling.GRANTED_KEY] == "hockeypuck/1"
    cluster.machines[1].systemd.answers_health = False

    cluster.run(1, "relation_changed", remote=0)
    cluster.run(0, "relation_changed", remote=1)

    assert cluster.restart_log == [1]
    assert cluster.status(1) == testing.BlockedStatus(
        "restarted, but no answer on /pks/health within 120 s: the other units wait to restart"
        " (connection refused) (see journalctl -u snap.hockeypuck.hockeypuck.service)"
    )
    # Its retry comes first: unit 2 does not restart while unit 1 does not answer.
    assert cluster.app_data[rolling.GRANTED_KEY] == "hockeypuck/1"
    cluster.run(2, "relation_changed", remote=0)
    assert cluster.restart_log == [1]

    cluster.machines[1].systemd.answers_health = True
    cluster.run(1, "relation_changed", remote=0)
    cluster.run(0, "relation_changed", remote=1)
    cluster.run(2, "relation_changed", remote=0)

    # The retry found the config applied: it waited for the answer, without restarting.
    assert cluster.restart_log == [1, 2]
    assert cluster.status(1) == testing.ActiveStatus()


def test_no_op_hooks_ask_for_no_lock_and_restart_nothing(cluster: Cluster):
    for unit in (0, 1, 2):
        cluster.run(unit, "update_status")
        cluster.run(unit, "config_changed")
        cluster.run(unit, "leader_elected")
        cluster.run(unit, "relation_changed", remote=(unit + 1) % 3)

    assert cluster.restart_log == []
    assert all(
        cluster.unit_data[unit].get(rolling.INTENT_KEY, "") in rolling.IDLE_INTENTS
        for unit in (0, 1, 2)
    )
    assert not cluster.app_data.get(rolling.GRANTED_KEY)


def test_the_lock_library_is_not_built_without_rolling_work(ctx: testing.Context):
    peers = testing.PeerRelation(PEERS, peers_data={1: {"address": "10.0.0.1"}})

    with ctx(ctx.on.update_status(), ready_state(peers)) as manager:
        manager.run()
        assert manager.charm.restarts._manager is None


SRC = Path(charm.__file__).parent


def test_importing_the_charm_does_not_import_the_lock_library():
    code = "import charm, sys; print('charmlibs.rollingops' in sys.modules)"
    import subprocess  # noqa: PLC0415 - the conftest's fake is not in place here

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": os.pathsep.join([str(SRC), str(SRC.parent / "lib")])},
    )

    assert done.stdout.strip() == "False"


def test_a_single_unit_restarts_at_once(
    ctx: testing.Context, systemctl: FakeSystemd, worker: FakeWorker
):
    peers = testing.PeerRelation(PEERS)
    first = ctx.run(ctx.on.config_changed(), ready_state(peers, leader=True))
    restarts = systemctl.restarts

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(first, config={"log-level": "DEBUG"})
    )

    assert systemctl.restarts == restarts + 1
    assert out.unit_status == testing.ActiveStatus()
    assert worker.commands == []


def test_an_action_restarts_its_own_unit_at_once(cluster: Cluster):
    cluster.config = {"log-level": "DEBUG"}
    cluster.run(1, "config_changed")
    assert cluster.status(1) == WAITING

    ctx = cluster.contexts[1]
    state, _ = cluster.enter(1)
    with ctx(ctx.on.update_status(), state) as manager:
        manager.charm.apply_config_now()

    assert cluster.restart_log == [1]
    assert cluster.log_level(1) == "DEBUG"


@pytest.mark.parametrize("seed", range(3))
def test_in_any_order_of_hooks_units_restart_only_in_their_turn(cluster: Cluster, seed: int):
    rng = random.Random(seed)

    for _ in range(40):
        unit = rng.randrange(3)
        if rng.random() < 0.3:
            cluster.config = {"log-level": rng.choice(["DEBUG", "INFO", "WARNING"])}
        event = rng.choice(["config_changed", "update_status", "relation_changed"])
        cluster.run(unit, event, remote=(unit + 1) % 3)
    for unit in (0, 1, 2):
        cluster.run(unit, "config_changed")
    cluster.roll()
    wanted = cluster.config.get("log-level", "INFO")
    assert cluster.out_of_turn == []
    assert [cluster.log_level(unit) for unit in (0, 1, 2)] == [wanted] * 3
    assert all(cluster.status(unit) == testing.ActiveStatus() for unit in (0, 1, 2))


def test_a_new_units_first_start_does_not_wait_even_if_snapd_started_the_daemon(
    ctx: testing.Context, systemctl: FakeSystemd, worker: FakeWorker
):
    peers = testing.PeerRelation(PEERS, peers_data={1: {"address": "10.0.0.1"}})
    systemctl.running = True  # snapd starts a daemon when it installs the snap

    out = ctx.run(ctx.on.config_changed(), ready_state(peers))

    assert systemctl.restarts == 1
    assert out.unit_status == testing.ActiveStatus()
    assert rolling.INTENT_KEY not in out.get_relation(peers.id).local_unit_data
    assert worker.commands == []


def test_a_new_snap_channel_is_refreshed_one_unit_at_a_time(cluster: Cluster):
    cluster.config = {"snap-channel": "2.3/stable"}

    for unit in (0, 1, 2):
        cluster.run(unit, "config_changed")

    assert [m.snapd.installed.tracking for m in cluster.machines if m.snapd.installed] == [
        "latest/edge"
    ] * 3
    assert all(cluster.status(unit) == WAITING for unit in (0, 1, 2))

    cluster.roll()

    assert [m.snapd.installed.revision for m in cluster.machines if m.snapd.installed] == [
        "51"
    ] * 3
    assert sorted(cluster.restart_log) == [0, 1, 2]  # snapd's restart, and nothing more
    assert cluster.out_of_turn == []
    assert all(cluster.status(unit) == testing.ActiveStatus() for unit in (0, 1, 2))


def test_upgrade_charm_takes_the_newest_revision_one_unit_at_a_time(cluster: Cluster):
    for machine in cluster.machines:
        machine.snapd.channels["latest/edge"] = "43"

    for unit in (0, 1, 2):
        cluster.run(unit, "upgrade_charm")
    assert cluster.restart_log == []
    cluster.roll()

    assert [m.snapd.installed.revision for m in cluster.machines if m.snapd.installed] == [
        "43"
    ] * 3
    assert sorted(cluster.restart_log) == [0, 1, 2]
    assert cluster.out_of_turn == []


def test_config_changed_with_the_same_channel_asks_for_no_refresh(cluster: Cluster):
    for machine in cluster.machines:
        machine.snapd.channels["latest/edge"] = "43"

    for unit in (0, 1, 2):
        cluster.run(unit, "config_changed")

    assert not cluster.app_data.get(rolling.GRANTED_KEY)
    assert [m.snapd.installed.revision for m in cluster.machines if m.snapd.installed] == [
        "42"
    ] * 3


def test_a_waiting_unit_queues_each_kind_of_restart_once(cluster: Cluster):
    for step in range(6):
        cluster.config = {"snap-channel": "2.3/stable", "log-level": ["DEBUG", "INFO"][step % 2]}
        cluster.run(1, "config_changed")
        cluster.run(1, "update_status")

    queued = json.loads(cluster.unit_data[1]["operations"])
    assert [operation["kwargs"] for operation in queued] == [{}]


@pytest.mark.parametrize(
    ("installed_from", "channel", "resource", "update", "restarts"),
    [
        ("store", "latest/edge", None, False, False),
        ("store", "latest/edge", None, True, True),  # upgrade-charm: maybe a new revision
        ("store", "2.3/stable", None, False, True),
        ("file", "latest/edge", "same", False, False),
        ("file", "latest/edge", "other", False, True),
        ("file", "latest/edge", None, False, True),  # back from the file to the store
    ],
)
def test_which_refreshes_would_restart_a_running_daemon(
    root: Path,
    snapd: FakeSnapd,
    systemctl: FakeSystemd,
    tmp_path: Path,
    installed_from: str,
    channel: str,
    resource: str | None,
    update: bool,
    restarts: bool,
):
    machine = workload.Hockeypuck(root)
    first, other = tmp_path / "first.snap", tmp_path / "other.snap"
    first.write_bytes(b"first")
    other.write_bytes(b"other")
    machine.install("latest/edge", first if installed_from == "file" else None)
    files = {"same": first, "other": other, None: None}

    systemctl.running = False
    stopped = machine.refresh_restarts(channel, files[resource], update)
    systemctl.running = True
    running = machine.refresh_restarts(channel, files[resource], update)

    assert not stopped
    assert running == restarts
