"""The serving check against an HKP server on a real PostgreSQL whose credentials are revoked.

The HKP double answers as Hockeypuck 2.3 does (`/pks/health` 200 whatever happens, lookups 500
when its database refuses it); the database is the suite's real PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from hkp_client import HkpClient
from relations.database import DatabaseCredentials
from tests.functional import hockeypuck_db
from tests.functional.hkp_double import HkpDouble
from tests.functional.pg_server import PostgresServer
from workload import DatabaseUnreachableError, Hockeypuck, ServiceError

pytestmark = pytest.mark.functional

ROLE = "hockeypuck_revoked"


def _database(postgres: PostgresServer) -> DatabaseCredentials:
    postgres.create_role(ROLE, hockeypuck_db.PASSWORD)
    name = f"hockeypuck_revoked_{os.getpid()}"
    postgres.create_database(name, owner=ROLE)
    credentials = DatabaseCredentials(
        postgres.host, postgres.port, name, ROLE, hockeypuck_db.PASSWORD, False
    )
    with psycopg.connect(hockeypuck_db.conninfo(credentials)) as conn:
        conn.execute(hockeypuck_db.schema_sql().encode())
    return credentials


def _login(postgres: PostgresServer, allowed: bool) -> None:
    option = sql.SQL("LOGIN" if allowed else "NOLOGIN")
    postgres.admin.execute(sql.SQL("ALTER ROLE {} {}").format(sql.Identifier(ROLE), option))


def test_credentials_revoked_under_a_running_daemon_are_seen_and_the_recovery_too(
    postgres: PostgresServer, tmp_path: Path
):
    credentials = _database(postgres)
    with HkpDouble(hockeypuck_db.conninfo(credentials)) as double:
        workload = Hockeypuck(tmp_path)
        workload.hkp_address = ("127.0.0.1", double.port)
        workload.check_serving()

        _login(postgres, allowed=False)
        try:
            assert HkpClient(port=double.port).is_ready()  # health says nothing of it
            with pytest.raises(DatabaseUnreachableError, match=f"{double.port} answered 500"):
                workload.check_serving()
        finally:
            _login(postgres, allowed=True)
        workload.check_serving()


def test_nothing_listening_is_a_service_error(tmp_path: Path):
    workload = Hockeypuck(tmp_path)
    with HkpDouble("host=127.0.0.1") as double:
        port = double.port
    workload.hkp_address = ("127.0.0.1", port)

    with pytest.raises(ServiceError, match="the HKP port does not serve: .*not answering"):
        workload.check_serving()
