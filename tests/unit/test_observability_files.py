"""The shipped dashboard and alert rule files: valid, and querying metrics Hockeypuck exports.

"Exports" means: present in a real Hockeypuck 2.3.3 scrape (`tests/data/hockeypuck-2.3.3/`).
The promtool checks (syntax, firing) are in tests/functional/test_alert_rules.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from relations import cos_agent
from tests.promql_names import SCRAPE_SERIES, exported_metric_names, queried_metric_names
from tests.unit.conftest import REPO_ROOT

DASHBOARD = REPO_ROOT / cos_agent.DASHBOARDS_DIR / "hockeypuck.json"
RULE_FILES = sorted((REPO_ROOT / cos_agent.METRICS_ALERT_RULES_DIR).glob("*.rules"))
KNOWN = exported_metric_names() | SCRAPE_SERIES


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_recorded_scrapes_hold_the_names_the_charm_relies_on():
    assert "hockeypuck_keys_added" in KNOWN
    assert "hockeypuck_keys_added_total" not in KNOWN
    assert "conflux_reconciliation_items_recovered" in KNOWN
    assert "hockeypuck_http_request_duration_seconds_bucket" in KNOWN


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le) (rate(a_bucket{x="y(z)"}[5m])) > 1e3', {"a_bucket"}),
        ("time() - max without (peer) (b{event='s'}) > 3 * 3600", {"b"}),
        ("c / on (job) group_left d offset 5m unless e", {"c", "d", "e"}),
        ("sum(rate(f[$__rate_interval])) * 60 or vector(0)", {"f"}),
    ],
)
def test_name_extraction(expr: str, names: set[str]):
    assert queried_metric_names(expr) == names


def test_dashboard_is_valid_json_with_unique_panel_ids():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in panels(dashboard)]

    assert dashboard["title"] == "Hockeypuck"
    assert len(ids) == len(set(ids))
    assert "uid" not in dashboard  # set by the charm from its name and this file's path


def test_every_panel_queries_prometheus_through_the_cos_datasource_variable():
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${prometheusds}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip(), panel["title"]


@pytest.mark.parametrize("expr", dashboard_exprs())
def test_dashboard_queries_only_exported_metrics(expr: str):
    names = queried_metric_names(expr)

    assert names, expr
    assert names <= KNOWN, f"not exported by Hockeypuck 2.3.3: {names - KNOWN}"


def test_dashboard_covers_what_operators_watch():
    queried = set().union(*(queried_metric_names(expr) for expr in dashboard_exprs()))
    assert {
        "hockeypuck_http_request_duration_seconds_count",
        "hockeypuck_http_request_duration_seconds_bucket",
        "hockeypuck_keys_added",
        "hockeypuck_keys_updated",
        "hockeypuck_keys_removed",
        "conflux_reconciliation_success",
        "conflux_reconciliation_failure",
        "conflux_reconciliation_duration_seconds_bucket",
        "hockeypuck_keys_added_jitter",
        "hockeypuck_keys_removed_jitter",
        "go_memstats_heap_inuse_bytes",
        "go_goroutines",
        "process_start_time_seconds",
    } <= queried


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_alert_rules_query_only_exported_metrics(rule: dict[str, Any]):
    names = queried_metric_names(rule["expr"])

    assert names
    assert names <= KNOWN, f"not exported by Hockeypuck 2.3.3: {names - KNOWN}"


def test_rule_files_are_in_the_directory_the_charm_reads():
    assert [path.name for path in RULE_FILES] == [
        "availability.rules",
        "http.rules",
        "keys.rules",
        "recon.rules",
    ]


def test_dashboard_shows_per_unit_which_serves_and_which_restarts():
    dashboard = json.loads(DASHBOARD.read_text())
    titles = [panel["title"] for panel in dashboard["panels"]]
    start = titles.index("Units: which serves, which restarts")
    row = []
    for panel in dashboard["panels"][start + 1 :]:
        if panel["type"] == "row":
            break
        row.append(panel)
    targets = [target for panel in row for target in panel["targets"]]

    assert {panel["type"] for panel in row} >= {"state-timeline"}
    assert all(target["legendFormat"] == "{{juju_unit}}" for target in targets)
    queried = set().union(*(queried_metric_names(target["expr"]) for target in targets))
    assert {"up", "process_start_time_seconds"} <= queried
