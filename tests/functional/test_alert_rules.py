"""The alert rules, as the charm publishes them, checked and exercised by the real `promtool`.

`promtool` comes from Debian/Ubuntu's `prometheus` package (`apt-get install prometheus`); these
tests skip, saying so, when it is absent. Each alert has cases where it must fire and cases
where it must stay silent, on synthetic series labelled the way the cos-agent collector labels
Hockeypuck's metrics: job `<application>_hockeypuck`, `instance`, `juju_model`,
`juju_model_uuid`, `juju_application`, `juju_unit`, and no `juju_charm`.

For these firing tests the rules keep their expressions, `for` and labels exactly as published;
only the annotations are dropped, because promtool compares rendered annotations verbatim.
`promtool check rules` validates the full rules, annotation templates included.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import ops
import pytest
import yaml

from relations import cos_agent
from tests.promql_names import SCRAPE_SERIES, exported_metric_names, queried_metric_names

pytestmark = pytest.mark.functional

REPO_ROOT = Path(__file__).parents[2]
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: install Debian/Ubuntu's `prometheus` package "
    "(apt-get install prometheus) to check and exercise the alert rules",
)

MODEL, MODEL_UUID, APP = "keys", "2f5a5a5e-1234-4abc-8def-0123456789ab", "hockeypuck"
UNIT0 = {
    "job": cos_agent.scrape_job_name(APP),
    "instance": "localhost:9626",
    "juju_model": MODEL,
    "juju_model_uuid": MODEL_UUID,
    "juju_application": APP,
    "juju_unit": f"{APP}/0",
}
RULE_LABELS = {
    "juju_model": MODEL,
    "juju_model_uuid": MODEL_UUID,
    "juju_application": APP,
    "juju_charm": "hockeypuck",
}


def published_rules() -> dict[str, Any]:
    """The metrics_alert_rules a unit of APP in MODEL writes to the cos-agent databag."""
    charm = SimpleNamespace(
        model=SimpleNamespace(
            name=MODEL,
            uuid=MODEL_UUID,
            app=SimpleNamespace(name=APP),
            unit=SimpleNamespace(name=f"{APP}/0"),
        ),
        meta=SimpleNamespace(name="hockeypuck"),
        charm_dir=REPO_ROOT,
    )
    return cos_agent.alert_rules(
        cast(ops.CharmBase, charm), cos_agent.METRICS_ALERT_RULES_DIR, "promql"
    )


def series(name: str, **labels: str) -> str:
    """A series of unit 0 as the collector scrapes it, with labels added or replaced."""
    merged = {**UNIT0, **labels}
    return name + "{" + ", ".join(f'{key}="{value}"' for key, value in merged.items()) + "}"


def fired(severity: str, *, from_series: bool = True, **labels: str) -> dict[str, str]:
    """The labels of a firing alert (promtool adds alertname)."""
    base = {**UNIT0} if from_series else {}
    return {**base, **RULE_LABELS, "severity": severity, **labels}


@dataclass
class Case:
    alert: str
    name: str
    input_series: list[tuple[str, str]]
    # eval_time -> the labels of every alert expected then ([] = silent)
    checks: dict[str, list[dict[str, str]]] = field(default_factory=dict)


UP = "up"
COUNT = "hockeypuck_http_request_duration_seconds_count"
BUCKET = "hockeypuck_http_request_duration_seconds_bucket"
EVENT = "conflux_reconciliation_event_time_seconds"
START = "process_start_time_seconds"
COLLECTOR_UP = (
    'up{job="juju_keys_2f5a5a5e_otelcol_node-exporter", instance="machine-0", '
    'juju_model="keys", juju_application="otelcol", juju_unit="otelcol/0"}'
)


def buckets(method: str, counts: dict[str, str], status: str = "200") -> list[tuple[str, str]]:
    return [
        (series(BUCKET, method=method, status_code=status, le=le), values)
        for le, values in counts.items()
    ]


CASES = [
    # --- HockeypuckTargetDown: up == 0 for 5 minutes, per unit.
    Case(
        "HockeypuckTargetDown",
        "daemon down for good",
        [(series(UP), "1 1 1 0x20")],
        {"6m": [], "10m": [fired("critical")]},
    ),
    Case(
        "HockeypuckTargetDown",
        "restart shorter than 5 minutes",
        [(series(UP), "1x5 0 0 0 1x15")],
        {"8m": [], "12m": []},
    ),
    Case(
        "HockeypuckTargetDown",
        "another job of the collector is down",
        [(series(UP), "1x20"), (COLLECTOR_UP, "0x20")],
        {"15m": []},
    ),
    Case(
        "HockeypuckTargetDown",
        "one unit of two down",
        [(series(UP), "1x20"), (series(UP, juju_unit=f"{APP}/1"), "0x20")],
        {"10m": [fired("critical", juju_unit=f"{APP}/1")]},
    ),
    # --- HockeypuckMetricsAbsent: no up series of the job at all for 10 minutes.
    Case(
        "HockeypuckMetricsAbsent",
        "only the collector's own series arrive",
        [(COLLECTOR_UP, "1x30")],
        {"5m": [], "15m": [fired("warning", from_series=False)]},
    ),
    Case(
        "HockeypuckMetricsAbsent",
        "units scraped",
        [(series(UP), "1x30"), (series(UP, juju_unit=f"{APP}/1"), "0x30")],
        {"15m": [], "25m": []},
    ),
    Case(
        "HockeypuckMetricsAbsent",
        "series stop arriving",
        [(series(UP), "1x5")],
        {"12m": [], "25m": [fired("warning", from_series=False)]},
    ),
    # --- HockeypuckUnitMetricsMissing: a unit's up series stop while they did 15 minutes ago.
    Case(
        "HockeypuckUnitMetricsMissing",
        "one unit of two goes silent",
        [(series(UP), "1x60"), (series(UP, juju_unit=f"{APP}/1"), "1x20")],
        {
            "22m": [],
            "35m": [fired("warning", juju_unit=f"{APP}/1")],
            "50m": [],
        },
    ),
    Case(
        "HockeypuckUnitMetricsMissing",
        "every unit reports, one of them down",
        [(series(UP), "1x60"), (series(UP, juju_unit=f"{APP}/1"), "0x60")],
        {"35m": [], "55m": []},
    ),
    Case(
        "HockeypuckUnitMetricsMissing",
        "the collector's own series stop",
        [(series(UP), "1x60"), (COLLECTOR_UP, "1x20")],
        {"35m": []},
    ),
    # --- HockeypuckRestarting: more than 2 process starts within 30 minutes.
    Case(
        "HockeypuckRestarting",
        "crash loop",
        [(series(START), "100 100 400 400 700 700 1000x20")],
        {"10m": [fired("warning")]},
    ),
    Case(
        "HockeypuckRestarting",
        "one restart for a config change",
        [(series(START), "100x10 700x20")],
        {"20m": []},
    ),
    # --- HockeypuckHighHTTPErrorRatio: 5xx above 5% for 10 minutes.
    Case(
        "HockeypuckHighHTTPErrorRatio",
        "database gone: 9% of requests fail",
        [
            (series(COUNT, method="GET", status_code="200"), "0+100x30"),
            (series(COUNT, method="GET", status_code="500"), "0+10x30"),
        ],
        {"8m": [], "20m": [fired("critical")]},
    ),
    Case(
        "HockeypuckHighHTTPErrorRatio",
        "1% errors",
        [
            (series(COUNT, method="GET", status_code="200"), "0+100x30"),
            (series(COUNT, method="POST", status_code="500"), "0+1x30"),
        ],
        {"20m": []},
    ),
    Case(
        "HockeypuckHighHTTPErrorRatio",
        "not found and unprocessable are client errors",
        [
            (series(COUNT, method="GET", status_code="200"), "0+50x30"),
            (series(COUNT, method="GET", status_code="404"), "0+50x30"),
            (series(COUNT, method="POST", status_code="422"), "0+50x30"),
        ],
        {"20m": []},
    ),
    Case(
        "HockeypuckHighHTTPErrorRatio",
        "burst of errors shorter than 10 minutes",
        [
            (series(COUNT, method="GET", status_code="200"), "0+100x30"),
            (series(COUNT, method="GET", status_code="500"), "0+10x5 50x25"),
        ],
        {"9m": [], "20m": []},
    ),
    # --- HockeypuckSlowLookups: p95 of GET above 1 s for 15 minutes.
    Case(
        "HockeypuckSlowLookups",
        "90% of lookups take 1 to 2.5 s",
        buckets("GET", {"0.25": "0+1x40", "1": "0+1x40", "2.5": "0+10x40", "+Inf": "0+10x40"}),
        {"10m": [], "25m": [fired("warning")]},
    ),
    Case(
        "HockeypuckSlowLookups",
        "fast lookups",
        buckets("GET", {"0.25": "0+10x40", "1": "0+10x40", "2.5": "0+10x40", "+Inf": "0+10x40"}),
        {"25m": []},
    ),
    Case(
        "HockeypuckSlowLookups",
        "slow POSTs (hashquery batches) do not count",
        buckets("GET", {"0.25": "0+10x40", "1": "0+10x40", "2.5": "0+10x40", "+Inf": "0+10x40"})
        + buckets("POST", {"0.25": "0x40", "1": "0x40", "2.5": "0x40", "+Inf": "0+10x40"}),
        {"25m": []},
    ),
    # --- HockeypuckReconFailingWithPeer: failures and no success in 30 minutes, for 15.
    Case(
        "HockeypuckReconFailingWithPeer",
        "peer down: only failures, never a success series",
        [(series("conflux_reconciliation_failure", peer="10.0.0.7"), "0+1x90")],
        {"10m": [], "60m": [fired("warning", peer="10.0.0.7")]},
    ),
    Case(
        "HockeypuckReconFailingWithPeer",
        "only the failing peer of two",
        [
            (series("conflux_reconciliation_failure", peer="10.0.0.7"), "0+1x90"),
            (series("conflux_reconciliation_success", peer="10.0.0.7"), "5x90"),
            (series("conflux_reconciliation_success", peer="10.0.0.8"), "0+1x90"),
        ],
        {"60m": [fired("warning", peer="10.0.0.7")]},
    ),
    Case(
        "HockeypuckReconFailingWithPeer",
        "occasional failures among successes",
        [
            (series("conflux_reconciliation_failure", peer="10.0.0.7"), "0+1x90"),
            (series("conflux_reconciliation_success", peer="10.0.0.7"), "0+1x90"),
        ],
        {"60m": []},
    ),
    Case(
        "HockeypuckReconFailingWithPeer",
        "peer came back",
        [
            (series("conflux_reconciliation_failure", peer="10.0.0.7"), "0+1x30 30x60"),
            (series("conflux_reconciliation_success", peer="10.0.0.7"), "0x30 0+1x60"),
        ],
        {"80m": []},
    ),
    # --- HockeypuckNoSuccessfulRecon: last success (or start) more than 3 hours ago.
    Case(
        "HockeypuckNoSuccessfulRecon",
        "last success 3h50m ago, failing since",
        [
            (series(START), "0x250"),
            (series(EVENT, event="success", peer="10.0.0.7", role="client"), "600x250"),
            (series(EVENT, event="failure", peer="10.0.0.7", role="client"), "0+60x250"),
        ],
        {"180m": [], "240m": [fired("warning")]},
    ),
    Case(
        "HockeypuckNoSuccessfulRecon",
        "recent success as server only",
        [
            (series(START), "0x250"),
            (series(EVENT, event="success", peer="10.0.0.7", role="server"), "0+60x250"),
            (series(EVENT, event="failure", peer="10.0.0.8", role="client"), "0+60x250"),
        ],
        {"240m": []},
    ),
    Case(
        "HockeypuckNoSuccessfulRecon",
        "never succeeded since start 4 hours ago",
        [
            (series(START), "0x250"),
            (series(EVENT, event="initiate", peer="10.0.0.7", role="client"), "0+60x250"),
            (series(EVENT, event="failure", peer="10.0.0.7", role="client"), "0+60x250"),
        ],
        {"240m": [fired("warning")]},
    ),
    Case(
        "HockeypuckNoSuccessfulRecon",
        "never succeeded, started 2 hours ago",
        [
            (series(START), "7200x250"),
            (series(EVENT, event="failure", peer="10.0.0.7", role="client"), "0+60x250"),
        ],
        {"240m": []},
    ),
    Case(
        "HockeypuckNoSuccessfulRecon",
        "no recon partners: no recon series at all",
        [(series(START), "0x250")],
        {"240m": []},
    ),
    # --- HockeypuckKeyRemovalBurst: more than 20 deletions within an hour.
    Case(
        "HockeypuckKeyRemovalBurst",
        "a key deleted every minute",
        [(series("hockeypuck_keys_removed"), "0+1x60")],
        {"15m": [], "30m": [fired("warning")]},
    ),
    Case(
        "HockeypuckKeyRemovalBurst",
        "ten deletions",
        [(series("hockeypuck_keys_removed"), "0+1x10 10x50")],
        {"30m": [], "60m": []},
    ),
    # --- HockeypuckPrefixTreeDrift: jitter above 25 per 30 minutes, for an hour.
    Case(
        "HockeypuckPrefixTreeDrift",
        "tree keeps drifting",
        [
            (series("hockeypuck_keys_added_jitter"), "0x150"),
            (series("hockeypuck_keys_removed_jitter"), "0+2x150"),
        ],
        {"40m": [], "120m": [fired("warning")]},
    ),
    Case(
        "HockeypuckPrefixTreeDrift",
        "one-off repair after a delete on another unit",
        [
            (series("hockeypuck_keys_added_jitter"), "0x150"),
            (series("hockeypuck_keys_removed_jitter"), "0x10 100x140"),
        ],
        {"30m": [], "60m": [], "120m": []},
    ),
    Case(
        "HockeypuckPrefixTreeDrift",
        "trickle of repairs",
        [
            (series("hockeypuck_keys_added_jitter"), "0+0.1x150"),
            (series("hockeypuck_keys_removed_jitter"), "0+0.2x150"),
        ],
        {"120m": []},
    ),
]


@pytest.fixture(scope="module")
def rules_without_annotations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rules = published_rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path = tmp_path_factory.mktemp("rules") / "hockeypuck.rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    return path


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, check=False, timeout=60
    )


@needs_promtool
def test_promtool_accepts_the_published_rules(tmp_path: Path):
    path = tmp_path / "published.rules.yaml"
    path.write_text(yaml.safe_dump(published_rules()))

    result = promtool("check", "rules", path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


@needs_promtool
def test_promtool_accepts_the_rule_files_as_shipped():
    files = sorted((REPO_ROOT / cos_agent.METRICS_ALERT_RULES_DIR).glob("*.rules"))

    result = promtool("check", "rules", *files)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_cases_that_fire_and_cases_that_stay_silent():
    alerts = {rule["alert"] for group in published_rules()["groups"] for rule in group["rules"]}
    firing = {case.alert for case in CASES for expected in case.checks.values() if expected}
    silent = {case.alert for case in CASES for expected in case.checks.values() if not expected}

    assert firing == alerts
    assert silent == alerts


@needs_promtool
@pytest.mark.parametrize("case", CASES, ids=lambda case: f"{case.alert}: {case.name}")
def test_alert(case: Case, rules_without_annotations: Path, tmp_path: Path):
    test_file = tmp_path / "test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [str(rules_without_annotations)],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [
                            {"series": name, "values": values}
                            for name, values in case.input_series
                        ],
                        "alert_rule_test": [
                            {
                                "eval_time": eval_time,
                                "alertname": case.alert,
                                "exp_alerts": [{"exp_labels": labels} for labels in expected],
                            }
                            for eval_time, expected in case.checks.items()
                        ],
                    }
                ],
            }
        )
    )

    result = promtool("test", "rules", test_file)

    assert result.returncode == 0, result.stdout + result.stderr


def test_synthetic_series_use_exported_metric_names():
    known = exported_metric_names() | SCRAPE_SERIES
    for case in CASES:
        for name, _ in case.input_series:
            assert queried_metric_names(name) <= known, name


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path):
    """Each panel query, with Grafana's interval variables filled in, as a recording rule."""
    dashboard = json.loads((REPO_ROOT / cos_agent.DASHBOARDS_DIR / "hockeypuck.json").read_text())
    records = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = re.sub(r"\$__rate_interval|\$__interval", "5m", target["expr"])
            expr = expr.replace("$__range", "6h")
            records.append(
                {"record": f"dashboard:panel_{panel['id']}_{target['refId']}", "expr": expr}
            )
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))

    result = promtool("check", "rules", path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(records)} rules found" in result.stdout
