"""Three units stay available while a shared config change rolls through them.

A probe asks every unit's `/pks/health` and looks a key up, several times a second, from the
start of `juju config` until the rolling restart is over: at every moment at least two units
answer both, and the new config runs on all three at the end. Each daemon takes 1.5 s to start
here, so units restarted together would be seen down together. Hooks run one at a time here,
where Juju runs the units' config-changed hooks at once: so the test also checks that no unit
restarts in config-changed, only in its turn of the rolling restart. The longest gap per unit and
the total time are printed.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from ops import testing

from tests.real.deployment import Deployment, RealUnit
from tests.real.keys import BOB, armored
from tests.real.settings import read_settings

PROBE_EVERY = 0.2  # seconds between two rounds of the probe
PROBE_TIMEOUT = 1.0


def answers(unit: RealUnit) -> bool:
    """Whether the unit answers its health check and a lookup of a stored key."""
    for path in ("/pks/health", f"/pks/lookup?op=get&search=0x{BOB}"):
        try:
            with urllib.request.urlopen(unit.url(path), timeout=PROBE_TIMEOUT) as page:  # noqa: S310
                if page.status != 200:
                    return False
        except (OSError, urllib.error.URLError):
            return False
    return True


@dataclass
class Probe:
    """Rounds of `answers` over every unit, in a thread, until stopped."""

    units: list[RealUnit]
    rounds: list[tuple[float, tuple[bool, ...]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.rounds.append((started, tuple(answers(unit) for unit in self.units)))
            self._stop.wait(max(0.0, PROBE_EVERY - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()

    def longest_gap(self, index: int) -> float:
        """The longest time the unit did not answer (between two rounds where it did)."""
        longest, last_ok = 0.0, self.rounds[0][0]
        for moment, ok in self.rounds:
            if ok[index]:
                longest = max(longest, moment - last_ok - PROBE_EVERY)
                last_ok = moment
        return max(longest, 0.0)


@pytest.fixture(scope="module")
def deployment(make_deployment: Callable[..., Deployment]) -> Deployment:
    deployment = make_deployment("avail")
    # Each start takes as long as several probe rounds: units restarted together would all be
    # seen down at once.
    deployment.start_delay = 1.5
    deployment.deploy(3)
    assert deployment.units[0].client().add_key(armored("bob")).inserted
    return deployment


def test_a_config_change_rolls_through_with_two_units_always_answering(deployment: Deployment):
    pids = {unit.name: unit.daemon_pid() for unit in deployment.units}
    probe = Probe(deployment.units)
    thread = threading.Thread(target=probe.run, daemon=True)
    thread.start()
    time.sleep(1)
    start = time.monotonic()
    try:
        # `juju config`: config-changed on every unit (Juju runs them at the same time on a
        # real model; here one after the other). None may restart in it: each asks for a turn.
        deployment.config.update({"log-level": "debug", "max-key-length": 2_000_000})
        for unit in deployment.units:
            deployment.hook(unit, "config_changed")
        assert {unit.name: unit.daemon_pid() for unit in deployment.units} == pids
        for unit in deployment.units:
            assert deployment.statuses()[unit.name].name == "waiting"
        deployment.settle()  # the turns, one unit at a time
    finally:
        total = time.monotonic() - start
        time.sleep(1)
        probe.stop()
        thread.join(timeout=10)

    worst = min(sum(ok) for _, ok in probe.rounds)
    gaps = {unit.name: probe.longest_gap(unit.index) for unit in deployment.units}
    print(
        f"\nmeasured: {len(probe.rounds)} probe rounds over {total:.1f} s of rolling restart; "
        f"fewest units answering at once: {worst}; longest gap per unit: "
        + ", ".join(f"{name} {gap:.1f} s" for name, gap in gaps.items())
    )
    assert worst >= 2, probe.rounds
    for unit in deployment.units:
        settings, _ = read_settings(unit.config_file)
        assert settings["LogLevel"] == "DEBUG"
        assert settings["OpenPGP"]["MaxKeyLength"] == 2_000_000
        assert unit.daemon_pid() not in (None, pids[unit.name]), "restarted with the new config"
        assert answers(unit)
        assert deployment.statuses()[unit.name] == testing.ActiveStatus("")
