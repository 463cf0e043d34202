"""Contract: our cos-agent databag, read by the collector's own requirer library.

`COSAgentRequirer` (charms.grafana_agent.v0.cos_agent, as opentelemetry-collector runs it)
takes our unit's `config` in a tiny subordinate charm under ops.testing, copies it to its peer
relation as the real collector does, and hands out our alert rules, scrape job, dashboard and
log slots.
"""

from __future__ import annotations

import json
from typing import Any

import ops
import pytest
from ops import testing

from tests.unit.conftest import base_state
from tests.unit.contract.conftest import upstream

MODEL = testing.Model(name="keys", uuid="2f5a5a5e-1234-4abc-8def-0123456789ab", type="lxd")
COLLECTOR_META = {
    "name": "opentelemetry-collector",
    "subordinate": True,
    "requires": {"cos-agent": {"interface": "cos_agent", "scope": "container"}},
    "peers": {"peers": {"interface": "otelcol_peers"}},
}


@pytest.fixture(scope="module")
def collector() -> testing.Context:
    lib = upstream("charms.grafana_agent.v0.cos_agent")

    class CollectorCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            self.cos = lib.COSAgentRequirer(self, is_tracing_ready=lambda: False)

    return testing.Context(CollectorCharm, meta=COLLECTOR_META)


@pytest.fixture
def seen(ctx: testing.Context, collector: testing.Context) -> dict[str, Any]:
    """What the collector's library makes of the `config` our unit publishes."""
    ours = testing.Relation("cos-agent", remote_app_name="opentelemetry-collector")
    out = ctx.run(ctx.on.relation_joined(ours), base_state(relations={ours}, model=MODEL))
    config = out.get_relation(ours.id).local_unit_data["config"]
    principal = testing.SubordinateRelation(
        "cos-agent",
        remote_app_name="hockeypuck",
        remote_unit_data={"config": config},
    )
    peers = testing.PeerRelation("peers")
    state = testing.State(leader=True, relations={principal, peers}, model=MODEL)
    copied = collector.run(collector.on.relation_changed(principal), state)

    with collector(collector.on.update_status(), copied) as manager:
        requirer = manager.charm.cos
        return {
            "alerts": requirer.metrics_alerts,
            "jobs": requirer.metrics_jobs,
            "dashboards": requirer.dashboards,
            "log_slots": [endpoint.owner for endpoint in requirer.snap_log_endpoints],
        }


def alert_names(seen: dict[str, Any]) -> set[str]:
    (rules,) = seen["alerts"].values()
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


# The host-health rules the collector's library adds to a principal that uses its provider
# (cosl's generic application rules), and the rule of ours standing in for each.
EQUIVALENTS = {
    "HostDown": "HockeypuckTargetDown",
    "HostMetricsMissing": "HockeypuckMetricsAbsent",
}


def our_rules(seen: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (rules,) = seen["alerts"].values()
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}


def test_the_collector_takes_our_alert_rules(seen: dict[str, Any]):
    assert {"HockeypuckTargetDown", "HockeypuckMetricsAbsent", "HockeypuckUnitMetricsMissing"} <= (
        alert_names(seen)
    )


def test_every_generic_host_health_rule_has_an_equivalent_of_ours(seen: dict[str, Any]):
    from cosl.rules import generic_alert_groups  # noqa: PLC0415 - the collector library's own

    upstream("charms.grafana_agent.v0.cos_agent")
    rule_file: dict[str, Any] = json.loads(json.dumps(generic_alert_groups.application_rules))
    generic = {rule["alert"]: rule for group in rule_file["groups"] for rule in group["rules"]}
    ours = our_rules(seen)

    assert set(generic) == set(EQUIVALENTS)
    for name, rule in generic.items():
        equivalent = ours[EQUIVALENTS[name]]
        assert equivalent["labels"]["severity"] == rule["labels"]["severity"]
        assert "up" in equivalent["expr"]
    # absent(up) fires only when every unit is silent: one silent unit has its own rule.
    assert ours["HockeypuckUnitMetricsMissing"]["labels"]["severity"] == "warning"


def test_the_collector_scrapes_our_metrics_with_our_topology(seen: dict[str, Any]):
    (job,) = seen["jobs"]
    assert job["job_name"] == "hockeypuck_hockeypuck"
    assert job["metrics_path"] == "/metrics"
    (static,) = job["static_configs"]
    assert static["targets"] == ["localhost:9626"]
    assert static["labels"]["juju_application"] == "hockeypuck"
    assert static["labels"]["juju_unit"] == "hockeypuck/0"


def test_the_collector_decodes_our_dashboard(seen: dict[str, Any]):
    (dashboard,) = seen["dashboards"]
    assert dashboard["title"] == "Hockeypuck"
    assert json.dumps(dashboard["content"])  # plain JSON again


def test_the_collector_gets_no_log_slot_without_a_snap(seen: dict[str, Any]):
    assert seen["log_slots"] == []


def test_we_take_the_collectors_answer_in_our_stride(
    ctx: testing.Context, collector: testing.Context
):
    ours = testing.Relation("cos-agent", remote_app_name="opentelemetry-collector")
    first = ctx.run(ctx.on.relation_joined(ours), base_state(relations={ours}, model=MODEL))
    config = first.get_relation(ours.id).local_unit_data["config"]
    principal = testing.SubordinateRelation(
        "cos-agent", remote_app_name="hockeypuck", remote_unit_data={"config": config}
    )
    state = testing.State(
        leader=True, relations={principal, testing.PeerRelation("peers")}, model=MODEL
    )
    answered = collector.run(collector.on.relation_changed(principal), state)
    answer = dict(answered.get_relation(principal.id).local_unit_data)
    assert "receivers" in answer  # the collector's answer: its tracing receivers (none here)

    with_answer = testing.Relation(
        "cos-agent",
        id=ours.id,
        remote_app_name="opentelemetry-collector",
        remote_units_data={0: answer},
    )
    out = ctx.run(
        ctx.on.relation_changed(with_answer, remote_unit=0),
        base_state(relations={with_answer}, model=MODEL),
    )

    assert out.get_relation(ours.id).local_unit_data["config"] == config
