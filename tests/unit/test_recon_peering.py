"""Peering two Hockeypuck deployments through the recon relations, both sides under ops.testing."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ops import testing

import charm
from tests.unit.conftest import FakeSystemd, config_file, make_charm_root, ready_state

MODEL_US = "9f1c6a5e-3c1b-4bb4-9a53-6b1b7a2c0d11"


@dataclasses.dataclass
class Deployment:
    """One application's unit 0, on a machine of its own, reached at `address`."""

    ctx: testing.Context[charm.HockeypuckCharm]
    root: Path
    address: str
    monkeypatch: pytest.MonkeyPatch

    def run(self, event: Any, state: testing.State) -> testing.State:
        self.monkeypatch.setattr(charm.HockeypuckCharm, "workload_root", self.root)
        return self.ctx.run(event, state)

    def networks(self, *endpoints: str) -> set[testing.Network]:
        return {
            testing.Network(
                endpoint,
                bind_addresses=[testing.BindAddress([testing.Address(self.address)])],
                ingress_addresses=[self.address],
                egress_subnets=[f"{self.address}/32"],
            )
            for endpoint in endpoints
        }

    def recon(self) -> dict[str, Any]:
        text = config_file(self.root).read_text()
        return tomllib.loads(text)["hockeypuck"]["conflux"]["recon"]


@pytest.fixture
def deploy(ctx: testing.Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Make a deployment: its app name, its unit's address (the fakes are shared)."""

    def make(app: str, address: str) -> Deployment:
        root = tmp_path / app / "machine"
        root.mkdir(parents=True)
        context = testing.Context(
            charm.HockeypuckCharm,
            charm_root=make_charm_root(tmp_path / app / "charm"),
            app_name=app,
        )
        return Deployment(context, root, address, monkeypatch)

    return make


def published(out: testing.State, relation: testing.Relation) -> dict[str, str]:
    """What the unit wrote for the other side, Juju's own keys left out."""
    data = out.get_relation(relation.id).local_unit_data
    return {
        key: value
        for key, value in data.items()
        if key not in testing.Relation("x").local_unit_data
    }


def remote_unit(address: str, nodename: str, egress: str | None = None) -> dict[str, str]:
    """A remote unit's databag as Juju and the library leave it."""
    return {
        "egress-subnets": egress or f"{address}/32",
        "ingress-address": address,
        "private-address": address,
        "nodename": nodename,
        "address": address,
        "http-port": "11371",
        "recon-port": "11370",
    }


def test_each_unit_publishes_its_ingress_address_and_node_name(deploy):
    eu = deploy("hockeypuck-eu", "10.1.0.10")
    relation = testing.Relation("recon-partners", remote_app_name="hockeypuck-us")

    out = eu.run(
        eu.ctx.on.relation_joined(relation, remote_unit=0),
        ready_state(relation, networks=eu.networks("recon-partners")),
    )

    assert published(out, relation) == {
        "nodename": "hockeypuck-eu-0",
        "address": "10.1.0.10",
        "http-port": "11371",
        "recon-port": "11370",
    }


def test_two_deployments_become_each_others_partners_both_ways(deploy):
    eu = deploy("hockeypuck-eu", "10.1.0.10")
    us = deploy("hockeypuck-us", "10.2.0.20")
    eu_side = testing.Relation("recon-partners", remote_app_name="hockeypuck-us")
    eu_out = eu.run(
        eu.ctx.on.relation_joined(eu_side, remote_unit=0),
        ready_state(eu_side, networks=eu.networks("recon-partners")),
    )
    eu_unit = {**testing.Relation("x").local_unit_data, **published(eu_out, eu_side)}
    eu_unit["egress-subnets"] = "10.1.0.10/32"

    us_side = testing.Relation(
        "recon-peers", remote_app_name="hockeypuck-eu", remote_units_data={0: eu_unit}
    )
    us_out = us.run(
        us.ctx.on.relation_changed(us_side, remote_unit=0),
        ready_state(us_side, networks=us.networks("recon-peers")),
    )
    us_unit = {**published(us_out, us_side), "egress-subnets": "10.2.0.20/32"}
    eu_side = dataclasses.replace(eu_side, remote_units_data={0: us_unit})
    eu.run(eu.ctx.on.relation_changed(eu_side, remote_unit=0), ready_state(eu_side))

    assert us.recon()["partner"] == {
        "hockeypuck-eu/0@recon-peers:" + str(us_side.id): {
            "httpAddr": "10.1.0.10:11371",
            "reconAddr": "10.1.0.10:11370",
        }
    }
    assert eu.recon()["partner"] == {
        "hockeypuck-us/0@recon-partners:" + str(eu_side.id): {
            "httpAddr": "10.2.0.20:11371",
            "reconAddr": "10.2.0.20:11370",
        }
    }
    # Each side connects from the address it publishes: partners, never anonymous peers.
    assert us.recon()["allowCIDRs"] == []
    assert eu.recon()["allowCIDRs"] == []
    assert isinstance(us_out.unit_status, testing.ActiveStatus)


def test_units_joining_and_departing_update_the_partners(deploy, systemctl: FakeSystemd):
    eu = deploy("hockeypuck-eu", "10.1.0.10")
    one = {0: remote_unit("10.2.0.20", "hockeypuck-us-0")}
    two = {**one, 1: remote_unit("10.2.0.21", "hockeypuck-us-1")}
    relation = testing.Relation("recon-partners", remote_app_name="hockeypuck-us")

    eu.run(eu.ctx.on.config_changed(), ready_state(relation))
    restarts = systemctl.restarts
    joined = dataclasses.replace(relation, remote_units_data=one)
    eu.run(eu.ctx.on.relation_changed(joined, remote_unit=0), ready_state(joined))
    after_first = set(eu.recon()["partner"])
    grown = dataclasses.replace(relation, remote_units_data=two)
    eu.run(eu.ctx.on.relation_changed(grown, remote_unit=1), ready_state(grown))
    after_second = set(eu.recon()["partner"])
    eu.run(eu.ctx.on.update_status(), ready_state(grown))
    eu.run(
        eu.ctx.on.relation_departed(joined, remote_unit=1, departing_unit=1), ready_state(joined)
    )
    after_departure = set(eu.recon()["partner"])
    eu.run(eu.ctx.on.relation_broken(joined), ready_state(joined))

    name = f"@recon-partners:{relation.id}"
    assert after_first == {f"hockeypuck-us/0{name}"}
    assert after_second == {f"hockeypuck-us/0{name}", f"hockeypuck-us/1{name}"}
    assert after_departure == {f"hockeypuck-us/0{name}"}
    assert "partner" not in eu.recon()
    assert systemctl.restarts == restarts + 4  # one per change, none for update-status


def test_cross_model_peer_publishes_the_address_juju_gives_that_relation(deploy):
    eu = deploy("hockeypuck", "203.0.113.10")  # the public address, for the other model
    relation = testing.Relation(
        "recon-peers",
        remote_app_name="hockeypuck",  # the offer, consumed under the same name
        remote_model_uuid=MODEL_US,
        remote_units_data={3: remote_unit("198.51.100.7", "hockeypuck-3")},
    )
    peers = testing.PeerRelation(
        "hockeypuck-peers", peers_data={1: {"address": "10.1.0.11", "hockeypuck-version": "2.3.3"}}
    )

    out = eu.run(
        eu.ctx.on.relation_changed(relation, remote_unit=3),
        ready_state(relation, peers, networks=eu.networks("recon-peers")),
    )

    assert published(out, relation)["address"] == "203.0.113.10"
    # The remote application has the same name: its unit 3 and this application's units never
    # share a partner name.
    assert set(eu.recon()["partner"]) == {
        "hockeypuck-1",
        f"hockeypuck/3@recon-peers:{relation.id}",
    }


def test_behind_nat_only_the_egress_network_is_allowed(deploy):
    eu = deploy("hockeypuck-eu", "10.1.0.10")
    nat = remote_unit("203.0.113.20", "hockeypuck-us-0", egress="198.51.100.0/30")
    relation = testing.Relation("recon-partners", remote_units_data={0: nat})
    config = {"allowed-recon-cidrs": "192.0.2.128/25"}

    eu.run(
        eu.ctx.on.relation_changed(relation, remote_unit=0), ready_state(relation, config=config)
    )

    recon = eu.recon()
    assert recon["allowCIDRs"] == ["192.0.2.128/25", "198.51.100.0/30"]
    assert recon["partner"][f"remote/0@recon-partners:{relation.id}"]["reconAddr"] == (
        "203.0.113.20:11370"
    )


def test_public_address_and_port_are_published(deploy):
    eu = deploy("hockeypuck-eu", "10.1.0.10")
    relation = testing.Relation("recon-peers")
    config = {"recon-public-address": "Keys.Example.ORG", "recon-public-port": 21370}

    out = eu.run(eu.ctx.on.config_changed(), ready_state(relation, config=config))

    assert published(out, relation) == {
        "nodename": "hockeypuck-eu-0",
        "address": "keys.example.org",
        "http-port": "11371",
        "recon-port": "21370",
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"recon-public-address": "127.0.0.1"},
            "invalid config: recon-public-address: '127.0.0.1' is not an IP address or host name"
            " other keyservers can reach",
        ),
        (
            {"recon-public-address": "fe80::1%eth0"},
            "invalid config: recon-public-address: 'fe80::1%eth0' is not an IP address or host"
            " name other keyservers can reach",
        ),
        (
            {"recon-public-port": 70000},
            "invalid config: recon-public-port: 70000 is not 0 (the units' own port) or a port"
            " number",
        ),
    ],
)
def test_bad_public_address_or_port_blocks(deploy, config: dict[str, Any], message: str):
    eu = deploy("hockeypuck-eu", "10.1.0.10")

    out = eu.run(eu.ctx.on.config_changed(), ready_state(config=config))

    assert out.unit_status == testing.BlockedStatus(message)


GARBAGE = [
    {"recon-port": "11370\u00b2"},
    {"recon-port": "\uff11\uff11\uff13\uff17\uff10"},
    {"address": "fe80::1%eth0"},
    {"address": "http://[evil]/"},
    {"address": '"]\n[hockeypuck]\nloglevel = 5'},
    {"address": "{{ .HOME }}"},
    {"nodename": "x\ny"},
    {"egress-subnets": "0.0.0.0/0"},
    {"egress-subnets": "10.0.0.0/33"},
    {"http-port": ""},
]


@pytest.mark.parametrize("garbage", GARBAGE, ids=repr)
def test_garbage_is_refused_with_a_status_and_the_rest_still_works(
    deploy, garbage: dict[str, str]
):
    eu = deploy("hockeypuck-eu", "10.1.0.10")
    good = remote_unit("10.2.0.20", "hockeypuck-us-0")
    relation = testing.Relation(
        "recon-partners",
        remote_app_name="hockeypuck-us",
        remote_units_data={0: good, 1: {**remote_unit("10.2.0.21", "hockeypuck-us-1"), **garbage}},
    )

    out = eu.run(eu.ctx.on.relation_changed(relation, remote_unit=1), ready_state(relation))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(
        f"refused recon data of hockeypuck-us/1 (recon-partners:{relation.id}): "
    )
    assert "\n" not in out.unit_status.message
    assert len(out.unit_status.message) < 160
    recon = eu.recon()  # still a valid file, with the good unit only
    assert set(recon["partner"]) == {f"hockeypuck-us/0@recon-partners:{relation.id}"}
    assert recon["allowCIDRs"] == []


def test_several_refused_units_are_counted(deploy):
    eu = deploy("hockeypuck-eu", "10.1.0.10")
    bad = {**remote_unit("10.2.0.20", "n"), "recon-port": "x"}
    relation = testing.Relation("recon-partners", remote_units_data={0: bad, 1: bad, 2: bad})

    out = eu.run(eu.ctx.on.relation_changed(relation, remote_unit=0), ready_state(relation))

    assert out.unit_status == testing.BlockedStatus(
        f"refused recon data of remote/0 (recon-partners:{relation.id}): recon-port 'x' is not"
        " a port number (1-65535) (and 2 more)"
    )


def test_fixed_remote_data_clears_the_status(deploy):
    eu = deploy("hockeypuck-eu", "10.1.0.10")
    bad = {**remote_unit("10.2.0.20", "n"), "recon-port": "x"}
    relation = testing.Relation("recon-partners", remote_units_data={0: bad})
    eu.run(eu.ctx.on.relation_changed(relation, remote_unit=0), ready_state(relation))
    fixed = dataclasses.replace(relation, remote_units_data={0: remote_unit("10.2.0.20", "n")})

    out = eu.run(eu.ctx.on.relation_changed(fixed, remote_unit=0), ready_state(fixed))

    assert out.unit_status == testing.ActiveStatus("")


def test_the_same_keyserver_through_two_relations_and_the_config_is_one_partner(deploy):
    eu = deploy("hockeypuck-eu", "10.1.0.10")
    unit = remote_unit("10.2.0.20", "hockeypuck-us-0")
    first = testing.Relation(
        "recon-partners", remote_app_name="hockeypuck-us", remote_units_data={0: unit}
    )
    second = testing.Relation(
        "recon-peers", remote_app_name="hockeypuck-us", remote_units_data={0: unit}
    )
    config = {"external-peers": "10.2.0.20,11371,11370"}

    eu.run(eu.ctx.on.config_changed(), ready_state(first, second, config=config))

    assert list(eu.recon()["partner"]) == [f"hockeypuck-us/0@recon-partners:{first.id}"]


def test_a_remote_unit_at_this_units_own_address_is_not_a_partner(deploy):
    eu = deploy("hockeypuck-eu", "10.1.0.10")
    relation = testing.Relation(
        "recon-partners", remote_units_data={0: remote_unit("10.1.0.10", "hockeypuck-eu-0")}
    )

    eu.run(
        eu.ctx.on.relation_changed(relation, remote_unit=0),
        ready_state(relation, networks=eu.networks("hockeypuck-peers")),
    )

    assert "partner" not in eu.recon()
