"""Contract: our database request, answered by the `postgresql` charm's own provider library.

`DatabaseProvides` (data_platform_libs v0, as postgresql 16 runs it) reads our request in a
tiny provider charm under ops.testing and hands the credentials over in Juju secrets, as the
real charm does; our charm reads them back and renders them into Hockeypuck's DSN.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import ModuleType

import ops
import pytest
from ops import testing

from tests.unit.conftest import base_state, config_file
from tests.unit.contract.conftest import upstream

PASSWORD = "pa ss'w\"ord"  # a space, a quote of each kind: libpq's and TOML's escaping
PROVIDER_META = {
    "name": "postgresql",
    "provides": {"database": {"interface": "postgresql_client"}},
}


@pytest.fixture(scope="module")
def provider() -> testing.Context:
    lib: ModuleType = upstream("charms.data_platform_libs.v0.data_interfaces")

    class PostgresqlCharm(ops.CharmBase):
        def __init__(self, framework: ops.Framework):
            super().__init__(framework)
            self.database = lib.DatabaseProvides(self, relation_name="database")
            framework.observe(self.database.on.database_requested, self._on_requested)

        def _on_requested(self, event: ops.RelationEvent) -> None:
            relation_id = event.relation.id
            self.database.set_database(relation_id, event.database)  # type: ignore[attr-defined]
            self.database.set_credentials(relation_id, f"relation-{relation_id}", PASSWORD)
            self.database.set_endpoints(relation_id, "10.0.0.5:5432")
            self.database.set_version(relation_id, "16.9")
            self.database.set_tls(relation_id, "False")

    return testing.Context(PostgresqlCharm, meta=PROVIDER_META)


def test_postgresql_answers_our_request_and_we_use_its_credentials(
    ctx: testing.Context, provider: testing.Context, root: Path
):
    ours = testing.Relation("database", remote_app_name="postgresql")
    asked = ctx.run(ctx.on.relation_joined(ours), base_state(relations={ours}, leader=True))
    request = dict(asked.get_relation(ours.id).local_app_data)
    theirs = testing.Relation("database", remote_app_name="hockeypuck", remote_app_data=request)

    answered = provider.run(
        provider.on.relation_changed(theirs), testing.State(leader=True, relations={theirs})
    )

    answer = dict(answered.get_relation(theirs.id).local_app_data)
    assert "password" not in answer  # handed over in a secret, as we asked
    shared = {
        testing.Secret(tracked_content=secret.tracked_content, id=secret.id)
        for secret in answered.secrets
    }
    with_answer = testing.Relation(
        "database", id=ours.id, remote_app_name="postgresql", remote_app_data=answer
    )
    out = ctx.run(
        ctx.on.relation_changed(with_answer),
        base_state(relations={with_answer}, secrets=shared, leader=True),
    )

    assert out.unit_status == testing.ActiveStatus()
    dsn = tomllib.loads(config_file(root).read_text())["hockeypuck"]["openpgp"]["db"]["dsn"]
    assert f"user='relation-{theirs.id}'" in dsn
    assert "host='10.0.0.5' port='5432'" in dsn
    assert "database='hockeypuck'" in dsn
    assert "password='pa ss\\'w\"ord'" in dsn
