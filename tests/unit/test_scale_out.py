"""Several units: the peer mesh of recon partners, and publishing HKP through HAProxy."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from charmlibs import snap
from ops import testing

from tests.unit.conftest import FakeSnapd, FakeSystemd, config_file, ready_state

PEERS = "hockeypuck-peers"
UNIT_ADDRESS = "192.0.2.0"  # ops.testing's default address for every binding


def peer_relation(count: int, **kwargs: Any) -> testing.PeerRelation:
    """A peer relation in which units 1..count-1 (not this unit, 0) published addresses."""
    return testing.PeerRelation(
        PEERS,
        peers_data={
            index: {"address": f"10.0.0.{index}", "hockeypuck-version": "2.3.3"}
            for index in range(1, count)
        },
        **kwargs,
    )


def recon(root: Path) -> dict[str, Any]:
    return tomllib.loads(config_file(root).read_text())["hockeypuck"]["conflux"]["recon"]


@pytest.mark.parametrize("units", [1, 2, 5])
def test_every_other_unit_is_a_partner_and_not_in_allowed_cidrs(
    ctx: testing.Context, root: Path, units: int
):
    peers = peer_relation(units)

    ctx.run(ctx.on.config_changed(), ready_state(peers))

    section = recon(root)
    expected = {
        f"hockeypuck-{index}": {
            "httpAddr": f"10.0.0.{index}:11371",
            "reconAddr": f"10.0.0.{index}:11370",
        }
        for index in range(1, units)
    }
    assert section.get("partner", {}) == expected
    # Hockeypuck matches allowCIDRs before partners: a unit listed there would be anonymous.
    assert section["allowCIDRs"] == []
    assert "hockeypuck-0" not in section.get("partner", {})


def test_unit_publishes_its_address_and_version(ctx: testing.Context):
    peers = peer_relation(2)

    ctx.run(ctx.on.install(), ready_state(peers))
    out = ctx.run(ctx.on.config_changed(), ready_state(peers))

    assert out.get_relation(peers.id).local_unit_data == {
        "address": UNIT_ADDRESS,
        "hockeypuck-version": "2.3.3+rev42",
    } | {
        key: value
        for key, value in out.get_relation(peers.id).local_unit_data.items()
        if key.startswith("egress") or key.startswith("ingress") or key == "private-address"
    }


def test_join_and_depart_restart_once_each_in_its_turn(
    ctx: testing.Context, systemctl: FakeSystemd, root: Path
):
    two = peer_relation(2)
    ctx.run(ctx.on.config_changed(), ready_state(two))
    started = systemctl.restarts
    three = peer_relation(3, id=two.id)

    joined = ctx.run(ctx.on.relation_joined(three, remote_unit=2), ready_state(three))
    asked = joined.get_relation(three.id).local_unit_data
    granted = peer_relation(
        3, id=two.id, local_unit_data=asked, local_app_data={"granted_unit": "hockeypuck/0"}
    )
    ctx.run(ctx.on.relation_changed(granted, remote_unit=2), ready_state(granted))
    ctx.run(ctx.on.update_status(), ready_state(granted))

    assert joined.unit_status == testing.WaitingStatus(
        "waiting to restart (rolling restart, one unit at a time)"
    )
    assert asked["state"] == "request"
    assert systemctl.restarts == started + 1
    assert set(recon(root)["partner"]) == {"hockeypuck-1", "hockeypuck-2"}

    departed = peer_relation(2, id=two.id)
    left = ctx.run(
        ctx.on.relation_departed(departed, remote_unit=2, departing_unit=2),
        ready_state(departed),
    )
    granted = peer_relation(
        2,
        id=two.id,
        local_unit_data=left.get_relation(two.id).local_unit_data,
        local_app_data={"granted_unit": "hockeypuck/0"},
    )
    ctx.run(ctx.on.update_status(), ready_state(granted))

    assert systemctl.restarts == started + 2
    assert set(recon(root)["partner"]) == {"hockeypuck-1"}


def test_unit_without_an_address_yet_is_not_a_partner(ctx: testing.Context, root: Path):
    peers = testing.PeerRelation(PEERS, peers_data={1: {}, 2: {"address": "not-an-ip"}})

    ctx.run(ctx.on.config_changed(), ready_state(peers))

    assert "partner" not in recon(root)


def test_external_peers_and_allowed_cidrs(ctx: testing.Context, root: Path):
    peers = peer_relation(2)
    config = {
        "external-peers": "keyserver.example.net,11371,11370\n10.0.0.1,11371,11370",
        "allowed-recon-cidrs": "198.51.100.0/24, 203.0.113.7",
    }

    ctx.run(ctx.on.config_changed(), ready_state(peers, config=config))

    section = recon(root)
    # 10.0.0.1 is unit 1: it is already a partner and not listed twice.
    assert list(section["partner"]) == ["hockeypuck-1", "keyserver.example.net:11370"]
    assert section["allowCIDRs"] == ["198.51.100.0/24", "203.0.113.7/32"]


def test_bad_allowed_cidr_blocks(ctx: testing.Context):
    out = ctx.run(
        ctx.on.config_changed(), ready_state(config={"allowed-recon-cidrs": "10.0.0/33"})
    )

    assert out.unit_status == testing.BlockedStatus(
        "invalid config: allowed-recon-cidrs: '10.0.0/33' is not an IP network such as "
        "192.0.2.0/24"
    )


def haproxy(**remote_app_data: str) -> testing.Relation:
    return testing.Relation(
        "haproxy-route", remote_app_name="haproxy", remote_app_data=remote_app_data
    )


def test_leader_publishes_the_route_exactly(ctx: testing.Context):
    route = haproxy()

    out = ctx.run(
        ctx.on.relation_joined(route),
        ready_state(route, leader=True),
    )

    relation = out.get_relation(route.id)
    assert relation.local_app_data == {
        "service": '"hockeypuck"',
        "ports": "[11371]",
        "protocol": '"http"',
        "check": '{"interval": 30, "rise": 2, "fall": 3, "path": "/pks/health"}',
        "load_balancing": '{"algorithm": "leastconn"}',
        "timeout": '{"server": 300, "connect": 5, "queue": 60}',
        "retry": '{"count": 2, "redispatch": true}',
        "http_server_close": "true",
        "allow_http": "true",
    }
    assert relation.local_unit_data["address"] == json.dumps(UNIT_ADDRESS)


def test_route_carries_hostname_and_rate_limit(ctx: testing.Context):
    route = haproxy()
    config = {
        "hostname": "keys.example.com",
        "rate-limit-connections-per-minute": 120,
        "rate-limit-policy": "silent-drop",
    }

    out = ctx.run(
        ctx.on.config_changed(),
        ready_state(route, leader=True, config=config),
    )

    data = out.get_relation(route.id).local_app_data
    assert json.loads(data["hostname"]) == "keys.example.com"
    assert json.loads(data["rate_limit"]) == {
        "connections_per_minute": 120,
        "policy": "silent-drop",
    }


def test_non_leader_only_publishes_its_address(ctx: testing.Context):
    route = haproxy()

    out = ctx.run(ctx.on.relation_joined(route), ready_state(route))

    relation = out.get_relation(route.id)
    assert relation.local_app_data == {}
    assert relation.local_unit_data["address"] == json.dumps(UNIT_ADDRESS)


def test_haproxy_url_is_shown_and_becomes_the_public_hostname(ctx: testing.Context, root: Path):
    route = haproxy(endpoints=json.dumps(["https://keys.example.org/"]))

    out = ctx.run(ctx.on.relation_changed(route), ready_state(route))

    assert out.unit_status == testing.ActiveStatus("serving https://keys.example.org/")
    config = tomllib.loads(config_file(root).read_text())
    assert config["hockeypuck"]["hostname"] == "keys.example.org"


def test_configured_hostname_wins_over_haproxy(ctx: testing.Context, root: Path):
    route = haproxy(endpoints=json.dumps(["https://lb.example.org/"]))

    ctx.run(
        ctx.on.relation_changed(route),
        ready_state(route, config={"hostname": "keys.example.com"}),
    )

    config = tomllib.loads(config_file(root).read_text())
    assert config["hockeypuck"]["hostname"] == "keys.example.com"


@pytest.mark.parametrize(
    ("config", "option"),
    [
        ({"rate-limit-connections-per-minute": -1}, "rate-limit-connections-per-minute"),
        ({"rate-limit-connections-per-minute": 10**9}, "rate-limit-connections-per-minute"),
        ({"rate-limit-policy": "tarpit"}, "rate-limit-policy"),
    ],
)
def test_bad_rate_limits_block(ctx: testing.Context, config: dict[str, Any], option: str):
    out = ctx.run(ctx.on.config_changed(), ready_state(config=config))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith(f"invalid config: {option}: ")


def test_unset_options_are_removed_from_the_route(ctx: testing.Context):
    route = haproxy()
    configured = {"hostname": "keys.example.com", "rate-limit-connections-per-minute": 60}
    first = ctx.run(ctx.on.config_changed(), ready_state(route, leader=True, config=configured))
    published = first.get_relation(route.id)

    out = ctx.run(
        ctx.on.config_changed(), dataclasses.replace(first, config={}, relations=first.relations)
    )

    assert {"hostname", "rate_limit"} <= set(published.local_app_data)
    data = out.get_relation(route.id).local_app_data
    assert "hostname" not in data
    assert "rate_limit" not in data


def test_garbage_endpoints_from_haproxy_are_ignored(ctx: testing.Context):
    route = haproxy(endpoints="not json")

    out = ctx.run(
        ctx.on.relation_changed(route), ready_state(route, config={"hostname": "k.example.com"})
    )

    assert out.unit_status == testing.ActiveStatus(
        "haproxy has not published the route yet (it needs its TLS certificates)"
    )


def test_no_answer_and_no_hostname_names_haproxys_external_hostname(ctx: testing.Context):
    route = haproxy()

    out = ctx.run(ctx.on.relation_changed(route), ready_state(route))

    assert out.unit_status == testing.ActiveStatus(
        "haproxy has not published the route yet; with no hostname set here it needs its own"
        " external-hostname"
    )


def test_route_refused_without_a_hostname_blocks_with_the_fix(ctx: testing.Context):
    route = haproxy(endpoints="[]")

    out = ctx.run(ctx.on.relation_changed(route), ready_state(route))

    assert out.unit_status == testing.BlockedStatus(
        "haproxy refused the route: no host name; set one with juju config hockeypuck"
        " hostname=... (or haproxy's external-hostname)"
    )


def test_route_refused_with_a_hostname_names_the_remaining_causes(ctx: testing.Context):
    route = haproxy(endpoints="[]")

    out = ctx.run(
        ctx.on.relation_changed(route),
        ready_state(route, config={"hostname": "keys.example.com"}),
    )

    assert out.unit_status == testing.BlockedStatus(
        "haproxy refused the route for keys.example.com: another application on it may use"
        " the service name 'hockeypuck', or a unit has no address yet (see haproxy's debug-log)"
    )


def test_a_refused_route_still_serves_on_the_unit(
    ctx: testing.Context, systemctl: FakeSystemd, root: Path
):
    route = haproxy(endpoints="[]")

    ctx.run(ctx.on.relation_changed(route), ready_state(route))

    assert systemctl.running
    assert config_file(root).exists()


def test_address_is_published_even_when_the_snap_cannot_be_installed(
    ctx: testing.Context, snapd: FakeSnapd
):
    route = haproxy()
    snapd.fail_with = snap.ConnectionError("snapd is not answering")

    out = ctx.run(ctx.on.relation_joined(route), ready_state(route))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "snapd is not answering" in out.unit_status.message
    assert out.get_relation(route.id).local_unit_data["address"] == json.dumps(UNIT_ADDRESS)


def test_address_is_published_even_with_invalid_config(ctx: testing.Context):
    route = haproxy()

    out = ctx.run(ctx.on.relation_joined(route), ready_state(route, config={"log-level": "LOUD"}))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.get_relation(route.id).local_unit_data["address"] == json.dumps(UNIT_ADDRESS)


def test_a_new_address_is_published_by_the_next_non_routine_hook(ctx: testing.Context):
    peers = peer_relation(2)
    moved = testing.Network(
        "hockeypuck-peers",
        bind_addresses=[testing.BindAddress([testing.Address("10.20.30.40")])],
        ingress_addresses=["10.20.30.40"],
    )
    first = ctx.run(ctx.on.config_changed(), ready_state(peers))
    published = first.get_relation(peers.id).local_unit_data["address"]
    state = dataclasses.replace(first, networks={moved})

    routine = ctx.run(ctx.on.update_status(), state)
    changed = ctx.run(ctx.on.config_changed(), state)

    assert published == UNIT_ADDRESS
    assert routine.get_relation(peers.id).local_unit_data["address"] == UNIT_ADDRESS
    assert changed.get_relation(peers.id).local_unit_data["address"] == "10.20.30.40"
