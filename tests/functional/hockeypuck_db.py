"""Fresh Hockeypuck databases on the functional tests' PostgreSQL, with the real 2.3.3 schema.

`tests/data/hockeypuck/schema.sql` is the `pg_dump --schema-only` of the database a real
Hockeypuck 2.3.3 created at its first start (copied from the project's reference recordings).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from relations.database import DatabaseCredentials
from tests.functional.pg_server import PostgresServer

DATA = Path(__file__).parents[1] / "data" / "hockeypuck"
SCHEMA = DATA / "schema.sql"
KEYS = DATA / "keys"
ROLE = "hockeypuck"
# Survives every layer it passes: libpq conninfo, SCRAM, psycopg.
PASSWORD = "pa ss'w\"o\\rd {{x}}"
_numbers = itertools.count()


def schema_sql() -> str:
    """The dump without psql's meta-commands such as `restrict` (psycopg runs plain SQL)."""
    return "\n".join(line for line in SCHEMA.read_text().splitlines() if not line.startswith("\\"))


def fresh_database(postgres: PostgresServer, *, with_schema: bool = True) -> DatabaseCredentials:
    """A new database owned by the `hockeypuck` role, with Hockeypuck's tables if asked."""
    postgres.create_role(ROLE, PASSWORD)
    name = f"hockeypuck_{os.getpid()}_{next(_numbers)}"
    postgres.create_database(name, owner=ROLE)
    credentials = DatabaseCredentials(
        host=postgres.host,
        port=postgres.port,
        database=name,
        username=ROLE,
        password=PASSWORD,
        tls=False,
    )
    if with_schema:
        with psycopg.connect(conninfo(credentials)) as conn:
            conn.execute(schema_sql().encode())
    return credentials


def conninfo(credentials: DatabaseCredentials) -> str:
    """A libpq connection string for these credentials (quoted by psycopg)."""
    return make_conninfo(
        host=credentials.host,
        port=credentials.port,
        dbname=credentials.database,
        user=credentials.username,
        password=credentials.password,
        sslmode="disable",
    )


def key(name: str) -> str:
    """An armored test key from tests/data/hockeypuck/keys/."""
    return (KEYS / name).read_text()
