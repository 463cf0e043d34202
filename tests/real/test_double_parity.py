"""The HKP double (tests/functional/hkp_double.py) and the real Hockeypuck, one test body each.

Every behaviour the double emulates is asserted here against both servers, configured alike:
the recorded admin key in `adminKeys` (and stored), MALLORY in the blacklist. A behaviour the
real server drops fails here, so the double cannot drift from it unnoticed.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

import admin_key
from admin_key import AdminKey, AdminKeySigner
from hkp_client import delete_keytext
from tests.functional import hockeypuck_db
from tests.functional.hkp_double import HkpDouble
from tests.functional.pg_server import PostgresServer
from tests.real.deployment import Deployment
from tests.real.keys import ALICE, BOB, CAROL, DAVE, armored

ADMIN = "4E6955676366F4F25D46BBD77722ECD1CF6E3EEA"


def mallory() -> str:
    """Mallory's fingerprint, read from the key (the block list needs the real one)."""
    from tests.functional.hkp_double import parse_keys  # noqa: PLC0415

    return parse_keys(armored("mallory-blacklisted"))[0].fingerprint


@dataclass
class Server:
    """An HKP server under test: where it answers, and the admin key it trusts."""

    name: str
    host: str
    port: int
    signer: AdminKeySigner

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=15)
        body = urllib.parse.urlencode(form) if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            return response.status, {k.lower(): v for k, v in response.getheaders()}, text
        finally:
            connection.close()

    def add(self, keytext: str) -> tuple[int, str]:
        status, _, body = self.request("POST", "/pks/add", {"keytext": keytext})
        return status, body

    def delete(self, keytext: str, signer: AdminKeySigner | None = None) -> int:
        signature = (signer or self.signer).sign(keytext)
        status, _, _ = self.request(
            "POST", "/pks/delete", {"keytext": keytext, "keysig": signature}
        )
        return status


def recorded_admin() -> AdminKeySigner:
    return AdminKeySigner(
        AdminKey(
            ADMIN,
            hockeypuck_db.key("admin-TEST-ONLY.pub.asc"),
            hockeypuck_db.key("admin-TEST-ONLY.sec.asc"),
        )
    )


@pytest.fixture(scope="module")
def double_server(real_postgres: PostgresServer) -> Iterator[Server]:
    database = hockeypuck_db.fresh_database(real_postgres)
    with HkpDouble(
        hockeypuck_db.conninfo(database), admin_fingerprints=[ADMIN], blacklist=[mallory()]
    ) as double:
        server = Server("double", "127.0.0.1", double.port, recorded_admin())
        assert server.add(server.signer.public_key)[0] == 200
        yield server


@pytest.fixture(scope="module")
def real_server(make_deployment: Callable[..., Deployment]) -> Server:
    deployment = make_deployment("parity")
    deployment.config["admin-keys"] = ADMIN
    deployment.deploy(1)
    unit = deployment.units[0]
    deployment.action(unit, "block-keys", fingerprints=mallory(), comment="parity")
    unit.client().wait_ready(timeout=30)
    server = Server("real", unit.host.ipv4, 11371, recorded_admin())
    assert server.add(server.signer.public_key)[0] == 200
    return server


@pytest.fixture(params=["double", "real"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(f"{request.param}_server")


def test_health(server: Server):
    status, _, body = server.request("GET", "/pks/health")
    assert (status, body) == (200, "OK")


def test_error_bodies_are_the_status_text(server: Server):
    status, headers, body = server.request("GET", f"/pks/lookup?op=get&search=0x{DAVE}")
    assert (status, body) == (404, "Not Found\n")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["x-content-type-options"] == "nosniff"


def test_add_answers_counts_with_null_for_empty_lists(server: Server):
    status, body = server.add(armored("alice"))
    assert status == 200
    answer = json.loads(body)
    assert set(answer) == {"inserted", "updated", "ignored"}
    again = json.loads(server.add(armored("alice"))[1])
    assert again["inserted"] is None
    assert any(ALICE in item.lower() for item in again["ignored"] or answer["inserted"])


def test_blacklisted_key_gets_all_null_and_is_not_stored(server: Server):
    status, body = server.add(armored("mallory-blacklisted"))
    assert status == 200
    assert json.loads(body) == {"inserted": None, "updated": None, "ignored": None}
    assert server.request("GET", f"/pks/lookup?op=get&search=0x{mallory()}")[0] == 404


@pytest.mark.parametrize(
    "form", [{}, {"keytext": "this is not an armored key"}], ids=["no-keytext", "garbage"]
)
def test_add_refuses_what_is_not_a_key(server: Server, form: dict[str, str]):
    status, _, _ = server.request("POST", "/pks/add", form)
    assert status == 400


def test_lookup_get_and_machine_readable_index(server: Server):
    server.add(armored("bob"))
    status, _, key = server.request("GET", f"/pks/lookup?op=get&search=0x{BOB}")
    assert status == 200 and "BEGIN PGP PUBLIC KEY BLOCK" in key
    status, _, index = server.request("GET", f"/pks/lookup?op=index&options=mr&search=0x{BOB}")
    assert status == 200
    assert f"pub:{BOB.upper()}:" in index


@pytest.mark.parametrize(
    "path",
    ["/pks/lookup?op=get", "/pks/lookup?op=frobnicate&search=alice"],
    ids=["missing-search", "unknown-op"],
)
def test_lookup_bad_requests(server: Server, path: str):
    assert server.request("GET", path)[0] == 400


def test_delete_needs_the_command_line(server: Server):
    server.add(armored("carol"))
    assert server.delete(armored("carol")) == 400


def test_delete_signed_by_a_key_that_is_not_admin_is_refused(server: Server):
    server.add(armored("carol"))
    stranger = AdminKeySigner(admin_key.generate_admin_key("parity", "stranger"))
    assert server.delete(delete_keytext(armored("carol")), stranger) == 422
    assert server.request("GET", f"/pks/lookup?op=get&search=0x{CAROL}")[0] == 200


def test_delete_succeeds_with_an_empty_body_then_404(server: Server):
    server.add(armored("carol"))
    keytext = delete_keytext(armored("carol"))
    status, _, body = server.request(
        "POST", "/pks/delete", {"keytext": keytext, "keysig": server.signer.sign(keytext)}
    )
    assert (status, body) == (200, "")
    assert server.request("GET", f"/pks/lookup?op=get&search=0x{CAROL}")[0] == 404
    assert server.delete(keytext) == 404


def test_delete_of_a_blacklisted_key_answers_200_and_deletes_nothing(server: Server):
    # The request's key is read through the blacklist: nothing is left to delete.
    assert server.delete(delete_keytext(armored("mallory-blacklisted"))) == 200
