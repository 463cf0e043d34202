"""The block list, kept in Hockeypuck's own database.

Table `deleted_keys (fingerprint TEXT PRIMARY KEY, comment TEXT NOT NULL)`, fingerprints in
lower case: the Kubernetes charm's table, so a database moved between the two charms keeps its
block list. The charm creates it when missing and never drops it; it only adds the column
`blocked_at` (NULL for rows written before it existed, or by the Kubernetes charm).

Every statement is parameterised. psycopg is imported only when a connection is opened, so
importing this module costs the charm nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from relations.database import DatabaseCredentials

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)

TABLE = "deleted_keys"
CONNECT_TIMEOUT = 10
# Serialises concurrent ensure_table() calls (several units start at once): any constant.
_DDL_LOCK_ID = 0x686B7062  # "hkpb"

_DDL = (
    "CREATE TABLE IF NOT EXISTS deleted_keys "
    "(fingerprint TEXT PRIMARY KEY, comment TEXT NOT NULL)",
    # Rows that existed before stay NULL ("unknown"), new rows get the time they were added.
    "ALTER TABLE deleted_keys ADD COLUMN IF NOT EXISTS blocked_at TIMESTAMPTZ",
    "ALTER TABLE deleted_keys ALTER COLUMN blocked_at SET DEFAULT now()",
)
# Whether the table exists with the column the charm adds: then no DDL is needed, and none is
# run (it needs table ownership, which a user given by a new relation may not have).
_TABLE_READY = """
SELECT EXISTS (
    SELECT 1 FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = 'deleted_keys'
      AND column_name = 'blocked_at' AND column_default IS NOT NULL
)
"""
_BLOCK = """
INSERT INTO deleted_keys (fingerprint, comment)
SELECT wanted.fingerprint, %(comment)s
FROM unnest(%(fingerprints)s::text[]) AS wanted(fingerprint)
WHERE NOT EXISTS (
    SELECT 1 FROM deleted_keys AS existing
    WHERE lower(existing.fingerprint) = wanted.fingerprint
)
ON CONFLICT (fingerprint) DO NOTHING
RETURNING fingerprint
"""
_UNBLOCK = """
DELETE FROM deleted_keys WHERE lower(fingerprint) = ANY(%(fingerprints)s::text[])
RETURNING lower(fingerprint)
"""
_LIST = """
SELECT lower(fingerprint), comment, blocked_at FROM deleted_keys ORDER BY lower(fingerprint)
"""
_FINGERPRINTS = "SELECT DISTINCT lower(fingerprint) FROM deleted_keys ORDER BY 1"
_KEYS_TABLE_EXISTS = "SELECT to_regclass('public.keys') IS NOT NULL"
_STORED = """
SELECT rfingerprint FROM public.keys WHERE rfingerprint = ANY(%(rfingerprints)s::text[])
"""
_COUNT_KEYS = "SELECT count(*) FROM public.keys"
# What Hockeypuck's own delete does (pghkp/delete.go), for many keys in one transaction.
_PURGE = (
    "DELETE FROM public.subkeys WHERE rfingerprint = ANY(%(rfingerprints)s::text[])",
    "DELETE FROM public.userids WHERE rfingerprint = ANY(%(rfingerprints)s::text[])",
    "DELETE FROM public.keys WHERE rfingerprint = ANY(%(rfingerprints)s::text[])"
    " RETURNING rfingerprint",
)


class BlocklistError(Exception):
    """The block list cannot be read or written (database unreachable or refusing)."""


@dataclass(frozen=True)
class BlockedKey:
    """One block-list entry."""

    fingerprint: str
    comment: str
    blocked_at: datetime | None


def reversed_fingerprint(fingerprint: str) -> str:
    """Hockeypuck's `keys.rfingerprint`: the lower-case fingerprint, reversed."""
    return fingerprint.lower()[::-1]


def _lower(fingerprints: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(fingerprint.lower() for fingerprint in fingerprints))


class PostgresBlocklist:
    """The block list in Hockeypuck's PostgreSQL database (one connection per call).

    Fingerprints passed in must already be validated (see `state.normalise_fingerprint`);
    any case is accepted, lower case is stored and returned.
    """

    def __init__(self, credentials: DatabaseCredentials, connect_timeout: int = CONNECT_TIMEOUT):
        self._credentials = credentials
        self._connect_timeout = connect_timeout

    def ensure_table(self) -> None:
        """Create the table (and the `blocked_at` column) when missing; never drops anything."""
        with self._transaction() as cursor:
            cursor.execute(_TABLE_READY)
            ready = cursor.fetchone()
            if ready is not None and ready[0]:
                return
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK_ID,))
            for statement in _DDL:
                cursor.execute(statement)

    def block(self, fingerprints: Iterable[str], comment: str) -> list[str]:
        """Add fingerprints in one transaction; returns those that were not blocked before.

        An entry that exists keeps its comment and time.
        """
        wanted = _lower(fingerprints)
        if not wanted:
            return []
        with self._transaction() as cursor:
            cursor.execute(_BLOCK, {"fingerprints": wanted, "comment": comment})
            added = {row[0] for row in cursor.fetchall()}
        return [fingerprint for fingerprint in wanted if fingerprint in added]

    def unblock(self, fingerprints: Iterable[str]) -> list[str]:
        """Remove fingerprints in one transaction; returns those that were blocked."""
        wanted = _lower(fingerprints)
        if not wanted:
            return []
        with self._transaction() as cursor:
            cursor.execute(_UNBLOCK, {"fingerprints": wanted})
            removed = {row[0] for row in cursor.fetchall()}
        return [fingerprint for fingerprint in wanted if fingerprint in removed]

    def list(self) -> list[BlockedKey]:
        """All entries, ordered by fingerprint."""
        with self._transaction() as cursor:
            cursor.execute(_LIST)
            rows = cursor.fetchall()
        return [BlockedKey(row[0], row[1], row[2]) for row in rows]

    def fingerprints(self) -> list[str]:
        """The blocked fingerprints, lower case and sorted: what `blacklist` in the config is.

        Reads the fingerprint column only, so a table without the charm's `blocked_at` column
        (the Kubernetes charm's, when it could not be altered) still works.
        """
        with self._transaction() as cursor:
            cursor.execute(_FINGERPRINTS)
            rows = cursor.fetchall()
        return [row[0] for row in rows]

    def stored(self, fingerprints: Iterable[str]) -> set[str]:
        """Which of these keys are in Hockeypuck's `keys` table (lower-case fingerprints).

        Only primary-key fingerprints match (as in Hockeypuck's `blacklist`).
        """
        wanted = _lower(fingerprints)
        if not wanted:
            return set()
        by_reversed = {reversed_fingerprint(fingerprint): fingerprint for fingerprint in wanted}
        with self._transaction() as cursor:
            cursor.execute(_KEYS_TABLE_EXISTS)
            row = cursor.fetchone()
            if not row or not row[0]:
                return set()  # Hockeypuck has not created its schema yet: nothing is stored.
            cursor.execute(_STORED, {"rfingerprints": list(by_reversed)})
            return {by_reversed[row[0]] for row in cursor.fetchall()}

    def purge(self, fingerprints: Iterable[str]) -> list[str]:
        """Delete these keys from Hockeypuck's tables as its own delete does; those deleted.

        For keys Hockeypuck cannot delete itself: its signed delete drops a key that is in
        its `blacklist` (or longer than `maxKeyLength`) from the request. The prefix trees
        still list the deleted keys' digests until recon asks for them and finds them gone
        (Hockeypuck then drops them: `hockeypuck_keys_removed_jitter`).
        """
        wanted = _lower(fingerprints)
        if not wanted:
            return []
        by_reversed = {reversed_fingerprint(fingerprint): fingerprint for fingerprint in wanted}
        with self._transaction() as cursor:
            cursor.execute(_KEYS_TABLE_EXISTS)
            row = cursor.fetchone()
            if not row or not row[0]:
                return []
            for statement in _PURGE:
                cursor.execute(statement, {"rfingerprints": list(by_reversed)})
            deleted = {by_reversed[row[0]] for row in cursor.fetchall()}
        return [fingerprint for fingerprint in wanted if fingerprint in deleted]

    def is_stored(self, fingerprint: str) -> bool:
        """Whether this key is in Hockeypuck's `keys` table."""
        return bool(self.stored([fingerprint]))

    def count_keys(self) -> int:
        """How many keys Hockeypuck's database holds (0 before its schema exists)."""
        with self._transaction() as cursor:
            cursor.execute(_KEYS_TABLE_EXISTS)
            row = cursor.fetchone()
            if not row or not row[0]:
                return 0
            cursor.execute(_COUNT_KEYS)
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor]:
        """A cursor in one transaction: committed on success, rolled back on any error."""
        import psycopg  # noqa: PLC0415 - keep psycopg out of the charm's cold start

        credentials = self._credentials
        try:
            connection = psycopg.connect(
                host=credentials.host,
                port=credentials.port,
                dbname=credentials.database,
                user=credentials.username,
                password=credentials.password,
                sslmode="require" if credentials.tls else "disable",
                connect_timeout=self._connect_timeout,
                application_name="hockeypuck-charm",
            )
        except psycopg.Error as error:
            raise BlocklistError(f"cannot connect to the database: {_describe(error)}") from None
        try:
            with connection, connection.cursor() as cursor:
                yield cursor
        except psycopg.Error as error:
            raise BlocklistError(f"database error: {_describe(error)}") from None
        finally:
            connection.close()


def _describe(error: Exception) -> str:
    """The error's class and SQLSTATE: psycopg messages can quote connection parameters."""
    sqlstate = getattr(error, "sqlstate", None)
    name = type(error).__name__
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    # libpq's connection messages name host, port and user but never the password.
    text = f"{name}" + (f" [{sqlstate}]" if sqlstate else "")
    return f"{text}: {first_line}" if first_line else text
