"""The `hockeypuck-recon` charm library: its wire format, its checks, its allow-list rule."""

from __future__ import annotations

import ast
import ipaddress
import re
import uuid
from pathlib import Path
from typing import Any

import ops
import pytest
from ops import testing

from charms.hockeypuck.v0 import recon_peering
from charms.hockeypuck.v0.recon_peering import (
    InvalidReconDataError,
    ReconAddress,
    ReconPeering,
    RemoteReconUnit,
    networks_to_allow,
    parse_networks,
)

LIB = Path(recon_peering.__file__)
# Digits that str.isdigit() accepts and int() reads, but Go does not: "11370", "10" in full width.
FULLWIDTH_PORT = "\uff11\uff11\uff13\uff17\uff10"
FULLWIDTH_TEN = "\uff11\uff10"


def test_library_has_the_charmhub_header():
    tree = ast.parse(LIB.read_text())
    constants = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.startswith("LIB")
    }

    assert uuid.UUID(hex=constants["LIBID"]).version == 4
    assert constants["LIBAPI"] == 0
    assert isinstance(constants["LIBPATCH"], int)
    assert constants["LIBPATCH"] >= 1
    assert ast.get_docstring(tree)
    assert LIB.parent == Path(__file__).parents[2] / "lib/charms/hockeypuck/v0"


def test_wire_format_is_pinned_key_by_key():
    published = ReconAddress("hockeypuck-eu-0", "203.0.113.10", 11371, 11370)

    assert published.to_databag() == {
        "nodename": "hockeypuck-eu-0",
        "address": "203.0.113.10",
        "http-port": "11371",
        "recon-port": "11370",
    }
    assert recon_peering.INTERFACE == "hockeypuck-recon"
    assert recon_peering.EGRESS_SUBNETS_KEY == "egress-subnets"


@pytest.mark.parametrize(
    ("address", "http_addr", "recon_addr"),
    [
        ("203.0.113.10", "203.0.113.10:11371", "203.0.113.10:11370"),
        ("2001:db8::a", "[2001:db8::a]:11371", "[2001:db8::a]:11370"),
        ("keys.example.net", "keys.example.net:11371", "keys.example.net:11370"),
    ],
)
def test_addresses_are_hockeypucks_host_port_form(address: str, http_addr: str, recon_addr: str):
    published = ReconAddress.from_databag(
        {"nodename": "n", "address": address, "http-port": "11371", "recon-port": "11370"}
    )

    assert (published.http_addr, published.recon_addr) == (http_addr, recon_addr)


@pytest.mark.parametrize(
    ("address", "normalised"),
    [("2001:DB8:0::A", "2001:db8::a"), ("Keys.Example.NET.", "keys.example.net")],
)
def test_addresses_are_normalised(address: str, normalised: str):
    data = {"nodename": "n", "address": address, "http-port": "80", "recon-port": "11370"}

    assert ReconAddress.from_databag(data).address == normalised


GOOD = {"nodename": "hockeypuck-us-0", "address": "198.51.100.7", "http-port": "11371"} | {
    "recon-port": "11370"
}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"recon-port": "11370²"}, "recon-port '11370²' is not a port number (1-65535)"),
        ({"recon-port": FULLWIDTH_PORT}, f"recon-port '{FULLWIDTH_PORT}' is not a port number"),
        ({"http-port": "0"}, "http-port '0' is not a port number (1-65535)"),
        ({"http-port": "65536"}, "http-port '65536' is not a port number (1-65535)"),
        ({"http-port": "+80"}, "http-port '+80' is not a port number (1-65535)"),
        ({"http-port": " 80"}, "http-port ' 80' is not a port number (1-65535)"),
        ({"address": "fe80::1%eth0"}, "address 'fe80::1%eth0' is not an IP address or DNS"),
        ({"address": "127.0.0.1"}, "address '127.0.0.1' cannot be reached from elsewhere"),
        ({"address": "0.0.0.0"}, "address '0.0.0.0' cannot be reached from elsewhere"),  # noqa: S104
        ({"address": "fe80::1"}, "address 'fe80::1' cannot be reached from elsewhere"),
        ({"address": "224.0.0.1"}, "address '224.0.0.1' is a multicast address"),
        ({"address": "10.0.0.256"}, "address '10.0.0.256' is not an IP address or DNS"),
        ({"address": "ex ample.com"}, "address 'ex ample.com' is not an IP address or DNS"),
        ({"address": "exämple.com"}, "address 'exämple.com' is not an IP address or DNS"),
        ({"address": '{{ "x" }}'}, "is not an IP address or DNS host name"),
        ({"address": ""}, "address '' is not an IP address or DNS host name"),
        ({"nodename": "a/b"}, "nodename 'a/b' is not a node name"),
        ({"nodename": "x" * 65}, "nodename 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is not"),
        ({"nodename": ""}, "nodename '' is not a node name"),
    ],
)
def test_invalid_values_are_refused_with_the_reason(change: dict[str, str], reason: str):
    with pytest.raises(InvalidReconDataError) as raised:
        ReconAddress.from_databag(GOOD | change)

    assert reason in str(raised.value)
    assert len(str(raised.value)) < 100


def test_missing_keys_are_named():
    data = {key: value for key, value in GOOD.items() if key not in ("http-port", "nodename")}

    with pytest.raises(InvalidReconDataError, match="^nodename, http-port missing$"):
        ReconAddress.from_databag(data)


def test_own_values_are_checked_too():
    with pytest.raises(InvalidReconDataError, match="not normalised"):
        ReconAddress("n", "2001:DB8::1", 11371, 11370)
    with pytest.raises(InvalidReconDataError, match="recon-port"):
        ReconAddress("n", "192.0.2.1", 11371, 70000)


@pytest.mark.parametrize(
    ("text", "networks"),
    [
        ("10.1.2.3/32", ["10.1.2.3/32"]),
        ("10.1.2.3/32,10.1.2.3/32", ["10.1.2.3/32"]),
        ("203.0.113.0/28, 2001:db8::/64", ["203.0.113.0/28", "2001:db8::/64"]),
        ("203.0.113.9/28", ["203.0.113.0/28"]),
        ("192.0.2.0", ["192.0.2.0/32"]),  # ops.testing's default: an address, no prefix
        ("", []),
    ],
)
def test_egress_subnets_are_read(text: str, networks: list[str]):
    assert [str(network) for network in parse_networks(text)] == networks


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10.0.0.0/8", "egress-subnets '10.0.0.0/8' is wider than /16"),
        ("0.0.0.0/0", "egress-subnets '0.0.0.0/0' is wider than /16"),
        ("2001:db8::/32", "egress-subnets '2001:db8::/32' is wider than /48"),
        ("127.0.0.0/24", "egress-subnets '127.0.0.0/24' is not routable"),
        ("fe80::1%eth0/128", "egress-subnets 'fe80::1%eth0/128' is not an IP network"),
        ("10.0.0.1/33", "egress-subnets '10.0.0.1/33' is not an IP network"),
        (
            f"{FULLWIDTH_TEN}.0.0.1/32",
            f"egress-subnets '{FULLWIDTH_TEN}.0.0.1/32' is not an IP network",
        ),
    ],
)
def test_bad_egress_subnets_are_refused(text: str, reason: str):
    with pytest.raises(InvalidReconDataError, match=f"^{re.escape(reason)}$"):
        parse_networks(text)


def remote(address: str, *subnets: str) -> RemoteReconUnit:
    return RemoteReconUnit(
        "recon-partners",
        7,
        "hockeypuck-us/0",
        ReconAddress("hockeypuck-us-0", address, 11371, 11370),
        tuple(ipaddress.ip_network(subnet) for subnet in subnets),
    )


@pytest.mark.parametrize(
    ("units", "partners", "allowed"),
    [
        # The unit connects from the address it publishes: the partner entry covers it.
        ([remote("10.1.0.5", "10.1.0.5/32")], ["10.1.0.5"], []),
        # Behind NAT: the egress address is not the published one.
        ([remote("203.0.113.10", "198.51.100.1/32")], ["203.0.113.10"], ["198.51.100.1/32"]),
        # A NAT pool that holds a partner address: the address is cut out of it.
        (
            [remote("198.51.100.1", "198.51.100.0/30")],
            ["198.51.100.1"],
            ["198.51.100.0/32", "198.51.100.2/31"],
        ),
        # Two units behind one NAT address: one entry.
        (
            [remote("203.0.113.10", "198.51.100.1/32"), remote("203.0.113.11", "198.51.100.1/32")],
            ["203.0.113.10", "203.0.113.11"],
            ["198.51.100.1/32"],
        ),
        # A DNS name cannot be cut out: Hockeypuck resolves it when it starts.
        (
            [remote("keys.example.net", "198.51.100.1/32")],
            ["keys.example.net"],
            ["198.51.100.1/32"],
        ),
        # A partner from elsewhere (another unit, an external peer) is cut out too.
        ([remote("203.0.113.10", "10.1.0.0/31")], ["203.0.113.10", "10.1.0.1"], ["10.1.0.0/32"]),
        ([remote("2001:db8::5", "2001:db8::5/128")], ["2001:db8::5"], []),
    ],
)
def test_allowed_networks_never_hold_a_partner(
    units: list[RemoteReconUnit], partners: list[str], allowed: list[str]
):
    networks = networks_to_allow(units, partners)

    assert [str(network) for network in networks] == allowed
    for address in partners:
        if address[0].isdigit():
            assert not any(ipaddress.ip_address(address) in net for net in networks)


def test_partner_names_cannot_collide_across_relations():
    one = remote("10.1.0.5")
    other = RemoteReconUnit("recon-peers", 8, "hockeypuck-us/0", one.published, ())

    assert one.partner_name == "hockeypuck-us/0@recon-partners:7"
    assert other.partner_name == "hockeypuck-us/0@recon-peers:8"


# The library in a charm of its own, as another charm (the Kubernetes one) would use it.

META = {
    "name": "keyserver",
    "provides": {"recon-peers": {"interface": "hockeypuck-recon"}},
    "requires": {"recon-partners": {"interface": "hockeypuck-recon"}},
}


class KeyserverCharm(ops.CharmBase):
    """A minimal user of the library: publishes on every event, records what it read."""

    seen: list[recon_peering.ReconPartners] = []  # noqa: RUF012

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.recon = ReconPeering(self, ("recon-peers", "recon-partners"))
        framework.observe(self.recon.on.partners_changed, self._on_partners_changed)

    def _on_partners_changed(self, _: ops.EventBase) -> None:
        self.recon.publish("keyserver-0", 8080, 11370, public_address=None)
        KeyserverCharm.seen.append(self.recon.partners())


@pytest.fixture
def keyserver() -> testing.Context[KeyserverCharm]:
    KeyserverCharm.seen = []
    return testing.Context(KeyserverCharm, meta=META)


@pytest.mark.parametrize("endpoint", ["recon-peers", "recon-partners"])
def test_another_charm_publishes_on_either_endpoint(
    keyserver: testing.Context[KeyserverCharm], endpoint: str
):
    relation = testing.Relation(endpoint, remote_units_data={0: {}})

    out = keyserver.run(
        keyserver.on.relation_joined(relation, remote_unit=0), testing.State(relations={relation})
    )

    assert out.get_relation(relation.id).local_unit_data == {
        **testing.Relation(endpoint).local_unit_data,  # what Juju writes itself
        "nodename": "keyserver-0",
        "address": "192.0.2.0",
        "http-port": "8080",
        "recon-port": "11370",
    }
    assert KeyserverCharm.seen == [recon_peering.ReconPartners()]


def test_units_that_have_not_published_are_skipped_not_refused(
    keyserver: testing.Context[KeyserverCharm],
):
    relation = testing.Relation(
        "recon-partners",
        remote_units_data={0: {"egress-subnets": "10.0.0.9/32"}, 1: {**GOOD}},
    )

    keyserver.run(
        keyserver.on.relation_changed(relation, remote_unit=1), testing.State(relations={relation})
    )

    (seen,) = KeyserverCharm.seen
    assert [unit.unit_name for unit in seen.units] == ["remote/1"]
    assert seen.refused == ()


def test_every_relation_event_asks_for_a_reconcile(keyserver: testing.Context[KeyserverCharm]):
    relation = testing.Relation("recon-peers", remote_units_data={0: {**GOOD}})
    state = testing.State(relations={relation})
    events: list[Any] = [
        keyserver.on.relation_created(relation),
        keyserver.on.relation_joined(relation, remote_unit=0),
        keyserver.on.relation_changed(relation, remote_unit=0),
        keyserver.on.relation_departed(relation, remote_unit=0, departing_unit=0),
        keyserver.on.relation_broken(relation),
    ]

    for event in events:
        keyserver.run(event, state)

    assert len(KeyserverCharm.seen) == len(events)
    assert KeyserverCharm.seen[-1] == recon_peering.ReconPartners()  # broken: gone


def test_nothing_is_published_while_juju_has_no_ingress_address(
    keyserver: testing.Context[KeyserverCharm],
):
    relation = testing.Relation("recon-peers")
    no_address = testing.Network("recon-peers", bind_addresses=[], ingress_addresses=[])

    out = keyserver.run(
        keyserver.on.relation_created(relation),
        testing.State(relations={relation}, networks={no_address}),
    )

    assert "nodename" not in out.get_relation(relation.id).local_unit_data


def test_nothing_is_published_while_network_get_fails(
    keyserver: testing.Context[KeyserverCharm], monkeypatch: pytest.MonkeyPatch
):
    relation = testing.Relation("recon-peers")

    def fails(_: ops.Binding) -> ops.Network:
        raise ops.ModelError("ERROR relation 3 not found")

    monkeypatch.setattr(ops.Binding, "network", property(fails))
    out = keyserver.run(
        keyserver.on.relation_created(relation), testing.State(relations={relation})
    )

    assert "nodename" not in out.get_relation(relation.id).local_unit_data


def test_unchanged_data_is_not_written_again(
    keyserver: testing.Context[KeyserverCharm], monkeypatch: pytest.MonkeyPatch
):
    relation = testing.Relation("recon-peers")
    first = keyserver.run(
        keyserver.on.relation_created(relation), testing.State(relations={relation})
    )
    writes: list[str] = []

    with keyserver(keyserver.on.update_status(), first) as manager:
        databag = manager.charm.model.relations["recon-peers"][0].data[manager.charm.unit]
        write = type(databag).__setitem__

        def recording(self: ops.RelationDataContent, key: str, value: str) -> None:
            writes.append(key)
            write(self, key, value)

        monkeypatch.setattr(type(databag), "__setitem__", recording)
        manager.charm.recon.publish("keyserver-0", 8080, 11370)
        manager.charm.recon.publish("keyserver-1", 8080, 11370)

    assert writes == ["nodename"]
