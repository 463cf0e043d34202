"""Several units of the charm, each on its own faked machine, stepped hook by hook.

`Cluster` runs the real charm for each unit with ops.testing and carries the peer relation's
databags between the units as Juju would: what a unit writes in a hook is what the others read
in their next one. Each unit has its own machine (`Machine`: file-system root, systemd and
snapd fakes); the module functions of charmlibs.systemd/snap and `workload.settle` /
`workload.wait_healthy` are pointed at the current unit's machine for each hook.

How a rolling restart is stepped (what `roll` does):

- the leader (unit 0) grants the lock in the hook after a unit asked (`relation_changed` of
  the peer relation, or in the same hook when it asks itself);
- a granted unit other than the leader runs its turn in its next `relation_changed` of the
  peer relation (`run(unit, "relation_changed", remote=0)`), then the leader releases the lock
  and grants the next one in its next `relation_changed` (`run(0, "relation_changed",
  remote=unit)`);
- the leader's own turn comes in the hook that charmlibs-rollingops' worker process dispatches
  (`rollingops_lock_granted`, faked at `subprocess.Popen` by conftest's `worker`): here the
  next `update_status`, which runs the same turn.

`restart_log` lists the units whose daemon restarted, in order (systemd restarts and snap
refreshes under a running daemon); `out_of_turn` those that restarted a running daemon outside
the lock's callback (there must be none).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from charmlibs import snap, systemd
from ops import testing

import charm
import rolling
import workload
from tests.unit.conftest import (
    SYSTEMD_CALLS,
    FakeSnapd,
    FakeSystemd,
    config_file,
    make_charm_root,
    ready_state,
)

PEERS = "hockeypuck-peers"
PEER_ID = 900
WAITING = testing.WaitingStatus("waiting to restart (rolling restart, one unit at a time)")


@dataclasses.dataclass
class Machine:
    """One unit's machine: its file system, systemd and snapd."""

    root: Path
    systemd: FakeSystemd
    snapd: FakeSnapd


class Cluster:
    """Units of one application; unit 0 is the leader."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int):
        self.machines = []
        for index in range(size):
            root = tmp_path / f"machine-{index}"
            root.mkdir()
            fake_systemd = FakeSystemd()
            self.machines.append(Machine(root, fake_systemd, FakeSnapd(systemd=fake_systemd)))
        self.current = self.machines[0]
        self.restart_log: list[int] = []
        # Restarts of a running daemon outside the lock's callback (there must be none).
        self.out_of_turn: list[int] = []
        self.in_turn = False
        self.app_data: dict[str, str] = {}
        self.unit_data: dict[int, dict[str, str]] = {index: {} for index in range(size)}
        self.config: dict[str, Any] = {}
        self.states = {index: ready_state(leader=index == 0) for index in range(size)}
        charm_root = make_charm_root(tmp_path / "charm")
        self.contexts = {
            index: testing.Context(charm.HockeypuckCharm, charm_root=charm_root, unit_id=index)
            for index in range(size)
        }
        self._monkeypatch = monkeypatch
        for name in SYSTEMD_CALLS:
            monkeypatch.setattr(systemd, name, self._on_machine("systemd", name))
        for name in ("list_one", "ensure_installed", "hold"):
            monkeypatch.setattr(snap, name, self._on_machine("snapd", name))
        monkeypatch.setattr(workload, "settle", self._on_machine("systemd", "settle"))
        monkeypatch.setattr(workload, "wait_healthy", self._on_machine("systemd", "wait_healthy"))
        callback = rolling.RollingRestart._run

        def in_turn(restarts: rolling.RollingRestart, **kwargs: Any) -> Any:
            self.in_turn = True
            try:
                return callback(restarts, **kwargs)
            finally:
                self.in_turn = False

        monkeypatch.setattr(rolling.RollingRestart, "_run", in_turn)

    def _on_machine(self, part: str, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            machine = self.current
            unit = self.machines.index(machine)
            running = machine.systemd.running
            before = machine.snapd.installed
            result = getattr(getattr(machine, part), name)(*args, **kwargs)
            # systemd restarting the daemon, or snapd refreshing the snap under it.
            if name == "service_restart" or (
                name == "ensure_installed"
                and before is not None
                and machine.snapd.installed != before
            ):
                self.restart_log.append(unit)
                if running and not self.in_turn:
                    self.out_of_turn.append(unit)
            return result

        return call

    def peer_relation(self, unit: int) -> testing.PeerRelation:
        others = {index: data for index, data in self.unit_data.items() if index != unit}
        return testing.PeerRelation(
            PEERS,
            id=PEER_ID,
            local_app_data=dict(self.app_data),
            local_unit_data={
                **testing.PeerRelation(PEERS).local_unit_data,
                **self.unit_data[unit],
            },
            peers_data=others,
        )

    def enter(self, unit: int) -> tuple[testing.State, testing.PeerRelation]:
        """Switch to a unit's machine; its state, with what the others last wrote."""
        relation = self.peer_relation(unit)
        previous = self.states[unit]
        others = {r for r in previous.relations if r.endpoint != PEERS}
        state = dataclasses.replace(
            previous, relations={*others, relation}, config=dict(self.config)
        )
        self.current = self.machines[unit]
        self._monkeypatch.setattr(charm.HockeypuckCharm, "workload_root", self.current.root)
        return state, relation

    def run(self, unit: int, event: str = "config_changed", remote: int | None = None):
        """Run one hook on a unit, with what the others last wrote; keep what it writes."""
        state, relation = self.enter(unit)
        ctx = self.contexts[unit]
        if event == "relation_changed":
            hook = ctx.on.relation_changed(relation, remote_unit=remote)
        else:
            hook = getattr(ctx.on, event)()
        out = ctx.run(hook, state)
        written = out.get_relation(PEER_ID)
        self.unit_data[unit] = dict(written.local_unit_data)
        if unit == 0:
            self.app_data = dict(written.local_app_data)
        self.states[unit] = out
        return out

    def roll(self, limit: int = 30) -> None:
        """Run the hooks Juju would run until no unit holds or asks for the lock."""
        for _ in range(limit):
            granted = self.app_data.get(rolling.GRANTED_KEY, "")
            asking = any(
                data.get(rolling.INTENT_KEY, "") not in rolling.IDLE_INTENTS
                for data in self.unit_data.values()
            )
            if not granted and not asking:
                return
            unit = int(granted.rsplit("/", 1)[1]) if granted else 0
            if unit == 0:
                self.run(0, "update_status")  # the worker's hook, or the next update-status
            else:
                self.run(unit, "relation_changed", remote=0)
                self.run(0, "relation_changed", remote=unit)
        raise AssertionError("the rolling restart did not finish")

    def status(self, unit: int) -> Any:
        return self.states[unit].unit_status

    def log_level(self, unit: int) -> str:
        path = config_file(self.machines[unit].root)
        return tomllib.loads(path.read_text())["hockeypuck"]["loglevel"]
