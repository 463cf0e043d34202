#!/usr/bin/env python3
"""The Hockeypuck machine charm: observe events, reconcile, report status."""

from __future__ import annotations

import logging
from pathlib import Path

import ops

import admin_key_store
import blocklist
import snap_layout
from actions import KeyserverActions
from charms.hockeypuck.v0.recon_peering import ReconPeering
from hockeypuck_config import TEMPLATES_DIR, render, render_key
from parsing import one_line
from relations import database, haproxy_route, peers, recon
from relations.binding import ingress_address
from relations.cos_agent import CosAgentProvider
from relations.remote_data import RemoteDataError
from rolling import RestartPendingError, RollingRestart
from state import CharmConfig, CharmState, InvalidConfigError
from workload import (
    LOCAL_REVISION_PREFIX,
    DatabaseUnreachableError,
    Hockeypuck,
    ServiceError,
    WorkloadError,
)

logger = logging.getLogger(__name__)

SNAP_RESOURCE = "hockeypuck-snap"
MAX_STATUS_LENGTH = 256


# Failures the reconcile expects: they end in a status, and the next hook tries again.
EXPECTED_FAILURES = (
    InvalidConfigError,
    database.DatabaseRelationMissingError,
    database.DatabaseNotReadyError,
    peers.VersionMismatchError,
    recon.RefusedReconDataError,
    haproxy_route.RouteRefusedError,
    RestartPendingError,
    RemoteDataError,
    WorkloadError,
)


def status_for(error: Exception) -> ops.StatusBase:
    """The one place that turns an expected failure into the status the operator sees."""
    if isinstance(error, InvalidConfigError):
        status = ops.BlockedStatus(f"invalid config: {error}")
    elif isinstance(error, database.DatabaseRelationMissingError):
        status = ops.BlockedStatus("needs a database relation")
    elif isinstance(error, database.DatabaseNotReadyError):
        status = ops.WaitingStatus("waiting for database credentials")
    elif isinstance(error, RestartPendingError):
        status = ops.WaitingStatus("waiting to restart (rolling restart, one unit at a time)")
    elif isinstance(error, RemoteDataError):
        status = ops.BlockedStatus(f"unusable relation data: {error}")
    elif isinstance(error, DatabaseUnreachableError):
        status = ops.BlockedStatus(f"database unreachable with current credentials: {error}")
    elif isinstance(error, ServiceError):
        status = ops.BlockedStatus(f"{error} (see journalctl -u {snap_layout.SERVICE})")
    else:  # the snap, a file, the rendered config, a version mismatch: the message says all
        status = ops.BlockedStatus(str(error))
    return bounded(status)


def bounded(status: ops.StatusBase) -> ops.StatusBase:
    """The status with its message on one line and at most MAX_STATUS_LENGTH characters."""
    message = one_line(status.message, MAX_STATUS_LENGTH)
    return status if message == status.message else ops.StatusBase.from_name(status.name, message)


class HockeypuckCharm(ops.CharmBase):
    """Runs Hockeypuck from its snap, configured from the charm's config and relations."""

    workload_root = Path("/")

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.workload = Hockeypuck(self.workload_root)
        self._status: ops.StatusBase | None = None
        self._failure: Exception | None = None
        for event in (self.on.install, self.on.config_changed):
            framework.observe(event, self._on_machine_change)
        framework.observe(self.on.upgrade_charm, self._on_upgrade_charm)
        for event in (
            self.on.start,
            self.on.update_status,
            self.on.leader_elected,
            self.on.secret_changed,
        ):
            framework.observe(event, self._on_change)
        for endpoint in (database.ENDPOINT, haproxy_route.ENDPOINT, peers.ENDPOINT):
            relation_events = self.on[endpoint]
            for event in (
                relation_events.relation_created,
                relation_events.relation_joined,
                relation_events.relation_changed,
                relation_events.relation_departed,
                relation_events.relation_broken,
            ):
                framework.observe(event, self._on_change)
        self.recon = ReconPeering(self, recon.ENDPOINTS)
        framework.observe(self.recon.on.partners_changed, self._on_change)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        self.cos_agent = CosAgentProvider(self, self.workload_root)
        self.restarts = RollingRestart(
            self, peers.ENDPOINT, self._restart_in_turn, self.workload_root / "var/lib/rollingops"
        )
        self.actions = KeyserverActions(self, self.workload, self.apply_config_now)

    def _on_machine_change(self, _: ops.EventBase) -> None:
        self._reconcile(setup_machine=True)

    def _on_upgrade_charm(self, _: ops.EventBase) -> None:
        # Upgrading the charm is the operator's moment to take the channel's newest snap too.
        self._reconcile(setup_machine=True, update_snap=True)

    def _on_change(self, event: ops.EventBase) -> None:
        # update-status is the most frequent hook and nothing it could learn changes often:
        # it works from what the last other hook read and published (block list, addresses,
        # secret revisions), which saves a database connection and several hook tools.
        self._reconcile(routine=isinstance(event, ops.UpdateStatusEvent))

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if self._status is not None:
            event.add_status(self._status)

    def _reconcile(
        self,
        setup_machine: bool = False,
        routine: bool = False,
        update_snap: bool = False,
        restart_now: bool = False,
    ) -> None:
        try:
            message = self._apply(setup_machine, routine, update_snap, restart_now)
        except EXPECTED_FAILURES as error:
            logger.warning("not serving: %s", error)
            self._status = status_for(error)
            self._failure = error
        else:
            self._status = bounded(ops.ActiveStatus(message))
            self._failure = None

    def _applied(self) -> bool:
        """Whether the last reconcile applied the config (a route HAProxy refused is no bar)."""
        return self._failure is None or isinstance(self._failure, haproxy_route.RouteRefusedError)

    def apply_config_now(self) -> None:
        """Reconcile from an action, re-reading the block list; raise if not serving after.

        The operator asked for it on this unit: it restarts at once, without waiting its turn.
        """
        self._reconcile(restart_now=True)
        if not self._applied():
            raise ServiceError(f"the new config is not applied: {self._failure}")

    def _restart_in_turn(self, update_snap: bool) -> bool:
        """The rolling restart's callback: apply what waited (config, snap refresh) now.

        Returns:
            Whether Hockeypuck answers again.
        """
        self._reconcile(setup_machine=True, update_snap=update_snap, restart_now=True)
        try:
            self.workload.wait_serving()
        except ServiceError as error:
            logger.warning("not serving after a restart in turn: %s", error)
            if self._applied():  # else the reconcile's own failure says more
                self._status, self._failure = status_for(error), error
            return False
        return True

    def _apply(
        self, setup_machine: bool, routine: bool, update_snap: bool, restart_now: bool
    ) -> str:
        """Bring the unit to the wanted state; returns the message of the Active status."""
        route_relation = self.model.get_relation(haproxy_route.ENDPOINT)
        if route_relation is not None and not routine:
            # First, before anything that can fail: one unit without an address makes HAProxy
            # refuse the whole relation, every unit's backend with it.
            address = ingress_address(self.model, haproxy_route.ENDPOINT)
            haproxy_route.publish_address(route_relation, self.unit, address)
        self.workload.enforce_config_mode()  # it holds the password, whatever else fails
        config = CharmConfig.from_config(self.config)
        revision, refresh_waits = self._ensure_snap(
            config, setup_machine, update_snap, restart_now
        )
        peer_relation = self.model.get_relation(peers.ENDPOINT)
        address = self._peer_address(peer_relation, routine)
        if self.unit.is_leader():
            admin_key_store.ensure(self.model, peer_relation)
        proxy_urls = self._publish_route(route_relation, config, routine)
        if not routine:
            nodename = peers.nodename(self.unit)
            recon.publish(
                self.recon, nodename, config.recon_public_address, config.recon_public_port
            )
        relation = self.model.get_relation(database.ENDPOINT)
        if relation is None:
            self.workload.stop()
            raise database.DatabaseRelationMissingError()
        if self.unit.is_leader() and not routine:
            database.request_database(relation, self.app)
        credentials = database.read_credentials(self.model, relation, refresh=not routine)
        store = None
        if not routine or self.workload.cached_blocklist() is None:
            store = self._refresh_blocklist(credentials)
        remote = self.recon.partners()
        state = CharmState(
            config=config,
            database=credentials,
            nodename=peers.nodename(self.unit),
            unit_address=address,
            peer_units=peers.other_units(peer_relation),
            proxy_hostname=haproxy_route.hostname(proxy_urls[0]) if proxy_urls else "",
            machine_hostname=self.workload.machine_hostname(refresh=setup_machine),
            charm_admin_key=admin_key_store.fingerprint(peer_relation, self.app),
            blocked_fingerprints=self.workload.cached_blocklist() or (),
            web_layout=self.workload.web_layout(),
            log_file=self.workload.log_file(),
            remote_partners=remote.units,
        )
        templates = self.charm_dir / TEMPLATES_DIR
        self.workload.write_config_for(
            render_key(state, templates),
            lambda: render(state, templates, self.workload.template_cache_dir),
        )
        # A refresh waiting for its turn restarts the daemon then anyway: no second request.
        waits = refresh_waits or self._ensure_running(revision, restart_now)
        if store is not None:
            self._purge_blocked_keys(store)
        peers.check_same_minor_version(self.workload.installed_version(), state.peer_units)
        recon.check_refused(remote)
        message = haproxy_route.route_message(route_relation, config.hostname, self.app.name)
        if waits:
            raise RestartPendingError()
        return message

    def _ensure_running(self, revision: str, restart_now: bool) -> bool:
        """Run the service; True when its restart waits for this unit's turn instead."""
        if not restart_now and self.workload.needs_restart(revision) and not self.restarts.alone():
            self.restarts.request()
            return True
        self.workload.ensure_running(revision)
        self.workload.check_serving()
        return False

    def _peer_address(self, peer_relation: ops.Relation | None, routine: bool) -> str | None:
        """This unit's address, published to the other units (read back on routine hooks)."""
        if peer_relation is not None and routine:
            published = peers.published_address(peer_relation, self.unit)
            if published:
                return published
        address = ingress_address(self.model, peers.ENDPOINT)
        if peer_relation is not None and address:
            peers.publish(peer_relation, self.unit, address, self.workload.installed_version())
        return address

    def _ensure_snap(
        self, config: CharmConfig, setup_machine: bool, update: bool, restart_now: bool
    ) -> tuple[str, bool]:
        """Install or refresh the snap on machine-level events (or if missing).

        Returns:
            The installed revision, and whether a refresh waits for this unit's turn (snapd
            restarts the daemon when it refreshes the snap).
        """
        revision = self.workload.installed_revision()
        if setup_machine or revision is None:
            resource = self._snap_resource()
            if (
                revision is not None
                and not restart_now
                and not self.restarts.alone()
                and self.workload.refresh_restarts(config.snap_channel, resource, update)
            ):
                self.restarts.request(update_snap=update)
                self._check_snap_source(config, revision)
                return revision, True
            self.unit.status = ops.MaintenanceStatus("installing the hockeypuck snap")
            installed = self.workload.install(config.snap_channel, resource, update=update)
            revision = installed.revision
            self.unit.set_workload_version(installed.version)
            self.unit.set_ports(snap_layout.HKP_PORT, snap_layout.RECON_PORT)
        self._check_snap_source(config, revision)
        return revision, False

    def _refresh_blocklist(
        self, credentials: database.DatabaseCredentials
    ) -> blocklist.PostgresBlocklist:
        """Re-read the block list from the database; keep the cached one if it is unreachable."""
        store = blocklist.PostgresBlocklist(credentials)
        try:
            store.ensure_table()
        except blocklist.BlocklistError as error:
            logger.warning("cannot create or update the block-list table: %s", error)
        try:
            self.workload.cache_blocklist(tuple(store.fingerprints()))
        except blocklist.BlocklistError as error:
            logger.warning("using the cached block list: %s", error)
        return store

    def _purge_blocked_keys(self, store: blocklist.PostgresBlocklist) -> None:
        """Delete blocked keys that are stored (the daemon here already refuses them).

        Recon can bring a blocked key back before every unit runs with the new `blacklist`.
        """
        blocked = self.workload.cached_blocklist()
        if not blocked:
            return
        try:
            purged = store.purge(blocked)
        except blocklist.BlocklistError as error:
            logger.warning("cannot delete blocked keys (next hook tries again): %s", error)
            return
        if purged:
            logger.warning("deleted %d blocked key(s) found stored: %s", len(purged), purged)

    def _publish_route(
        self, relation: ops.Relation | None, config: CharmConfig, routine: bool
    ) -> tuple[str, ...]:
        """Ask HAProxy for the HKP route (leader); the URLs it serves it on (once it says)."""
        if relation is not None and not routine and self.unit.is_leader():
            rate_limit = None
            if config.rate_limit_per_minute:
                rate_limit = haproxy_route.RateLimit(
                    config.rate_limit_per_minute, config.rate_limit_policy
                )
            route = haproxy_route.Route(
                service=self.app.name,
                port=snap_layout.HKP_PORT,
                hostname=config.hostname,
                health_path=snap_layout.HEALTH_PATH,
                rate_limit=rate_limit,
            )
            haproxy_route.publish_route(relation, self.app, route)
        return haproxy_route.endpoints(relation)

    def _check_snap_source(self, config: CharmConfig, revision: str) -> None:
        """A snap from the resource and a non-default channel cannot both be meant."""
        default = self.meta.config["snap-channel"].default
        if revision.startswith(LOCAL_REVISION_PREFIX) and config.snap_channel != default:
            raise InvalidConfigError(
                "snap-channel",
                f"{config.snap_channel!r} conflicts with the attached {SNAP_RESOURCE} resource;"
                f" reset snap-channel (juju config {self.app.name} --reset snap-channel) or"
                f" attach an empty resource to install from the store",
            )

    def _snap_resource(self) -> Path | None:
        """The attached snap file, or None when none (or an empty one) is attached."""
        try:
            path = self.model.resources.fetch(SNAP_RESOURCE)
        except (ops.ModelError, NameError):
            return None
        return path if path.stat().st_size > 0 else None


if __name__ == "__main__":  # pragma: nocover
    ops.main(HockeypuckCharm)
