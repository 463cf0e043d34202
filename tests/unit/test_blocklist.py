"""The block list's SQL and transactions, with psycopg faked (the real one: functional tests).

What is pinned: values travel as bind parameters only, each operation is one transaction, the
connection is made from DatabaseCredentials without a hand-built connection string, and errors
become BlocklistError without the password.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

import blocklist
from blocklist import BlockedKey, BlocklistError, PostgresBlocklist
from relations.database import DatabaseCredentials

ALICE = "68c5878085cd227bb9697f15f7bec0a960422c11"
DAVE = "c809341dc3af0d2e7e8eb703ed43155e5f5dc032"
CREDENTIALS = DatabaseCredentials("10.0.0.5", 5432, "hockeypuck", "relation-7", "pa'ss", True)


class FakePsycopgError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


@dataclass
class FakeDatabase:
    """psycopg as blocklist uses it: connect(), a transaction, a cursor."""

    results: list[list[tuple[Any, ...]]] = field(default_factory=list)
    executed: list[tuple[str, Any]] = field(default_factory=list)
    connects: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[str] = field(default_factory=list)
    closed: int = 0
    connect_error: Exception | None = None
    execute_error: Exception | None = None
    _last: list[tuple[Any, ...]] = field(default_factory=list)

    def connect(self, *args: Any, **kwargs: Any) -> FakeDatabase:
        assert not args, "no connection string: keyword arguments only"
        self.connects.append(kwargs)
        if self.connect_error:
            raise self.connect_error
        return self

    def __enter__(self) -> FakeDatabase:
        return self

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.transactions.append("commit")
        else:
            self.transactions.append("rollback")

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed += 1

    def execute(self, statement: str, params: Any = None) -> None:
        if self.execute_error:
            raise self.execute_error
        self.executed.append((" ".join(statement.split()), params))
        self._last = self.results.pop(0) if self.results else []

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._last

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._last[0] if self._last else None


class FakeCursor:
    def __init__(self, database: FakeDatabase):
        self.execute = database.execute
        self.fetchall = database.fetchall
        self.fetchone = database.fetchone

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> FakeDatabase:
    fake = FakeDatabase()
    module = types.ModuleType("psycopg")
    module.connect = fake.connect  # type: ignore[attr-defined]
    module.Error = FakePsycopgError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "psycopg", module)
    return fake


def test_connects_from_credentials(db: FakeDatabase):
    PostgresBlocklist(CREDENTIALS).list()
    assert db.connects == [
        {
            "host": "10.0.0.5",
            "port": 5432,
            "dbname": "hockeypuck",
            "user": "relation-7",
            "password": "pa'ss",
            "sslmode": "require",
            "connect_timeout": 10,
            "application_name": "hockeypuck-charm",
        }
    ]
    plain = DatabaseCredentials("h", 1, "d", "u", "p", False)
    PostgresBlocklist(plain, connect_timeout=3).list()
    assert (db.connects[1]["sslmode"], db.connects[1]["connect_timeout"]) == ("disable", 3)
    assert db.closed == 2


def test_ensure_table_is_only_a_query_when_the_table_is_ready(db: FakeDatabase):
    db.results = [[(True,)]]

    PostgresBlocklist(CREDENTIALS).ensure_table()

    assert len(db.executed) == 1
    assert db.executed[0][0].startswith("SELECT EXISTS ( SELECT 1 FROM information_schema.columns")


def test_ensure_table_ddl_under_an_advisory_lock(db: FakeDatabase):
    db.results = [[(False,)]]
    PostgresBlocklist(CREDENTIALS).ensure_table()
    assert db.executed[1:] == [
        ("SELECT pg_advisory_xact_lock(%s)", (0x686B7062,)),
        (
            "CREATE TABLE IF NOT EXISTS deleted_keys "
            "(fingerprint TEXT PRIMARY KEY, comment TEXT NOT NULL)",
            None,
        ),
        ("ALTER TABLE deleted_keys ADD COLUMN IF NOT EXISTS blocked_at TIMESTAMPTZ", None),
        ("ALTER TABLE deleted_keys ALTER COLUMN blocked_at SET DEFAULT now()", None),
    ]
    assert db.transactions == ["commit"]
    assert not any("DROP" in statement.upper() for statement, _ in db.executed)


def test_block_sends_values_as_parameters(db: FakeDatabase):
    db.results = [[(DAVE,)]]
    comment = 'it\'s "bad"; DROP TABLE keys;--'
    added = PostgresBlocklist(CREDENTIALS).block([ALICE.upper(), DAVE, ALICE], comment)
    assert added == [DAVE]
    [(statement, params)] = db.executed
    assert statement.startswith("INSERT INTO deleted_keys (fingerprint, comment)")
    assert "%(fingerprints)s::text[]" in statement
    assert params == {"fingerprints": [ALICE, DAVE], "comment": comment}
    assert comment not in statement
    assert db.transactions == ["commit"]


def test_empty_lists_do_not_connect(db: FakeDatabase):
    store = PostgresBlocklist(CREDENTIALS)
    assert store.block([], "c") == []
    assert store.unblock([]) == []
    assert store.stored([]) == set()
    assert db.connects == []


def test_unblock(db: FakeDatabase):
    db.results = [[(ALICE,)]]
    assert PostgresBlocklist(CREDENTIALS).unblock([DAVE, ALICE.upper()]) == [ALICE]
    [(statement, params)] = db.executed
    assert statement.startswith("DELETE FROM deleted_keys WHERE lower(fingerprint) = ANY(")
    assert params == {"fingerprints": [DAVE, ALICE]}


def test_list_and_fingerprints(db: FakeDatabase):
    when = datetime(2026, 11, 26, tzinfo=UTC)
    rows = [(ALICE, "a", when), (DAVE, "d", None)]
    db.results = [rows, rows]
    store = PostgresBlocklist(CREDENTIALS)
    assert store.list() == [BlockedKey(ALICE, "a", when), BlockedKey(DAVE, "d", None)]
    assert store.fingerprints() == [ALICE, DAVE]


def test_stored_by_reversed_fingerprint(db: FakeDatabase):
    db.results = [[(True,)], [(blocklist.reversed_fingerprint(ALICE),)]]
    store = PostgresBlocklist(CREDENTIALS)
    assert store.stored([ALICE.upper(), DAVE]) == {ALICE}
    assert db.executed[1][1] == {"rfingerprints": [ALICE[::-1], DAVE[::-1]]}
    db.results = [[(True,)], []]
    assert not store.is_stored(DAVE)


def test_nothing_is_stored_before_hockeypuck_made_its_tables(db: FakeDatabase):
    db.results = [[(False,)], [(False,)]]
    store = PostgresBlocklist(CREDENTIALS)
    assert store.stored([ALICE]) == set()
    assert store.count_keys() == 0
    assert len(db.executed) == 2


def test_count_keys(db: FakeDatabase):
    db.results = [[(True,)], [(12,)]]
    assert PostgresBlocklist(CREDENTIALS).count_keys() == 12
    assert db.executed[1] == ("SELECT count(*) FROM public.keys", None)


def test_connection_error(db: FakeDatabase):
    db.connect_error = FakePsycopgError(
        'connection to server at "10.0.0.5", port 5432 failed: FATAL:  password '
        'authentication failed for user "relation-7"\nmore detail'
    )
    with pytest.raises(BlocklistError) as caught:
        PostgresBlocklist(CREDENTIALS).list()
    message = str(caught.value)
    assert message.startswith("cannot connect to the database: FakePsycopgError: connection to")
    assert "more detail" not in message
    assert "pa'ss" not in message


def test_query_error_rolls_back(db: FakeDatabase):
    db.execute_error = FakePsycopgError('relation "deleted_keys" does not exist', "42P01")
    with pytest.raises(BlocklistError, match=r"database error: FakePsycopgError \[42P01\]: rel"):
        PostgresBlocklist(CREDENTIALS).block([ALICE], "c")
    assert db.transactions == ["rollback"]
    assert db.closed == 1
    db.execute_error = FakePsycopgError("")
    with pytest.raises(BlocklistError, match=r"database error: FakePsycopgError$"):
        PostgresBlocklist(CREDENTIALS).list()
