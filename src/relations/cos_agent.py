"""The `cos_agent` provider: what the collector subordinate needs to watch this unit.

The remote side is `opentelemetry-collector` (or the older `grafana-agent`), a subordinate
deployed next to each unit. Wire format (`interfaces.md`, pinned by
`tests/unit/test_cos_agent.py`): each unit writes one key, `config`, in its own unit databag, a
JSON object with

- `metrics_alert_rules`: Prometheus rule groups from `src/prometheus_alert_rules/`, labelled
  with this application's Juju topology (`juju_model`, `juju_model_uuid`, `juju_application`,
  `juju_charm`) by `cosl.AlertRules`. No `juju_unit` label: the collector forwards one copy of
  the rules per application, so a unit label would stamp every alert with one arbitrary unit;
  alerts take `juju_unit` from the series instead;
- `log_alert_rules`: Loki rule groups from `src/loki_alert_rules/`, labelled the same way;
- `dashboards`: base64 of the LZMA-compressed JSON of each dashboard in `src/grafana_dashboards/`,
  with a stable uid derived from the charm name and the file's path;
- `metrics_scrape_jobs`: one job, `<application>_hockeypuck`, scraping Hockeypuck's metrics on
  `localhost:9626/metrics`. The collector adds `juju_model`, `juju_model_uuid`,
  `juju_application` and `juju_unit` to the series, but not `juju_charm`;
- `log_slots`: the snap's content slots that share its logs (`hockeypuck:logs`), when the
  installed snap declares one; the collector connects its `logs` plug to them and ships the
  files to Loki. Without one, Hockeypuck's log (stderr, in the journal) reaches Loki only
  through what the collector reads on its own: see `docs/how-to/observe-with-cos.md`;
- `tracing_protocols`: `null` (Hockeypuck emits no traces).

Files are read relative to the charm directory, never the working directory. `cosl` and the
compression code are imported only when a cos-agent relation exists: they are not needed on
the charm's hot path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import ops

import snap_layout
from workload import snap_log_slots

logger = logging.getLogger(__name__)

ENDPOINT = "cos-agent"
DATABAG_KEY = "config"
JOB_SUFFIX = "hockeypuck"
METRICS_ALERT_RULES_DIR = PurePosixPath("src/prometheus_alert_rules")
LOG_ALERT_RULES_DIR = PurePosixPath("src/loki_alert_rules")
DASHBOARDS_DIR = PurePosixPath("src/grafana_dashboards")


def scrape_job_name(app_name: str) -> str:
    """The Prometheus job of this application's metrics; the alert rules match its suffix."""
    return f"{app_name}_{JOB_SUFFIX}"


def metrics_scrape_jobs(app_name: str) -> list[dict[str, Any]]:
    """The scrape job for Hockeypuck's metrics endpoint, as the collector runs it locally."""
    return [
        {
            "job_name": scrape_job_name(app_name),
            "metrics_path": snap_layout.METRICS_PATH,
            "static_configs": [{"targets": [f"localhost:{snap_layout.METRICS_PORT}"]}],
        }
    ]


def alert_rules(
    charm: ops.CharmBase, rules_dir: PurePosixPath, query_type: Literal["promql", "logql"]
) -> dict[str, Any]:
    """Rule groups from a directory of the charm, labelled with its Juju topology; {} if none."""
    from cosl import AlertRules, JujuTopology  # noqa: PLC0415 (only with a relation)

    rules = AlertRules(query_type=query_type, topology=JujuTopology.from_charm(charm))
    rules.add_path(charm.charm_dir / rules_dir)
    return rules.as_dict()


def dashboards(charm_dir: Path, charm_name: str) -> list[str]:
    """Each dashboard JSON with a stable uid and a charm tag, LZMA-compressed and base64-encoded.

    The uid derives from the charm name and the file's path in the charm, so a new charm
    revision updates the dashboard in Grafana instead of adding a second copy.
    """
    from cosl import DashboardPath40UID, LZMABase64  # noqa: PLC0415 (only with a relation)

    encoded = []
    for path in sorted((charm_dir / DASHBOARDS_DIR).glob("*.json")):
        dashboard = json.loads(path.read_text())
        dashboard["uid"] = DashboardPath40UID.generate(
            charm_name, path.relative_to(charm_dir).as_posix()
        )
        tags = dashboard.setdefault("tags", [])
        if f"charm: {charm_name}" not in tags:
            tags.append(f"charm: {charm_name}")
        encoded.append(LZMABase64.compress(json.dumps(dashboard)))
    return encoded


def unit_config(charm: ops.CharmBase, workload_root: Path) -> dict[str, Any]:
    """The JSON object each unit publishes under the `config` key."""
    return {
        "metrics_alert_rules": alert_rules(charm, METRICS_ALERT_RULES_DIR, "promql"),
        "log_alert_rules": alert_rules(charm, LOG_ALERT_RULES_DIR, "logql"),
        "dashboards": dashboards(charm.charm_dir, charm.meta.name),
        "metrics_scrape_jobs": metrics_scrape_jobs(charm.app.name),
        "log_slots": snap_log_slots(workload_root),
        "tracing_protocols": None,
    }


class CosAgentProvider(ops.Object):
    """Publishes this unit's `config` on the cos-agent relation whenever it may have changed.

    Refreshed on relation joined/changed, and on upgrade-charm (new rules, dashboards or snap)
    and config-changed (a new snap channel may bring a log slot). Instantiate it after the
    charm's own observers so that, on those events, the snap is installed before this runs.
    """

    def __init__(self, charm: ops.CharmBase, workload_root: Path = Path("/")):
        super().__init__(charm, ENDPOINT)
        self._charm = charm
        self._workload_root = workload_root
        relation_events = charm.on[ENDPOINT]
        for event in (
            relation_events.relation_joined,
            relation_events.relation_changed,
            charm.on.upgrade_charm,
            charm.on.config_changed,
        ):
            self.framework.observe(event, self._on_refresh)

    def _on_refresh(self, _: ops.EventBase) -> None:
        self.publish()

    def publish(self) -> None:
        """Write `config` to this unit's databag of every cos-agent relation, if it differs."""
        relations = self.model.relations[ENDPOINT]
        if not relations:
            return
        payload = json.dumps(unit_config(self._charm, self._workload_root))
        for relation in relations:
            databag = relation.data[self._charm.unit]
            if databag.get(DATABAG_KEY) != payload:
                databag[DATABAG_KEY] = payload
