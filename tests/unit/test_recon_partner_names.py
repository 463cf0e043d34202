"""One list of recon partners from three sources, with names unique by construction.

Units of this application, remote units of the recon relations and `external-peers` lines all
become `[hockeypuck.conflux.recon.partner.<name>]` tables: two tables of one name are not TOML
(Hockeypuck would not start). Each case renders the whole file and parses it.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path

import pytest

from charms.hockeypuck.v0.recon_peering import ReconAddress, RemoteReconUnit
from hockeypuck_config import render
from relations.database import DatabaseCredentials
from relations.peers import PeerUnit
from state import CharmConfig, CharmState, InvalidConfigError

TEMPLATES = Path(__file__).parents[2] / "templates"
DATABASE = DatabaseCredentials("10.0.0.5", 5432, "hockeypuck", "relation-7", "pw", False)
PARTNER_TABLE = re.compile(r"^\[hockeypuck\.conflux\.recon\.partner\.(.+)\]$", re.M)


def remote(unit: str, address: str, relation_id: int = 7, port: int = 11370) -> RemoteReconUnit:
    nodename = unit.replace("/", "-")
    published = ReconAddress(nodename, address, 11371, port)
    return RemoteReconUnit("recon-partners", relation_id, unit, published, ())


def partners_of(
    external: str = "",
    units: tuple[PeerUnit, ...] = (),
    remote_units: tuple[RemoteReconUnit, ...] = (),
) -> dict[str, dict[str, str]]:
    """The partner tables of the rendered file, after checking each name occurs once."""
    config = CharmConfig.from_config({"snap-channel": "latest/edge", "external-peers": external})
    state = CharmState(
        config=config,
        database=DATABASE,
        nodename="hockeypuck-0",
        unit_address="10.0.0.10",
        peer_units=units,
        remote_partners=remote_units,
    )
    text = render(state, TEMPLATES)
    headers = PARTNER_TABLE.findall(text)
    assert len(headers) == len(set(headers)), headers
    return tomllib.loads(text)["hockeypuck"]["conflux"]["recon"].get("partner", {})


@pytest.mark.parametrize(
    ("external", "units", "remote_units", "names"),
    [
        # Two hosts whose old names (dots and colons made dashes) were one.
        ("a.b,11371,11370\na-b,11371,11370", (), (), ["a.b:11370", "a-b:11370"]),
        (
            "2001:db8::1,11371,11370\n2001-db8--1,11371,11370",
            (),
            (),
            ["[2001:db8::1]:11370", "2001-db8--1:11370"],
        ),
        # One host, two recon ports: two keyservers.
        (
            "peer.example.com,11371,11370\npeer.example.com,11381,11380",
            (),
            (),
            ["peer.example.com:11370", "peer.example.com:11380"],
        ),
        # An external host named like a unit's old-style partner name.
        (
            "keys,11371,11370",
            (PeerUnit("keys-11370", "10.0.0.11", "2.3.3"),),
            (),
            ["keys-11370", "keys:11370"],
        ),
        # A remote application with this one's name (another model): its unit 1.
        (
            "",
            (PeerUnit("hockeypuck-1", "10.0.0.11", "2.3.3"),),
            (remote("hockeypuck/1", "10.2.0.21"),),
            ["hockeypuck-1", "hockeypuck/1@recon-partners:7"],
        ),
        # The same remote unit name in two relations.
        (
            "",
            (),
            (remote("hockeypuck-us/0", "10.2.0.20", 7), remote("hockeypuck-us/0", "10.3.0.20", 8)),
            ["hockeypuck-us/0@recon-partners:7", "hockeypuck-us/0@recon-partners:8"],
        ),
        # A remote unit that is also an external peer: one partner, the relation's.
        (
            "10.2.0.20,11371,11370",
            (),
            (remote("hockeypuck-us/0", "10.2.0.20"),),
            ["hockeypuck-us/0@recon-partners:7"],
        ),
        # An external peer that is a unit: one partner, the unit.
        (
            "10.0.0.11,11371,11370",
            (PeerUnit("hockeypuck-1", "10.0.0.11", "2.3.3"),),
            (),
            ["hockeypuck-1"],
        ),
        # This unit's own address, from the config or a relation: never its own partner.
        ("10.0.0.10,11371,11370", (), (remote("hockeypuck/0", "10.0.0.10"),), []),
    ],
)
def test_partner_names_are_unique_and_each_keyserver_is_listed_once(
    external: str,
    units: tuple[PeerUnit, ...],
    remote_units: tuple[RemoteReconUnit, ...],
    names: list[str],
):
    assert list(partners_of(external, units, remote_units)) == names


@pytest.mark.parametrize(
    ("external", "duplicate"),
    [
        # The example of issue 11: one recon endpoint, two HTTP ports.
        ("peer.example.com,11371,11370\npeer.example.com,80,11370", "peer.example.com:11370"),
        ("Peer.Example.com.,11371,11370\npeer.example.com,11371,11370", "peer.example.com:11370"),
        ("2001:DB8::1,11371,11370\n2001:db8:0::1,80,11370", "[2001:db8::1]:11370"),
    ],
)
def test_one_keyserver_listed_twice_is_refused(external: str, duplicate: str):
    with pytest.raises(InvalidConfigError) as raised:
        CharmConfig.from_config({"snap-channel": "latest/edge", "external-peers": external})

    assert str(raised.value) == f"external-peers: {duplicate} is listed more than once"


def test_addresses_of_every_source_are_hockeypucks_host_port_form():
    partners = partners_of(
        "2001:db8::7,8080,8081",
        (PeerUnit("hockeypuck-1", "fd00::11", "2.3.3"),),
        (remote("hockeypuck-us/0", "2001:db8:1::20"),),
    )

    for partner in partners.values():
        for address in (partner["httpAddr"], partner["reconAddr"]):
            host, port = re.fullmatch(r"\[(.+)\]:(\d+)", address).groups()  # type: ignore[union-attr]
            assert ipaddress.ip_address(host).version == 6
            assert 1 <= int(port) <= 65535
    assert partners["[2001:db8::7]:8081"] == {
        "httpAddr": "[2001:db8::7]:8080",
        "reconAddr": "[2001:db8::7]:8081",
    }
