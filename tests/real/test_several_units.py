"""Three units on one database and one external keyserver, all real Hockeypuck daemons.

Each unit and the external peer run in their own network namespace. The units are configured
only through the charm (peer relation, config); the external peer is another deployment of the
charm with its own database, which names the three units in `external-peers`. Recon runs with
a 10 s gossip interval (`recon-gossip-interval`) so that the test waits in seconds what a
default deployment waits in minutes; the figures are reported in both.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ops import testing

import snap_layout
from hkp_client import KeyNotFoundError
from tests.promql_names import SCRAPE_SERIES, exported_metric_names, queried_metric_names
from tests.real.deployment import Deployment, RealUnit, wait_for
from tests.real.keys import ALICE, BOB, CAROL, armored
from tests.real.netns import Lan
from tests.unit.test_observability_files import dashboard_exprs, rules

GOSSIP = 10  # seconds
ZERO_TIME = "0001-01-01T00:00:00Z"
# Deadlines, in gossip intervals: a pair of units that never recon'd in 30 rounds is broken.
PAIRS_DEADLINE = 30 * GOSSIP
CONVERGENCE_DEADLINE = 12 * GOSSIP
STAY_GONE = 3 * GOSSIP
MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module")
def keyservers(
    make_deployment: Callable[..., Deployment], lan: Lan
) -> tuple[Deployment, Deployment]:
    """(the three-unit application, the external keyserver), both up.

    The application also lists a peer that is down (nothing listens at its address), as a
    real keyserver's list often does: recon with it fails, and the failure metrics appear.
    """
    down = lan.add_host("multi-down")
    main = make_deployment("multi")
    external = make_deployment("outside")
    for _ in range(3):
        main.add_unit()
    outside = external.add_unit()
    main.config.update(
        {
            "recon-gossip-interval": GOSSIP,
            "external-peers": f"{outside.host.ipv6},11371,11370\n{down.ipv4},11371,11370",
        }
    )
    external.config.update(
        {
            "recon-gossip-interval": GOSSIP,
            "external-peers": "\n".join(f"{unit.host.ipv6},11371,11370" for unit in main.units),
        }
    )
    main.start()
    external.start()
    return main, external


@pytest.fixture(scope="module")
def main(keyservers: tuple[Deployment, Deployment]) -> Deployment:
    return keyservers[0]


@pytest.fixture(scope="module")
def outside(keyservers: tuple[Deployment, Deployment]) -> RealUnit:
    return keyservers[1].units[0]


def nodename(unit: RealUnit) -> str:
    """The unit's Hockeypuck node name, as the charm writes it."""
    return unit.name.replace("/", "-")


def wait_for_trees(deployment: Deployment, what: str) -> None:
    """Wait until every unit's prefix tree counts as many keys as the database holds."""
    expected = len(deployment.stored())
    for unit in deployment.units:
        wait_for(
            lambda unit=unit: unit.stats()["Total"] == expected,
            CONVERGENCE_DEADLINE,
            f"{unit.name}'s prefix tree {what} ({expected} keys)",
        )


def partner_stats(unit: RealUnit) -> dict[str, dict[str, Any]]:
    return {peer["Name"]: peer for peer in unit.stats()["peers"] or []}


def test_every_unit_is_active_and_names_the_others_and_the_external_peer(main: Deployment):
    for unit in main.units:
        assert main.statuses()[unit.name] == testing.ActiveStatus(""), main.statuses()
        names = set(partner_stats(unit))
        others = {nodename(other) for other in main.units if other is not unit}
        assert others < names
        assert len(names) == 4  # two units, the external peer and the one that is down


def test_keys_from_the_external_peer_reach_every_unit_tree(main: Deployment, outside: RealUnit):
    start = time.monotonic()
    for name in ("alice", "bob", "carol"):
        assert outside.client().add_key(armored(name)).inserted

    wait_for(lambda: {ALICE, BOB, CAROL} <= main.stored(), CONVERGENCE_DEADLINE, "keys arrive")
    MEASURED["external keys in the database"] = time.monotonic() - start
    wait_for_trees(main, "with the new keys")
    MEASURED["every unit's tree converged"] = time.monotonic() - start
    for unit in main.units:
        unit.client().get_key(f"0x{BOB}")


def test_every_unit_sees_incoming_recon_from_every_other_as_a_named_partner(main: Deployment):
    start = time.monotonic()
    for a, b in itertools.permutations(main.units, 2):
        wait_for(
            lambda a=a, b=b: incoming(a, b),
            PAIRS_DEADLINE,
            f"{a.name}'s stats show an incoming recon from its partner {b.name}",
            step=2,
        )
    MEASURED["incoming recon seen for every ordered pair of units"] = time.monotonic() - start
    for unit in main.units:
        assert anonymous_recon_lines(unit) == ""


def test_the_external_peer_reconciles_with_every_unit(main: Deployment, outside: RealUnit):
    for unit in main.units:
        wait_for(
            lambda unit=unit: incoming_or_outgoing(outside, unit.host.ipv6),
            PAIRS_DEADLINE,
            f"recon between the external peer and {unit.name}",
            step=2,
        )


def test_every_metric_the_rules_and_dashboard_query_is_exported(main: Deployment, tmp_path: Path):
    scrapes = []
    for unit in main.units:
        status, body = unit.get(snap_layout.METRICS_PATH, port=snap_layout.METRICS_PORT)
        assert status == 200
        scrape = tmp_path / f"{unit.index}.txt"
        scrape.write_text(body)
        scrapes.append(scrape)
    exported = exported_metric_names(tuple(scrapes)) | SCRAPE_SERIES
    queried = set().union(
        *(queried_metric_names(expr) for expr in dashboard_exprs()),
        *(queried_metric_names(rule["expr"]) for rule in rules()),
    )

    assert queried - exported == set()


def incoming(a: RealUnit, b: RealUnit) -> bool:
    """Whether a's stats show an incoming recon from its partner b."""
    peer = partner_stats(a).get(nodename(b))
    return peer is not None and peer["LastIncomingRecon"] != ZERO_TIME


def incoming_or_outgoing(a: RealUnit, address: str) -> bool:
    """Whether a reconciled, either way, with its partner at this address."""
    for peer in partner_stats(a).values():
        if address in peer["reconAddr"]:
            return peer["LastIncomingRecon"] != ZERO_TIME or peer["LastOutgoingRecon"] != ZERO_TIME
    return False


def anonymous_recon_lines(unit: RealUnit) -> str:
    """Incoming recon taken for an anonymous peer (`[recon=, http=, ...]`)."""
    return "\n".join(
        line for line in unit.log_text().splitlines() if "accepted recon from [recon=," in line
    )


def test_a_blocked_key_is_gone_everywhere_and_stays_gone(main: Deployment, outside: RealUnit):
    assert ALICE in main.stored()
    start = time.monotonic()

    results = main.action(main.units[1], "block-keys", fingerprints=ALICE, comment="abuse")
    main.settle()  # the other units learn of the new list and restart with it

    assert results["keys"] == {ALICE: "blocked+deleted"}
    MEASURED["block-keys and every unit restarted"] = time.monotonic() - start
    outside.client().get_key(f"0x{ALICE}")  # the external peer still offers it
    deadline = time.monotonic() + STAY_GONE
    while time.monotonic() < deadline:
        assert ALICE not in main.stored()
        for unit in main.units:
            with pytest.raises(KeyNotFoundError):
                unit.client().get_key(f"0x{ALICE}")
        time.sleep(2)
    tree_start = time.monotonic()
    wait_for_trees(main, "without the blocked key")
    MEASURED["trees without the blocked key, after the wait"] = time.monotonic() - tree_start
    for unit in main.units:
        assert main.statuses()[unit.name] == testing.ActiveStatus("")


def test_report_the_measurements():
    print()
    for what, seconds in MEASURED.items():
        print(f"measured: {what}: {seconds:.1f} s ({seconds / GOSSIP:.1f} gossip intervals)")
