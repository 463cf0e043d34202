#!/usr/bin/env python3
"""The Hockeypuck machine charm: observe events, reconcile, report status."""

from __future__ import annotations

import logging
from pathlib import Path

import ops

import snap_layout
from hockeypuck_config import render
from relations import database
from relations.cos_agent import CosAgentProvider
from state import CharmConfig, CharmState, InvalidConfigError
from workload import Hockeypuck, ServiceError, SnapError, WorkloadError

logger = logging.getLogger(__name__)

SNAP_RESOURCE = "hockeypuck-snap"


def status_for(error: Exception) -> ops.StatusBase:
    """The one place that turns an expected failure into the status the operator sees."""
    if isinstance(error, InvalidConfigError):
        return ops.BlockedStatus(f"invalid config: {error}")
    if isinstance(error, database.DatabaseRelationMissingError):
        return ops.BlockedStatus("needs a database relation")
    if isinstance(error, database.DatabaseNotReadyError):
        return ops.WaitingStatus("waiting for database credentials")
    if isinstance(error, SnapError):
        return ops.BlockedStatus(str(error))
    if isinstance(error, ServiceError):
        return ops.BlockedStatus(f"{error} (see journalctl -u {snap_layout.SERVICE})")
    raise error


class HockeypuckCharm(ops.CharmBase):
    """Runs Hockeypuck from its snap, configured from the charm's config and relations."""

    workload_root = Path("/")

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.workload = Hockeypuck(self.workload_root)
        self._status: ops.StatusBase | None = None
        for event in (self.on.install, self.on.upgrade_charm, self.on.config_changed):
            framework.observe(event, self._on_machine_change)
        db_events = self.on[database.ENDPOINT]
        for event in (
            self.on.start,
            self.on.update_status,
            self.on.leader_elected,
            self.on.secret_changed,
            db_events.relation_created,
            db_events.relation_changed,
            db_events.relation_departed,
            db_events.relation_broken,
        ):
            framework.observe(event, self._on_change)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        self.cos_agent = CosAgentProvider(self, self.workload_root)

    def _on_machine_change(self, _: ops.EventBase) -> None:
        self._reconcile(setup_machine=True)

    def _on_change(self, _: ops.EventBase) -> None:
        self._reconcile(setup_machine=False)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if self._status is not None:
            event.add_status(self._status)

    def _reconcile(self, setup_machine: bool) -> None:
        try:
            self._apply(setup_machine)
        except (
            InvalidConfigError,
            database.DatabaseRelationMissingError,
            database.DatabaseNotReadyError,
            WorkloadError,
        ) as error:
            logger.warning("not serving: %s", error)
            self._status = status_for(error)
        else:
            self._status = ops.ActiveStatus()

    def _apply(self, setup_machine: bool) -> None:
        config = CharmConfig.from_config(self.config)
        revision = self.workload.installed_revision()
        if setup_machine or revision is None:
            self.unit.status = ops.MaintenanceStatus("installing the hockeypuck snap")
            installed = self.workload.install(config.snap_channel, self._snap_resource())
            revision = installed.revision
            self.unit.set_workload_version(installed.version)
            self.unit.set_ports(snap_layout.HKP_PORT, snap_layout.RECON_PORT)
        relation = self.model.get_relation(database.ENDPOINT)
        if relation is None:
            self.workload.stop()
            raise database.DatabaseRelationMissingError()
        if self.unit.is_leader():
            database.request_database(relation, self.app)
        state = CharmState(
            config=config,
            database=database.read_credentials(self.model, relation),
            nodename=self.unit.name.replace("/", "-"),
        )
        self.workload.write_config(
            render(state, self.charm_dir / "templates", self.workload.template_cache_dir)
        )
        self.workload.ensure_running(revision)
        if not self.workload.is_running():
            raise ServiceError(f"{snap_layout.SERVICE} is not running")

    def _snap_resource(self) -> Path | None:
        """The attached snap file, or None when none (or an empty one) is attached."""
        try:
            path = self.model.resources.fetch(SNAP_RESOURCE)
        except (ops.ModelError, NameError):
            return None
        return path if path.stat().st_size > 0 else None


if __name__ == "__main__":  # pragma: nocover
    ops.main(HockeypuckCharm)
