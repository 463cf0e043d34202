"""The block list against a real PostgreSQL with Hockeypuck's real schema."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from blocklist import BlockedKey, BlocklistError, PostgresBlocklist, reversed_fingerprint
from relations.database import DatabaseCredentials
from tests.functional import hockeypuck_db, pg_server
from tests.functional.pg_server import PostgresServer, free_port

pytestmark = pytest.mark.functional

ALICE = "68c5878085cd227bb9697f15f7bec0a960422c11"
BOB = "ae907dc0364d265dd9da88254380d6bca8a7b373"
DAVE = "c809341dc3af0d2e7e8eb703ed43155e5f5dc032"


@pytest.fixture
def database(postgres: PostgresServer) -> DatabaseCredentials:
    return hockeypuck_db.fresh_database(postgres)


def sql(credentials: DatabaseCredentials, statement: str, *params: object) -> list[tuple]:
    with psycopg.connect(hockeypuck_db.conninfo(credentials)) as conn:
        cursor = conn.execute(statement.encode(), params or None)
        return cursor.fetchall() if cursor.description else []


def store_key(credentials: DatabaseCredentials, fingerprint: str) -> None:
    """A row in Hockeypuck's keys table, as Hockeypuck writes its key columns."""
    sql(
        credentials,
        "INSERT INTO keys (rfingerprint, doc, ctime, mtime, md5, idxtime, vfingerprint) "
        "VALUES (%s, '{}', now(), now(), %s, now(), %s)",
        reversed_fingerprint(fingerprint),
        f"md5-{fingerprint}",
        "04" + fingerprint,
    )


def test_ensure_table_creates_the_kubernetes_charms_table_plus_blocked_at(database):
    store = PostgresBlocklist(database)
    store.ensure_table()
    store.ensure_table()  # idempotent
    columns = sql(
        database,
        "SELECT column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_name = 'deleted_keys' "
        "ORDER BY ordinal_position",
    )
    assert columns == [
        ("fingerprint", "text", "NO", None),
        ("comment", "text", "NO", None),
        ("blocked_at", "timestamp with time zone", "YES", "now()"),
    ]
    primary_key = sql(
        database,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
        "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = 'deleted_keys'::regclass AND i.indisprimary",
    )
    assert primary_key == [("fingerprint",)]


def test_ensure_table_keeps_an_existing_kubernetes_charm_table(database):
    sql(
        database, "CREATE TABLE deleted_keys (fingerprint TEXT PRIMARY KEY, comment TEXT NOT NULL)"
    )
    sql(database, "INSERT INTO deleted_keys VALUES (%s, 'from the k8s charm')", BOB)
    store = PostgresBlocklist(database)
    store.ensure_table()
    assert store.list() == [BlockedKey(BOB, "from the k8s charm", None)]
    assert store.block([BOB, ALICE], "new") == [ALICE]
    [alice] = [entry for entry in store.list() if entry.fingerprint == ALICE]
    assert alice.blocked_at is not None
    assert abs(alice.blocked_at - datetime.now(UTC)) < timedelta(minutes=5)


def test_ensure_table_from_several_units_at_once(postgres):
    database = hockeypuck_db.fresh_database(postgres)
    errors: list[Exception] = []

    def ensure() -> None:
        try:
            PostgresBlocklist(database).ensure_table()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=ensure) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_block_unblock_list(database):
    store = PostgresBlocklist(database)
    store.ensure_table()
    comment = 'Robert\'); DROP TABLE deleted_keys;--\n"quoted" {{ .X }} %s %(x)s \\'
    assert store.block([ALICE.upper(), DAVE, ALICE], comment) == [ALICE, DAVE]
    assert store.block([DAVE, BOB], "second") == [BOB]
    assert store.block([], "nothing") == []
    entries = store.list()
    assert [entry.fingerprint for entry in entries] == [ALICE, BOB, DAVE]
    assert entries[0].comment == comment
    assert entries[2].comment == comment  # kept, not overwritten by "second"
    assert store.fingerprints() == [ALICE, BOB, DAVE]
    assert sql(database, "SELECT fingerprint FROM deleted_keys ORDER BY 1") == [
        (ALICE,),
        (BOB,),
        (DAVE,),
    ]
    assert store.unblock([DAVE.upper(), "0" * 40]) == [DAVE]
    assert store.unblock([]) == []
    assert store.fingerprints() == [ALICE, BOB]


def test_values_are_parameters_never_sql(database):
    store = PostgresBlocklist(database)
    store.ensure_table()
    hostile = "x'); DROP TABLE keys; --"
    assert store.block([hostile], "c") == [hostile.lower()]
    assert store.stored([hostile]) == set()
    assert store.unblock([hostile]) == [hostile.lower()]
    assert sql(database, "SELECT to_regclass('public.keys') IS NOT NULL") == [(True,)]


def test_upper_case_rows_written_by_someone_else_still_match(database):
    store = PostgresBlocklist(database)
    store.ensure_table()
    sql(database, "INSERT INTO deleted_keys (fingerprint, comment) VALUES (%s, 'x')", BOB.upper())
    assert store.block([BOB], "again") == []
    assert store.fingerprints() == [BOB]
    assert store.unblock([BOB]) == [BOB]
    assert store.list() == []


def test_stored_looks_keys_up_by_reversed_fingerprint(database):
    store = PostgresBlocklist(database)
    store_key(database, ALICE)
    store_key(database, BOB)
    assert reversed_fingerprint(ALICE.upper()) == "11c224069a0ceb7f51f7969bb722dc5808785c86"
    assert store.stored([ALICE.upper(), DAVE, BOB]) == {ALICE, BOB}
    assert store.stored([]) == set()
    assert store.is_stored(ALICE)
    assert not store.is_stored(DAVE)
    assert store.count_keys() == 2


def test_before_hockeypuck_created_its_schema(postgres):
    database = hockeypuck_db.fresh_database(postgres, with_schema=False)
    store = PostgresBlocklist(database)
    store.ensure_table()
    assert store.stored([ALICE]) == set()
    assert store.count_keys() == 0
    assert store.block([ALICE], "before the first start") == [ALICE]


def test_wrong_password_is_a_clear_error_without_the_password(database):
    credentials = DatabaseCredentials(
        database.host, database.port, database.database, database.username, "wrong-secret", False
    )
    with pytest.raises(BlocklistError, match="cannot connect to the database") as caught:
        PostgresBlocklist(credentials).list()
    assert "wrong-secret" not in str(caught.value)
    assert "password authentication failed" in str(caught.value)


def test_unreachable_database():
    credentials = DatabaseCredentials("127.0.0.1", free_port(), "hockeypuck", "u", "p", False)
    with pytest.raises(BlocklistError, match="cannot connect"):
        PostgresBlocklist(credentials, connect_timeout=2).ensure_table()


def test_missing_table_is_a_database_error(database):
    with pytest.raises(BlocklistError, match=r"UndefinedTable \[42P01\]"):
        PostgresBlocklist(database).list()


def test_a_new_relation_user_reads_a_table_it_cannot_alter(postgres, database):
    """A database moved from the Kubernetes charm: its table, owned by another role."""
    sql(
        database, "CREATE TABLE deleted_keys (fingerprint TEXT PRIMARY KEY, comment TEXT NOT NULL)"
    )
    sql(database, "INSERT INTO deleted_keys VALUES (%s, 'from the k8s charm')", ALICE.upper())
    postgres.create_role("relation_new", "new-pw")
    sql(database, "GRANT SELECT ON deleted_keys TO relation_new")
    newcomer = DatabaseCredentials(
        database.host, database.port, database.database, "relation_new", "new-pw", False
    )
    store = PostgresBlocklist(newcomer)

    with pytest.raises(BlocklistError):
        store.ensure_table()  # not the owner: cannot add blocked_at

    assert store.fingerprints() == [ALICE.lower()]


def test_the_suite_runs_postgresql_16_like_the_postgresql_charm(postgres: PostgresServer):
    version = postgres.admin.execute("SHOW server_version_num").fetchone()
    assert version is not None
    if int(version[0]) // 10000 < 16 and pg_server.pgserver_bin_dir() is None:
        pytest.skip("no PostgreSQL 16 here: no pgserver wheel for this platform, older packages")

    assert int(version[0]) // 10000 >= 16
