"""Every action of the charm, end to end, on one unit running the real Hockeypuck."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import psycopg
import pytest
from ops import testing

from hkp_client import KeyNotFoundError
from tests.real.deployment import Deployment, RealUnit
from tests.real.keys import ALICE, BOB, CAROL, DAVE, KEYS, armored


@pytest.fixture(scope="module")
def deployment(make_deployment: Callable[[str], Deployment]) -> Deployment:
    deployment = make_deployment("actions")
    deployment.deploy(1)
    client = deployment.units[0].client()
    for name in ("alice", "bob", "carol"):
        assert client.add_key(armored(name)).inserted
    return deployment


@pytest.fixture
def unit(deployment: Deployment) -> RealUnit:
    return deployment.units[0]


def tree_total(unit: RealUnit) -> int:
    """The number of keys in the unit's prefix tree (stats `Total`), pending changes applied."""
    unit.flush_tree()
    time.sleep(0.5)
    return int(unit.stats()["Total"])


def test_block_keys_deletes_a_stored_key_and_keeps_it_out(deployment: Deployment, unit: RealUnit):
    assert ALICE in deployment.stored()

    results = deployment.action(unit, "block-keys", fingerprints=ALICE, comment="abuse #1")

    assert results["keys"] == {ALICE: "blocked+deleted"}
    assert ALICE not in deployment.stored()
    with pytest.raises(KeyNotFoundError):
        unit.client().get_key(f"0x{ALICE}")
    # The action uploads the charm's admin key: the tree follows the database.
    assert tree_total(unit) == len(deployment.stored())
    assert unit.client().add_key(armored("alice")).refused
    assert ALICE not in deployment.stored()
    assert deployment.statuses()[unit.name] == testing.ActiveStatus("")


def test_block_keys_before_the_key_exists(deployment: Deployment, unit: RealUnit):
    results = deployment.action(unit, "block-keys", fingerprints=DAVE, comment="preemptive")

    assert results["keys"] == {DAVE: "blocked, was not stored"}
    assert unit.client().add_key(armored("dave-never-uploaded")).refused
    assert DAVE not in deployment.stored()


def test_list_blocked_keys(deployment: Deployment, unit: RealUnit):
    results = deployment.action(unit, "list-blocked-keys")

    listed = json.dumps(results)
    assert ALICE in listed and "abuse #1" in listed
    assert DAVE in listed and "preemptive" in listed


def test_unblock_keys_lets_the_key_back_in(deployment: Deployment, unit: RealUnit):
    results = deployment.action(unit, "unblock-keys", fingerprints=DAVE)

    assert results["keys"] == {DAVE: "unblocked"}
    assert unit.client().add_key(armored("dave-never-uploaded")).inserted
    assert DAVE in deployment.stored()


def test_lookup_key_by_fingerprint_and_email(deployment: Deployment, unit: RealUnit):
    by_fingerprint = deployment.action(unit, "lookup-key", keyword=BOB)
    by_email = deployment.action(unit, "lookup-key", keyword="carol@example.test")

    assert BOB in json.dumps(by_fingerprint)
    assert "BEGIN PGP PUBLIC KEY BLOCK" in json.dumps(by_fingerprint)
    assert CAROL in json.dumps(by_email)


def test_lookup_key_of_a_blocked_key_finds_nothing(deployment: Deployment, unit: RealUnit):
    results = deployment.action(unit, "lookup-key", keyword=ALICE)

    assert "no key found" in json.dumps(results)


def test_rebuild_prefix_tree(deployment: Deployment, unit: RealUnit):
    results = deployment.action(unit, "rebuild-prefix-tree")

    assert unit.running()
    unit.client().wait_ready(timeout=30)
    assert tree_total(unit) == len(deployment.stored())
    assert str(len(deployment.stored())) in json.dumps(results)


def test_dump_keys_then_load_them_into_an_empty_database(deployment: Deployment, unit: RealUnit):
    dumped = deployment.action(unit, "dump-keys", path="dump/all", **{"keys-per-file": 2})

    files = sorted((unit.common / "dump/all").glob("*.pgp"))
    assert len(files) == (len(deployment.stored()) + 1) // 2, dumped
    assert unit.running()
    # Empty the database, then load the dump back.
    keys_before = deployment.stored()
    with psycopg.connect(deployment.conninfo(), autocommit=True) as connection:
        for table in ("subkeys", "userids", "keys"):
            connection.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
    loaded = deployment.action(unit, "load-keys", path="dump/all")

    assert deployment.stored() == keys_before, loaded
    assert unit.running()
    unit.client().wait_ready(timeout=30)
    unit.client().get_key(f"0x{BOB}")


def test_load_keys_refuses_a_path_outside_the_snap(deployment: Deployment, unit: RealUnit):
    with pytest.raises(testing.ActionFailed):
        deployment.action(unit, "load-keys", path=str(KEYS / "bob.pub.asc"))
    assert unit.running()
