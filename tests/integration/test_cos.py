"""The cos-agent relation with the opentelemetry-collector subordinate."""

from __future__ import annotations

import json
from pathlib import Path

import jubilant
import pytest
import yaml

APP = "hockeypuck"
COLLECTOR = "opentelemetry-collector"
TIMEOUT = 30 * 60


@pytest.fixture(scope="module")
def observed(juju: jubilant.Juju, charm_path: Path, snap_resource: Path) -> jubilant.Juju:
    juju.deploy("postgresql", channel="16/stable", base="ubuntu@24.04")
    juju.deploy(charm_path, APP, resources={"hockeypuck-snap": str(snap_resource)})
    juju.deploy(COLLECTOR, channel="2/stable", base="ubuntu@24.04")
    juju.integrate(APP, "postgresql")
    juju.integrate(f"{APP}:cos-agent", f"{COLLECTOR}:cos-agent")
    # The collector has no COS to send to here: it stays blocked; hockeypuck must be active.
    juju.wait(lambda status: jubilant.all_active(status, APP), timeout=TIMEOUT)
    juju.wait(
        lambda status: COLLECTOR in status.apps and bool(status.apps[COLLECTOR].units),
        timeout=TIMEOUT,
    )
    return juju


def cos_agent_config(juju: jubilant.Juju) -> dict:
    """The `config` this unit publishes on the cos-agent relation, read back through Juju."""
    shown = yaml.safe_load(juju.cli("show-unit", f"{APP}/0", "--format", "yaml"))
    for relation in shown[f"{APP}/0"]["relation-info"]:
        if relation["endpoint"] == "cos-agent":
            return json.loads(relation["local-unit"]["data"]["config"])
    raise AssertionError("no cos-agent relation data")


def test_scrape_job_rules_and_dashboard_reach_the_collector(observed: jubilant.Juju):
    config = cos_agent_config(observed)

    job = config["metrics_scrape_jobs"][0]
    assert job["static_configs"][0]["targets"] == ["localhost:9626"]
    assert job["metrics_path"] == "/metrics"
    names = [
        rule["alert"]
        for group in config["metrics_alert_rules"]["groups"]
        for rule in group["rules"]
    ]
    assert "HockeypuckTargetDown" in names
    assert config["dashboards"]


def test_metrics_answer_on_the_unit(observed: jubilant.Juju):
    scraped = observed.exec("curl -sf http://localhost:9626/metrics", unit=f"{APP}/0").stdout

    assert "hockeypuck_http_request_duration_seconds" in scraped or "go_goroutines" in scraped
