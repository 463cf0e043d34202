"""Rolling restarts: one unit of the application restarts at a time.

Built on `charmlibs-rollingops` in its peer mode. Each unit queues its restart in its own
databag of the peer relation; the leader grants the lock (application databag) to one unit at a
time; the granted unit runs the callback in its next hook: a `relation-changed` of the peer
relation, or for the leader itself the `rollingops_lock_granted` hook that the library's worker
process dispatches about 10 seconds later (the next `update-status` does it too). The callback
restarts Hockeypuck and returns only once it answers `/pks/health`; then the leader releases the
lock and grants the next unit.

Importing the library costs about 300 ms (pydantic, the TLS-certificates interface, tenacity),
more than a whole no-op hook: the manager is built only in hooks that have rolling work, a
restart to ask for or lock state in the peer databags (`has_work`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import ops

if TYPE_CHECKING:
    from charmlibs.rollingops import OperationResult, RollingOpsManager

CALLBACK_ID = "restart"
# Where the library keeps its state in the peer databags (charmlibs-rollingops 1.1, peer mode;
# pinned by tests/unit/test_rolling.py against the real library).
GRANTED_KEY = "granted_unit"
INTENT_KEY = "state"
IDLE_INTENTS = frozenset({"", "idle"})


class RestartPendingError(Exception):
    """The config or snap changed; this unit waits for its turn to restart."""

    def __init__(self) -> None:
        super().__init__("this unit waits for its turn to restart")


def has_work(relation: ops.Relation, app: ops.Application, unit: ops.Unit) -> bool:
    """Whether the lock has state to act on: a unit holds it, or one asks for it."""
    if relation.data[app].get(GRANTED_KEY):
        return True
    units = {*relation.units, unit}
    return any(relation.data[peer].get(INTENT_KEY, "") not in IDLE_INTENTS for peer in units)


class RollingRestart(ops.Object):
    """Restarts this unit in its turn, through the peer relation's lock."""

    def __init__(
        self,
        charm: ops.CharmBase,
        endpoint: str,
        restart: Callable[[bool], bool],
        state_dir: Path,
    ):
        """Set up; `restart(update_snap)` restarts the unit, says whether it serves again."""
        super().__init__(charm, "rolling-restart")
        self._charm = charm
        self._endpoint = endpoint
        self._restart = restart
        self._state_dir = state_dir
        self._manager: RollingOpsManager | None = None
        relation = self.model.get_relation(endpoint)
        if relation is not None and has_work(relation, self.model.app, self.model.unit):
            self._manager = self._make_manager()

    def alone(self) -> bool:
        """Whether no other unit serves meanwhile (then a restart need not wait)."""
        relation = self.model.get_relation(self._endpoint)
        return relation is None or not relation.units

    def request(self, update_snap: bool = False) -> None:
        """Queue this unit's turn; a repeat of the last queued request is ignored.

        A turn applies whatever waits: a new config, a snap refresh. One kind of request, so
        that hooks asking in turn for either do not grow the queue.

        Args:
            update_snap: take the channel's newest snap revision in the turn (upgrade-charm).
        """
        if self._manager is None:
            self._manager = self._make_manager()
        kwargs = {"update_snap": True} if update_snap else {}
        self._manager.request_async_lock(CALLBACK_ID, kwargs=kwargs)

    def _make_manager(self) -> RollingOpsManager:
        from charmlibs import pathops  # noqa: PLC0415 - see the module's docstring
        from charmlibs.rollingops import RollingOpsManager  # noqa: PLC0415

        return RollingOpsManager(
            self._charm,
            callback_targets={CALLBACK_ID: self._run},
            peer_relation_name=self._endpoint,
            base_dir=pathops.LocalPath(self._state_dir),
        )

    def _run(self, update_snap: bool = False) -> OperationResult:
        """The lock's callback: release once restarted and serving, else keep the lock.

        Keeping it stops the roll: no other unit restarts while this one does not answer (the
        callback runs again in this unit's next turn, which comes first).
        """
        from charmlibs.rollingops import OperationResult  # noqa: PLC0415

        serving = self._restart(update_snap)
        return OperationResult.RELEASE if serving else OperationResult.RETRY_HOLD
