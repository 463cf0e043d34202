"""Two deployments peered through `hockeypuck-recon`: every unit's file, from the wire data.

Each deployment's units publish what the charm library writes (plus Juju's `egress-subnets`);
each unit of the other deployment reads it back through the library, and the charm renders its
file. The files go through Hockeypuck's layers (Go template, TOML) and its schema, and every
unit of each side must be a named partner of every unit of the other, never inside allowCIDRs
(Hockeypuck 2.3 would take it for an anonymous peer).
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any

import pytest

from charms.hockeypuck.v0.recon_peering import ReconAddress, parse_remote_unit
from hockeypuck_config import render
from relations.database import DatabaseCredentials
from relations.peers import PeerUnit
from state import CharmConfig, CharmState
from tests.functional import go_template
from tests.functional.hockeypuck_schema import violations

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
RELATION_ID = {"eu": 4, "us": 9}  # each model numbers the relation itself
ENDPOINT = {"eu": "recon-partners", "us": "recon-peers"}
# eu: units reachable at their own addresses. us: behind NAT, each unit published at a public
# address of its own (recon-public-port 21370 forwarded to 11370), connecting from a NAT pool.
UNITS = {
    "eu": {0: ("10.1.0.10", 11370), 1: ("10.1.0.11", 11370)},
    "us": {0: ("203.0.113.5", 21370), 1: ("203.0.113.6", 21370), 2: ("203.0.113.7", 21370)},
}
EGRESS = {
    "eu": {0: "10.1.0.10/32", 1: "10.1.0.11/32"},
    "us": dict.fromkeys(range(3), "198.51.100.0/29"),
}
PRIVATE = {"eu": "10.1.0.", "us": "172.16.5."}


def wire(side: str, unit: int) -> dict[str, str]:
    """The unit databag of one unit: the library's keys and Juju's egress-subnets."""
    address, port = UNITS[side][unit]
    published = ReconAddress(f"hockeypuck-{side}-{unit}", address, 11371, port)
    return {**published.to_databag(), "egress-subnets": EGRESS[side][unit]}


def unit_file(side: str, unit: int) -> dict[str, Any]:
    """The config file of one unit, as Hockeypuck reads it."""
    other = "us" if side == "eu" else "eu"
    remote = tuple(
        parse_remote_unit(
            ENDPOINT[side], RELATION_ID[side], f"hockeypuck-{other}/{n}", wire(other, n)
        )
        for n in UNITS[other]
    )
    siblings = tuple(
        PeerUnit(f"hockeypuck-{side}-{n}", f"{PRIVATE[side]}{20 + n}", "2.3.3")
        for n in UNITS[side]
        if n != unit
    )
    state = CharmState(
        config=CharmConfig.from_config({"snap-channel": "latest/edge"}),
        database=DatabaseCredentials("10.0.0.5", 5432, "hockeypuck", "relation-3", "pw", False),
        nodename=f"hockeypuck-{side}-{unit}",
        unit_address=f"{PRIVATE[side]}{20 + unit}",
        peer_units=siblings,
        remote_partners=tuple(unit for unit in remote if unit is not None),
    )
    return tomllib.loads(go_template.render(render(state, TEMPLATES)))


FILES = [(side, unit) for side in UNITS for unit in UNITS[side]]


@pytest.mark.parametrize(("side", "unit"), FILES)
def test_every_unit_of_the_other_side_is_a_named_partner(side: str, unit: int):
    other = "us" if side == "eu" else "eu"

    recon = unit_file(side, unit)["hockeypuck"]["conflux"]["recon"]

    remote = {
        f"hockeypuck-{other}/{n}@{ENDPOINT[side]}:{RELATION_ID[side]}": {
            "httpAddr": f"{address}:11371",
            "reconAddr": f"{address}:{port}",
        }
        for n, (address, port) in UNITS[other].items()
    }
    siblings = {f"hockeypuck-{side}-{n}" for n in UNITS[side] if n != unit}
    assert {name: recon["partner"][name] for name in remote} == remote
    assert set(recon["partner"]) == set(remote) | siblings


@pytest.mark.parametrize(("side", "unit"), FILES)
def test_no_partner_address_is_inside_allow_cidrs(side: str, unit: int):
    recon = unit_file(side, unit)["hockeypuck"]["conflux"]["recon"]

    networks = [ipaddress.ip_network(cidr) for cidr in recon["allowCIDRs"]]
    remote_hosts = {
        ipaddress.ip_address(partner["reconAddr"].rsplit(":", 1)[0])
        for name, partner in recon["partner"].items()
        if "@" in name
    }
    assert remote_hosts
    assert not [(host, net) for host in remote_hosts for net in networks if host in net]


def test_the_nat_pool_is_allowed_where_the_partners_do_not_cover_it():
    eu_recon = unit_file("eu", 0)["hockeypuck"]["conflux"]["recon"]
    us_recon = unit_file("us", 0)["hockeypuck"]["conflux"]["recon"]

    assert ipaddress.ip_network("198.51.100.0/29") in [
        ipaddress.ip_network(cidr) for cidr in eu_recon["allowCIDRs"]
    ]
    # eu connects from the addresses it publishes: nothing of eu's is allowed on us.
    assert not any(cidr.startswith("10.1.0.") for cidr in us_recon["allowCIDRs"])


@pytest.mark.parametrize(("side", "unit"), FILES)
def test_every_file_uses_only_real_hockeypuck_keys(side: str, unit: int):
    assert violations(unit_file(side, unit)) == []
