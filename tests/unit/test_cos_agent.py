"""The cos-agent databag, pinned: what opentelemetry-collector / grafana-agent read from us.

The remote side validates `config` against the cos_agent model (keys below) and decodes the
dashboards as base64 of LZMA-compressed JSON. A change here that would break it must break a
test first.
"""

from __future__ import annotations

import ast
import base64
import json
import lzma
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cosl import DashboardPath40UID
from ops import testing

import charm
import snap_layout
from relations import cos_agent
from tests.unit.conftest import (
    REPO_ROOT,
    base_state,
    db_relation,
    make_charm_root,
    ready_state,
    user_secret,
)
from workload import snap_log_slots

MODEL = testing.Model(name="keys", uuid="2f5a5a5e-1234-4abc-8def-0123456789ab", type="lxd")
WIRE_KEYS = [
    "metrics_alert_rules",
    "log_alert_rules",
    "dashboards",
    "metrics_scrape_jobs",
    "log_slots",
    "tracing_protocols",
]
ALERTS = {
    "HockeypuckTargetDown",
    "HockeypuckMetricsAbsent",
    "HockeypuckUnitMetricsMissing",
    "HockeypuckRestarting",
    "HockeypuckHighHTTPErrorRatio",
    "HockeypuckSlowLookups",
    "HockeypuckReconFailingWithPeer",
    "HockeypuckNoSuccessfulRecon",
    "HockeypuckKeyRemovalBurst",
    "HockeypuckPrefixTreeDrift",
}


def cos_relation(**kwargs: Any) -> testing.Relation:
    """The principal's side of the subordinate relation with the collector."""
    return testing.Relation(
        "cos-agent",
        remote_app_name="opentelemetry-collector",
        remote_units_data={0: {}},
        **kwargs,
    )


def published(out: testing.State, relation: testing.Relation) -> dict[str, Any]:
    return json.loads(out.get_relation(relation.id).local_unit_data["config"])


def rules_of(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in config["metrics_alert_rules"]["groups"] for rule in group["rules"]]


@pytest.fixture
def config(ctx: testing.Context) -> dict[str, Any]:
    """What a unit publishes when the collector joins."""
    relation = cos_relation()
    out = ctx.run(ctx.on.relation_joined(relation), base_state(relations={relation}, model=MODEL))
    return published(out, relation)


def test_config_has_exactly_the_wire_keys(config: dict[str, Any]):
    assert list(config) == WIRE_KEYS
    assert config["tracing_protocols"] is None


def test_log_alert_rules_carry_the_topology(config: dict[str, Any]):
    rules = [rule for group in config["log_alert_rules"]["groups"] for rule in group["rules"]]

    assert {rule["alert"] for rule in rules} == {
        "HockeypuckDatabaseErrors",
        "HockeypuckReconErrorsInLog",
    }
    for rule in rules:
        # No placeholder left for Loki to choke on; the collector's side scopes the selector.
        assert "%%juju_topology%%" not in rule["expr"]
        assert rule["labels"]["juju_model"] == "keys"
        assert rule["labels"]["juju_application"] == "hockeypuck"


def test_values_have_the_types_the_collector_validates(config: dict[str, Any]):
    # The requirer's model: dict, dict, list[str], list[dict], list[str], list[str] | None.
    assert isinstance(config["metrics_alert_rules"], dict)
    assert isinstance(config["log_alert_rules"], dict)
    assert all(isinstance(item, str) for item in config["dashboards"])
    assert all(isinstance(item, dict) for item in config["metrics_scrape_jobs"])
    assert all(isinstance(item, str) for item in config["log_slots"])


def test_scrape_job_for_hockeypuck_metrics_on_localhost(config: dict[str, Any]):
    assert config["metrics_scrape_jobs"] == [
        {
            "job_name": "hockeypuck_hockeypuck",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["localhost:9626"]}],
        }
    ]
    assert snap_layout.METRICS_PORT == 9626
    assert snap_layout.METRICS_PATH == "/metrics"


def test_every_alert_rule_is_published(config: dict[str, Any]):
    assert {rule["alert"] for rule in rules_of(config)} == ALERTS


def test_rules_carry_application_topology_but_no_unit(config: dict[str, Any]):
    for rule in rules_of(config):
        labels = rule["labels"]
        assert labels["juju_model"] == "keys"
        assert labels["juju_model_uuid"] == MODEL.uuid
        assert labels["juju_application"] == "hockeypuck"
        assert labels["juju_charm"] == "hockeypuck"
        # One copy of the rules serves every unit: the alert takes juju_unit from the series.
        assert "juju_unit" not in labels
        assert labels["severity"] in {"critical", "warning"}


def test_rule_expressions_never_filter_on_juju_charm(config: dict[str, Any]):
    # Series scraped through cos-agent carry no juju_charm label: such a matcher never matches.
    for rule in rules_of(config):
        assert "juju_charm" not in rule["expr"], rule["alert"]


def test_rules_on_generic_series_match_the_published_job(config: dict[str, Any]):
    job = config["metrics_scrape_jobs"][0]["job_name"]
    for rule in rules_of(config):
        if "up{" in rule["expr"] or "process_" in rule["expr"]:
            assert 'job=~".+_hockeypuck"' in rule["expr"], rule["alert"]
            assert job.endswith("_hockeypuck")


def test_rule_group_names_are_prefixed_with_topology(config: dict[str, Any]):
    names = [group["name"] for group in config["metrics_alert_rules"]["groups"]]
    assert len(names) == len(set(names)) == 4
    assert all(name.startswith("keys_2f5a5a5e_hockeypuck_") for name in names)
    assert all(name.endswith("_rules") for name in names)


def test_every_rule_tells_the_operator_what_to_do(config: dict[str, Any]):
    for rule in rules_of(config):
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), rule["alert"]
        assert len(annotations["description"]) > 150, rule["alert"]


def test_dashboard_is_lzma_base64_of_the_shipped_json(config: dict[str, Any]):
    [encoded] = config["dashboards"]
    # Decoded without cosl: this is the encoding the collector expects.
    dashboard = json.loads(lzma.decompress(base64.b64decode(encoded)))
    shipped = json.loads((REPO_ROOT / "src/grafana_dashboards/hockeypuck.json").read_text())

    assert dashboard["panels"] == shipped["panels"]
    assert dashboard["title"] == shipped["title"]
    assert "charm: hockeypuck" in dashboard["tags"]
    assert set(shipped["tags"]) <= set(dashboard["tags"])


def test_dashboard_uid_is_stable_and_derived_from_charm_and_path(config: dict[str, Any]):
    [encoded] = config["dashboards"]
    dashboard = json.loads(lzma.decompress(base64.b64decode(encoded)))
    expected = DashboardPath40UID.generate("hockeypuck", "src/grafana_dashboards/hockeypuck.json")
    assert dashboard["uid"] == expected
    assert len(expected) == 40


def test_no_log_slot_when_the_snap_has_none(config: dict[str, Any]):
    assert config["log_slots"] == []


def write_snap_yaml(root: Path, slots: dict[str, Any]) -> None:
    path = root / snap_layout.SNAP_CURRENT.relative_to("/") / "meta" / "snap.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"name": "hockeypuck", "version": "2.3.3", "slots": slots}))


def test_log_slot_published_when_the_installed_snap_declares_one(ctx: testing.Context, root: Path):
    write_snap_yaml(
        root,
        {
            "logs": {"interface": "content", "source": {"read": ["$SNAP_COMMON/logs"]}},
            "templates": {"interface": "content", "source": {"read": ["$SNAP/templates"]}},
            "ptree-logs": {"interface": "dbus"},
        },
    )
    relation = cos_relation()

    out = ctx.run(ctx.on.relation_changed(relation), base_state(relations={relation}))

    assert published(out, relation)["log_slots"] == ["hockeypuck:logs"]


@pytest.mark.parametrize("content", ["", "not: [valid", "- a list\n"])
def test_unreadable_snap_metadata_means_no_log_slot(content: str, tmp_path: Path):
    path = tmp_path / snap_layout.SNAP_CURRENT.relative_to("/") / "meta" / "snap.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(content)

    assert snap_log_slots(tmp_path) == []


@pytest.mark.usefixtures("root", "snapd", "systemctl")
def test_job_name_and_topology_follow_the_application_name(tmp_path: Path):
    ctx = testing.Context(
        charm.HockeypuckCharm, charm_root=make_charm_root(tmp_path / "charm"), app_name="keyserver"
    )
    relation = cos_relation()

    out = ctx.run(ctx.on.relation_joined(relation), base_state(relations={relation}, model=MODEL))

    config = published(out, relation)
    assert config["metrics_scrape_jobs"][0]["job_name"] == "keyserver_hockeypuck"
    assert {rule["labels"]["juju_application"] for rule in rules_of(config)} == {"keyserver"}
    assert {rule["labels"]["juju_charm"] for rule in rules_of(config)} == {"hockeypuck"}


def serving_state(relation: testing.Relation) -> testing.State:
    """A unit with its database ready and the collector related."""
    secret = user_secret()
    return ready_state(relations={db_relation(secret), relation}, secrets={secret}, model=MODEL)


@pytest.mark.parametrize("event", ["upgrade_charm", "config_changed"])
def test_refreshed_on_upgrade_and_config_change(ctx: testing.Context, event: str):
    relation = cos_relation(local_unit_data={"config": json.dumps({"stale": True})})

    out = ctx.run(getattr(ctx.on, event)(), serving_state(relation))

    assert list(published(out, relation)) == WIRE_KEYS
    assert out.unit_status == testing.ActiveStatus()


def test_identical_data_is_not_rewritten(ctx: testing.Context):
    relation = cos_relation()
    first = ctx.run(ctx.on.relation_joined(relation), base_state(relations={relation}))
    relation = first.get_relation(relation.id)

    second = ctx.run(ctx.on.relation_changed(relation), first)

    assert second.get_relation(relation.id).local_unit_data == relation.local_unit_data


def test_without_the_relation_nothing_is_built(
    ctx: testing.Context, monkeypatch: pytest.MonkeyPatch
):
    def fail(*_: object) -> dict[str, Any]:
        raise AssertionError("unit_config built without a cos-agent relation")

    monkeypatch.setattr(cos_agent, "unit_config", fail)

    out = ctx.run(ctx.on.config_changed(), ready_state(model=MODEL))

    assert out.unit_status == testing.ActiveStatus()


def test_module_import_stays_light():
    """Importing the provider pulls in nothing heavy: cosl waits for a cos-agent relation."""
    code = (
        "import sys; sys.path.insert(0, 'src'); import ops, snap_layout; "
        "before = set(sys.modules); import relations.cos_agent; "
        "print(sorted(set(sys.modules) - before))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    loaded = ast.literal_eval(result.stdout.strip())
    heavy = [name for name in loaded if name.split(".")[0] in {"cosl", "lzma", "pydantic", "yaml"}]
    assert "relations.cos_agent" in loaded
    assert heavy == []
