"""Block, delete, re-upload refused, unblock, re-upload, lookup: end to end with real parts.

Real PostgreSQL with Hockeypuck's schema (the block list and the keys), real gpg (the charm's
generated admin key signs, the HKP double verifies), the real HKP client over HTTP, and the HKP
double standing in for Hockeypuck as the recorded transcripts show it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

import admin_key
import key_actions
from admin_key import AdminKey, AdminKeySigner
from blocklist import PostgresBlocklist, reversed_fingerprint
from hkp_client import (
    HkpClient,
    KeyNotFoundError,
    ServiceNotReadyError,
    SignatureRejectedError,
    delete_keytext,
)
from relations.database import DatabaseCredentials
from tests.functional import hockeypuck_db
from tests.functional.hkp_double import HkpDouble, parse_keys
from tests.functional.pg_server import PostgresServer, free_port

pytestmark = pytest.mark.functional

ALICE = "68c5878085cd227bb9697f15f7bec0a960422c11"
BOB = "ae907dc0364d265dd9da88254380d6bca8a7b373"
CAROL = "84353343549a2c54e805afb7b8d6734eb572ad57"
DAVE = "c809341dc3af0d2e7e8eb703ed43155e5f5dc032"
BOB_SUBKEY = "d56d41937dae592c0aab72b4c38545fd9aca4048"


@pytest.fixture(scope="module")
def charm_admin_key() -> AdminKey:
    return admin_key.generate_admin_key("hockeypuck", "keyserver")


@dataclass
class Keyserver:
    database: DatabaseCredentials
    store: PostgresBlocklist
    double: HkpDouble
    client: HkpClient
    signer: AdminKeySigner
    applied: list[list[str]]

    def apply_blocklist(self) -> None:
        """What the charm does: render `blacklist` from the table, restart, wait until ready."""
        fingerprints = self.store.fingerprints()
        self.double.blacklist = set(fingerprints)
        self.applied.append(fingerprints)
        self.client.wait_ready(timeout=10)

    def stored(self) -> set[str]:
        with psycopg.connect(hockeypuck_db.conninfo(self.database)) as conn:
            rows = conn.execute("SELECT rfingerprint FROM keys").fetchall()
        return {reversed_fingerprint(row[0]) for row in rows}


@pytest.fixture
def keyserver(postgres: PostgresServer, charm_admin_key: AdminKey) -> Iterator[Keyserver]:
    database = hockeypuck_db.fresh_database(postgres)
    store = PostgresBlocklist(database)
    store.ensure_table()
    with HkpDouble(
        hockeypuck_db.conninfo(database), admin_fingerprints=[charm_admin_key.fingerprint]
    ) as double:
        client = HkpClient(port=double.port, timeout=10)
        # The charm uploads its admin key's public half once it has generated it.
        assert client.add_key(charm_admin_key.public_key).inserted
        for name in ("alice.pub.asc", "bob.pub.asc", "carol.pub.asc"):
            assert client.add_key(hockeypuck_db.key(name)).inserted
        yield Keyserver(database, store, double, client, AdminKeySigner(charm_admin_key), [])


def block(server: Keyserver, fingerprints: str, signer: AdminKeySigner | None = None):
    return key_actions.block_keys(
        fingerprints,
        'abuse report #42: "spam"\nsecond line; DROP TABLE keys;--',
        store=server.store,
        keyserver=server.client,
        signer=signer or server.signer,
        apply_blocklist=server.apply_blocklist,
    )


def test_block_reupload_unblock_lookup(keyserver: Keyserver, charm_admin_key: AdminKey):
    admin = charm_admin_key.fingerprint.lower()
    assert keyserver.stored() == {admin, ALICE, BOB, CAROL}

    results = block(keyserver, f"0x{ALICE.upper()}, {DAVE}, {ALICE}, zzz")

    assert results == {
        "summary": "1 blocked+deleted; 1 blocked, was not stored; 1 invalid",
        "keys": {ALICE: "blocked+deleted", DAVE: "blocked, was not stored"},
        "invalid": {"item-4": "invalid: 'zzz' is not a hexadecimal fingerprint"},
    }
    assert keyserver.stored() == {admin, BOB, CAROL}
    assert keyserver.store.fingerprints() == [ALICE, DAVE]
    assert keyserver.applied == [[ALICE, DAVE]]
    assert ("POST", "/pks/delete", 200) in keyserver.double.requests

    # Blocked: an upload is answered 200 with all-null JSON and nothing is stored.
    refused = keyserver.client.add_key(hockeypuck_db.key("alice.pub.asc"))
    assert refused.refused
    assert ALICE not in keyserver.stored()
    assert key_actions.lookup_key(ALICE, keyserver=keyserver.client) == {
        "result": "no key found",
        "keyword": ALICE,
        "count": "0",
    }

    # Idempotent: nothing changes the second time.
    again = block(keyserver, f"{DAVE},{ALICE}")
    assert again == {
        "summary": "2 already blocked",
        "keys": {DAVE: "already blocked", ALICE: "already blocked"},
    }
    assert keyserver.applied == [[ALICE, DAVE]]

    listed = key_actions.list_blocked_keys(store=keyserver.store)
    assert listed["count"] == "2"
    assert listed["keys"][ALICE]["comment"].startswith('abuse report #42: "spam"\nsecond line')
    assert listed["keys"][DAVE]["blocked-at"].endswith("Z")

    unblocked = key_actions.unblock_keys(
        ALICE.upper(), store=keyserver.store, apply_blocklist=keyserver.apply_blocklist
    )
    assert unblocked == {"summary": "1 unblocked", "keys": {ALICE: "unblocked"}}
    assert keyserver.applied[-1] == [DAVE]

    # Unblocked: the key can be uploaded again, and found.
    assert keyserver.client.add_key(hockeypuck_db.key("alice.pub.asc")).inserted
    by_email = key_actions.lookup_key("alice@example.test", keyserver=keyserver.client)
    assert by_email["result"] == "1 key found"
    match = by_email["keys"][ALICE]
    assert match["fingerprint"] == ALICE
    assert match["key-id"] == ALICE[-16:]
    assert match["user-ids"] == {"uid-1": "Alice Example <alice@example.test>"}
    assert match["created"].startswith("2026-11-26T")
    assert "armored-key" not in match

    by_fingerprint = key_actions.lookup_key(ALICE.upper(), keyserver=keyserver.client)
    armored = by_fingerprint["keys"][ALICE]["armored-key"]
    assert [key.fingerprint for key in parse_keys(armored)] == [ALICE]


def test_lookup_by_key_id_subkey_and_text(keyserver: Keyserver):
    by_key_id = key_actions.lookup_key(f"0x{BOB[-16:].upper()}", keyserver=keyserver.client)
    assert list(by_key_id["keys"]) == [BOB]
    by_subkey = key_actions.lookup_key(BOB_SUBKEY, keyserver=keyserver.client)
    assert list(by_subkey["keys"]) == [BOB]
    assert "armored-key" not in by_subkey["keys"][BOB]
    by_text = key_actions.lookup_key("Example", keyserver=keyserver.client)
    assert set(by_text["keys"]) == {ALICE, BOB, CAROL}
    assert by_text["count"] == "3"
    hostile = key_actions.lookup_key("x%'; DROP TABLE keys;--", keyserver=keyserver.client)
    assert hostile["result"] == "no key found"
    assert keyserver.stored() >= {ALICE, BOB, CAROL}


def test_delete_refused_by_the_keyserver_is_purged(keyserver: Keyserver):
    recorded_admin = AdminKey(
        fingerprint="4E6955676366F4F25D46BBD77722ECD1CF6E3EEA",
        public_key=hockeypuck_db.key("admin-TEST-ONLY.pub.asc"),
        secret_key=hockeypuck_db.key("admin-TEST-ONLY.sec.asc"),
    )

    results = block(keyserver, f"{BOB},{DAVE}", signer=AdminKeySigner(recorded_admin))

    assert ("POST", "/pks/delete", 422) in keyserver.double.requests
    assert results["keys"] == {BOB: "blocked+deleted", DAVE: "blocked, was not stored"}
    assert BOB not in keyserver.stored()
    assert keyserver.store.fingerprints() == [BOB, DAVE]
    assert keyserver.double.blacklist == {BOB, DAVE}


def test_blocked_key_that_came_back_is_purged(keyserver: Keyserver):
    block(keyserver, BOB)
    # Recon brought it back before every unit ran with the new blacklist.
    keyserver.double.blacklist.discard(BOB)
    assert keyserver.client.add_key(hockeypuck_db.key("bob.pub.asc")).inserted
    keyserver.double.blacklist.add(BOB)

    results = block(keyserver, BOB)

    # The running daemon's delete skips a blacklisted key: the purge removes it.
    assert results["keys"] == {BOB: "already blocked, deleted now"}
    assert BOB not in keyserver.stored()


def test_service_not_ready_changes_nothing(keyserver: Keyserver):
    down = HkpClient(port=free_port(), timeout=2)
    with pytest.raises(ServiceNotReadyError, match="not answering"):
        key_actions.block_keys(
            CAROL,
            "gone",
            store=keyserver.store,
            keyserver=down,
            signer=keyserver.signer,
            apply_blocklist=keyserver.apply_blocklist,
        )
    with pytest.raises(ServiceNotReadyError):
        key_actions.lookup_key("carol@example.test", keyserver=down)
    assert keyserver.store.fingerprints() == []
    assert CAROL in keyserver.stored()


def test_double_answers_like_the_transcripts(keyserver: Keyserver):
    """The double's admin checks (the real server's, as recorded): 422, 404, 400, 200."""
    client = keyserver.client
    keytext = delete_keytext(client.get_key(f"0x{CAROL}"))
    signature = keyserver.signer.sign(keytext)
    tampered = keytext.replace("/pks/delete\n", "/pks/delete\n\n")
    with pytest.raises(SignatureRejectedError):
        client.delete_key(tampered, signature)
    client.delete_key(keytext, signature)
    assert CAROL not in keyserver.stored()
    with pytest.raises(KeyNotFoundError):
        client.delete_key(keytext, signature)
    with pytest.raises(KeyNotFoundError):
        client.get_key(f"0x{CAROL}")
    # A deleted key that is not blocked can simply come back (why blocking needs both).
    assert client.add_key(hockeypuck_db.key("carol.pub.asc")).inserted
    assert client.add_key(hockeypuck_db.key("carol.pub.asc")).ignored
