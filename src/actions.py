"""The operators' actions: Juju's side of them.

The logic lives in key_actions and bulk_actions (Juju-free), imported when an action runs:
every other hook's cold start is benchmarked and does not need them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import ops

import admin_key_store
import blocklist
import hkp_client
from admin_key import GpgError
from parsing import one_line
from relations import database, peers
from relations.remote_data import RemoteDataError
from workload import Hockeypuck, WorkloadError

if TYPE_CHECKING:
    from key_actions import ActionResults

logger = logging.getLogger(__name__)

# An action's failure message: one line, at most this long (tool and database errors can be
# long and span lines).
MAX_FAILURE_MESSAGE = 1000
# How long an action waits for Hockeypuck to answer again after a restart.
READY_TIMEOUT = 120.0
EXPECTED_FAILURES = (
    hkp_client.HkpError,
    blocklist.BlocklistError,
    GpgError,
    WorkloadError,
    database.DatabaseRelationMissingError,
    database.DatabaseNotReadyError,
    RemoteDataError,
)


class KeyserverActions(ops.Object):
    """Observes the action events and runs each action against this unit's Hockeypuck."""

    def __init__(
        self, charm: ops.CharmBase, workload: Hockeypuck, apply_config: Callable[[], None]
    ):
        super().__init__(charm, "keyserver-actions")
        self._charm = charm
        self._workload = workload
        self._apply_config = apply_config
        on = charm.on
        self.framework.observe(on.block_keys_action, self._on_block_keys)
        self.framework.observe(on.unblock_keys_action, self._on_unblock_keys)
        self.framework.observe(on.list_blocked_keys_action, self._on_list_blocked_keys)
        self.framework.observe(on.lookup_key_action, self._on_lookup_key)
        self.framework.observe(on.rebuild_prefix_tree_action, self._on_rebuild_prefix_tree)
        self.framework.observe(on.load_keys_action, self._on_load_keys)
        self.framework.observe(on.dump_keys_action, self._on_dump_keys)

    def _on_block_keys(self, event: ops.ActionEvent) -> None:
        from key_actions import block_keys  # noqa: PLC0415 - see the module docstring

        self._run(
            event,
            lambda: block_keys(
                str(event.params["fingerprints"]),
                str(event.params["comment"]),
                store=self._store(),
                keyserver=hkp_client.HkpClient(),
                signer=admin_key_store.load(self.model, self._peer_relation()),
                apply_blocklist=self._apply_blocklist,
            ),
        )

    def _on_unblock_keys(self, event: ops.ActionEvent) -> None:
        from key_actions import unblock_keys  # noqa: PLC0415

        self._run(
            event,
            lambda: unblock_keys(
                str(event.params["fingerprints"]),
                store=self._store(),
                apply_blocklist=self._apply_blocklist,
            ),
        )

    def _on_list_blocked_keys(self, event: ops.ActionEvent) -> None:
        from key_actions import list_blocked_keys  # noqa: PLC0415

        self._run(event, lambda: list_blocked_keys(store=self._store()))

    def _on_lookup_key(self, event: ops.ActionEvent) -> None:
        from key_actions import lookup_key  # noqa: PLC0415

        self._run(
            event,
            lambda: lookup_key(str(event.params["keyword"]), keyserver=hkp_client.HkpClient()),
        )

    def _on_rebuild_prefix_tree(self, event: ops.ActionEvent) -> None:
        from key_actions import rebuild_prefix_tree  # noqa: PLC0415

        store = self._store_or_none()

        def step(message: str, then: Callable[[], object]) -> Callable[[], None]:
            def run() -> None:
                event.log(message)
                then()

            return run

        self._run(
            event,
            lambda: rebuild_prefix_tree(
                self._workload.prefix_tree,
                stop_service=step("stopping Hockeypuck", self._workload.pause),
                run_pbuild=step(
                    "rebuilding the prefix tree from the database (hours for millions of keys)",
                    lambda: self._workload.run_tool("pbuild"),
                ),
                start_service=lambda: self._resume(event.log),
                count_keys=store.count_keys if store else _unknown_count,
                keep_old=bool(event.params.get("keep-old-tree", False)),
            ),
        )

    def _on_load_keys(self, event: ops.ActionEvent) -> None:
        import bulk_actions  # noqa: PLC0415

        def action() -> ActionResults:
            self._check_configured()
            relation = self._peer_relation()
            return bulk_actions.load_keys(
                str(event.params["path"]),
                common_dir=self._workload.common_dir,
                stop_service=self._workload.pause,
                start_service=lambda: self._resume(event.log),
                run_load=lambda argument: self._workload.run_tool("load", argument),
                count_keys=lambda: self._store().count_keys(),
                log=event.log,
                other_units=len(relation.units) if relation is not None else 0,
                unit=self._charm.unit.name,
            )

        self._run(event, action)

    def _on_dump_keys(self, event: ops.ActionEvent) -> None:
        import bulk_actions  # noqa: PLC0415

        def action() -> ActionResults:
            self._check_configured()
            return bulk_actions.dump_keys(
                str(event.params.get("path", "")),
                event.params.get("keys-per-file", bulk_actions.DEFAULT_KEYS_PER_FILE),
                common_dir=self._workload.common_dir,
                stop_service=self._workload.pause,
                start_service=lambda: self._resume(event.log),
                run_dump=lambda directory, count: self._workload.run_tool(
                    "dump", "-path", directory, "-count", str(count)
                ),
                count_keys=lambda: self._store().count_keys(),
                log=event.log,
            )

        self._run(event, action)

    def _resume(self, log: Callable[[str], None]) -> None:
        """Start Hockeypuck after an offline tool, unless the charm had stopped it on purpose."""
        if self._workload.resume():
            log("started Hockeypuck again")
        else:
            log("left Hockeypuck stopped: the charm had stopped it (no database relation)")

    def _check_configured(self) -> None:
        """The bulk tools read Hockeypuck's config file: refuse before stopping anything."""
        from key_actions import ActionFailedError  # noqa: PLC0415

        if not self._workload.config_path.exists():
            raise ActionFailedError(
                "Hockeypuck is not configured on this unit yet (no database credentials?): "
                "nothing was done"
            )

    def _run(self, event: ops.ActionEvent, action: Callable[[], ActionResults]) -> None:
        """Run an action; expected failures fail it with their message, never a traceback."""
        from key_actions import ActionFailedError  # noqa: PLC0415

        try:
            results = action()
        except ActionFailedError as error:
            if error.results:
                event.set_results(error.results)
            event.fail(one_line(error.message, MAX_FAILURE_MESSAGE))
        except EXPECTED_FAILURES as error:
            event.fail(one_line(str(error), MAX_FAILURE_MESSAGE))
        else:
            event.set_results(results)

    def _apply_blocklist(self) -> None:
        """Tell the other units, render the new block list here, and wait for Hockeypuck.

        The other units re-read the list from the database when the action has finished (Juju
        publishes relation data then), whatever happens here: they end up with what the
        database holds, even after a failure and rollback.
        """
        relation = self._peer_relation()
        if relation is not None:
            peers.announce_blocklist_change(relation, self._charm.unit)
        self._apply_config()
        hkp_client.HkpClient().wait_ready(READY_TIMEOUT)

    def _store(self) -> blocklist.PostgresBlocklist:
        relation = self.model.get_relation(database.ENDPOINT)
        if relation is None:
            raise database.DatabaseRelationMissingError("there is no database relation")
        store = blocklist.PostgresBlocklist(database.read_credentials(self.model, relation))
        store.ensure_table()
        return store

    def _store_or_none(self) -> blocklist.PostgresBlocklist | None:
        try:
            return self._store()
        except EXPECTED_FAILURES as error:
            logger.warning("cannot count keys after the rebuild: %s", error)
            return None

    def _peer_relation(self) -> ops.Relation | None:
        return self.model.get_relation(peers.ENDPOINT)


def _unknown_count() -> int:
    raise blocklist.BlocklistError("no database to count the keys in")
