"""Contract: our haproxy-route databags, parsed by the `haproxy` charm's own provider library.

The provider (`HaproxyRouteProvider`, charms.haproxy.v2) runs in a tiny provider charm under
ops.testing, on the databags our charm wrote for every combination of our route's options;
what it publishes back is read by our charm.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import ops
import pytest
from ops import testing

from state import is_haproxy_domain
from tests import hostnames
from tests.unit.conftest import ready_state
from tests.unit.contract.conftest import upstream

HOSTNAMES = [None, "keys.example.com"]
RATE_LIMITS = [None, "deny", "reject", "silent-drop"]
PROVIDER_META = {
    "name": "haproxy",
    "provides": {"haproxy-route": {"interface": "haproxy-route"}},
}


@pytest.fixture(scope="module")
def lib() -> ModuleType:
    return upstream("charms.haproxy.v2.haproxy_route")


@pytest.fixture(scope="module")
def provider(lib: ModuleType) -> testing.Context:
    class HaproxyCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            self.route = lib.HaproxyRouteProvider(self)

    return testing.Context(HaproxyCharm, meta=PROVIDER_META)


def our_databags(ctx: testing.Context, config: dict[str, Any]) -> tuple[dict, dict]:
    """The app databag our leader writes and the unit databag of one unit, with the config."""
    relation = testing.Relation("haproxy-route", remote_app_name="haproxy")
    out = ctx.run(
        ctx.on.relation_joined(relation), ready_state(relation, leader=True, config=config)
    )
    written = out.get_relation(relation.id)
    return dict(written.local_app_data), dict(written.local_unit_data)


def parsed(provider: testing.Context, app: dict, units: dict[int, dict]) -> tuple[Any, dict]:
    """What HAProxy makes of our databags: its requirers data, and what it publishes back."""
    relation = testing.Relation(
        "haproxy-route", remote_app_name="hockeypuck", remote_app_data=app, remote_units_data=units
    )
    state = testing.State(leader=True, relations={relation})
    with provider(provider.on.relation_changed(relation, remote_unit=0), state) as manager:
        route = manager.charm.route
        data = route.get_data(route.relations)
        ours = manager.charm.model.get_relation("haproxy-route", relation.id)
        assert ours is not None
        urls = [] if data.relation_ids_with_invalid_data else ["https://keys.example.com/"]
        route.publish_proxied_endpoints(urls, ours)
        out = manager.run()
    return data, dict(out.get_relation(relation.id).local_app_data)


@pytest.mark.parametrize("hostname", HOSTNAMES)
@pytest.mark.parametrize("policy", RATE_LIMITS)
def test_haproxy_takes_every_combination_of_our_options(
    ctx: testing.Context, provider: testing.Context, hostname: str | None, policy: str | None
):
    config: dict[str, Any] = {}
    if hostname:
        config["hostname"] = hostname
    if policy:
        config |= {"rate-limit-connections-per-minute": 60, "rate-limit-policy": policy}
    app, unit = our_databags(ctx, config)

    data, _ = parsed(provider, app, {0: unit, 1: {**unit, "address": json.dumps("10.0.0.2")}})

    assert data.relation_ids_with_invalid_data == set()
    (requirer,) = data.requirers_data
    route = requirer.application_data
    assert route.service == "hockeypuck"
    assert route.ports == [11371]
    assert route.protocol == "http"
    assert route.hostname == hostname
    assert route.check.path == "/pks/health"
    assert (route.check.interval, route.check.rise, route.check.fall) == (30, 2, 3)
    assert route.load_balancing.algorithm.value == "leastconn"
    assert (route.timeout.server, route.timeout.connect, route.timeout.queue) == (300, 5, 60)
    assert (route.retry.count, route.retry.redispatch) == (2, True)
    assert route.http_server_close is True
    assert route.allow_http is True
    if policy is None:
        assert route.rate_limit is None
    else:
        assert route.rate_limit.connections_per_minute == 60
        assert route.rate_limit.policy.value == policy
    assert sorted(str(u.address) for u in requirer.units_data) == ["10.0.0.2", "192.0.2.0"]


def haproxy_accepts(lib: ModuleType, name: str) -> bool:
    databag = {
        "service": json.dumps("hockeypuck"),
        "ports": json.dumps([11371]),
        "hostname": json.dumps(name),
    }
    try:
        lib.RequirerApplicationData.load(databag)
    except lib.DataValidationError:
        return False
    return True


@pytest.mark.parametrize("name", [*hostnames.ACCEPTED, *hostnames.REFUSED])
def test_haproxy_and_we_judge_host_names_alike(lib: ModuleType, name: str):
    assert haproxy_accepts(lib, name) == is_haproxy_domain(name) == (name in hostnames.ACCEPTED)


@pytest.mark.parametrize("name", hostnames.HAPROXY_ONLY)
def test_wildcards_haproxy_takes_are_refused_here(lib: ModuleType, name: str):
    assert haproxy_accepts(lib, name)
    assert not is_haproxy_domain(name)


def test_one_unit_without_an_address_makes_haproxy_refuse_the_whole_relation(
    ctx: testing.Context, provider: testing.Context
):
    app, unit = our_databags(ctx, {"hostname": "keys.example.com"})
    juju_only = {key: value for key, value in unit.items() if key != "address"}

    data, answer = parsed(provider, app, {0: unit, 1: juju_only})

    assert data.relation_ids_with_invalid_data != set()
    assert json.loads(answer["endpoints"]) == []


def test_we_read_haproxys_endpoints(ctx: testing.Context, provider: testing.Context):
    app, unit = our_databags(ctx, {"hostname": "keys.example.com"})
    _, answer = parsed(provider, app, {0: unit})
    relation = testing.Relation("haproxy-route", remote_app_name="haproxy", remote_app_data=answer)

    out = ctx.run(ctx.on.relation_changed(relation), ready_state(relation))

    assert out.unit_status == testing.ActiveStatus("serving https://keys.example.com/")


def test_we_explain_haproxys_refusal(ctx: testing.Context, provider: testing.Context):
    app, unit = our_databags(ctx, {"hostname": "keys.example.com"})
    juju_only = {key: value for key, value in unit.items() if key != "address"}
    _, answer = parsed(provider, app, {0: juju_only})
    relation = testing.Relation("haproxy-route", remote_app_name="haproxy", remote_app_data=answer)

    out = ctx.run(
        ctx.on.relation_changed(relation),
        ready_state(relation, config={"hostname": "keys.example.com"}),
    )

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("haproxy refused the route for keys.example.com")
