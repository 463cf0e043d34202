"""Two deployments peered only through the recon relation, on real Hockeypuck daemons.

`eu` (two units) and `us` (one unit) each have their own database and model, no
`external-peers`: `juju integrate eu:recon-partners us:recon-peers` alone makes every unit of
one side a recon partner of every unit of the other. A key uploaded to `eu` reaches `us`'s
database and prefix tree, and recon between the sides is between named partners.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from ops import testing

from relations import recon
from tests.real.deployment import Deployment, RealUnit, wait_for
from tests.real.keys import BOB, armored

GOSSIP = 10
DEADLINE = 15 * GOSSIP


@pytest.fixture(scope="module")
def sides(make_deployment: Callable[..., Deployment]) -> tuple[Deployment, Deployment]:
    eu = make_deployment("eu")
    us = make_deployment("us")
    for deployment, units in ((eu, 2), (us, 1)):
        deployment.config["recon-gossip-interval"] = GOSSIP
        deployment.deploy(units)
    eu.integrate(recon.REQUIRES, us, recon.PROVIDES)
    return eu, us


def partner_names(unit: RealUnit) -> set[str]:
    return {peer["Name"] for peer in unit.stats()["peers"] or []}


def test_each_side_names_every_unit_of_the_other(sides: tuple[Deployment, Deployment]):
    eu, us = sides
    for deployment in sides:
        for unit in deployment.units:
            assert deployment.statuses()[unit.name] == testing.ActiveStatus("")
    (us_unit,) = us.units
    assert len(partner_names(us_unit)) == 2  # both eu units
    for unit in eu.units:
        assert len(partner_names(unit)) == 2  # the other eu unit and the us unit


def test_a_key_uploaded_to_one_side_reaches_the_other(sides: tuple[Deployment, Deployment]):
    eu, us = sides
    (us_unit,) = us.units
    start = time.monotonic()

    assert eu.units[0].client().add_key(armored("bob")).inserted

    elapsed = wait_for(lambda: BOB in us.stored(), DEADLINE, "bob reaches us's database")
    expected = len(us.stored())
    wait_for(lambda: us_unit.stats()["Total"] == expected, DEADLINE, "us's prefix tree")
    total = time.monotonic() - start
    print(
        f"\nmeasured: key in the other side's database after {elapsed:.1f} s, in its tree "
        f"after {total:.1f} s (gossip interval {GOSSIP} s)"
    )
    us_unit.client().get_key(f"0x{BOB}")


def test_recon_across_the_relation_is_between_named_partners(
    sides: tuple[Deployment, Deployment],
):
    eu, us = sides
    (us_unit,) = us.units
    addresses = {unit.host.ipv4 for unit in eu.units}

    def named_incoming() -> bool:
        lines = [
            line
            for line in us_unit.log_text().splitlines()
            if "accepted recon from [" in line and any(a in line for a in addresses)
        ]
        return bool(lines) and all("recon=," not in line for line in lines)

    wait_for(named_incoming, DEADLINE, "incoming recon from eu, by name")
