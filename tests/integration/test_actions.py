"""The operators' actions on a deployed keyserver."""

from __future__ import annotations

from pathlib import Path

import jubilant
import pytest

from tests.integration import hkp

APP = "hockeypuck"
DATA = Path(__file__).resolve().parents[1] / "data/hockeypuck/keys"
ALICE = "68C5878085CD227BB9697F15F7BEC0A960422C11"
TIMEOUT = 30 * 60


@pytest.fixture(scope="module")
def keyserver(juju: jubilant.Juju, charm_path: Path, snap_resource: Path) -> jubilant.Juju:
    juju.deploy("postgresql", channel="16/stable", base="ubuntu@24.04")
    juju.deploy(charm_path, APP, num_units=2, resources={"hockeypuck-snap": str(snap_resource)})
    juju.integrate(APP, "postgresql")
    juju.wait(jubilant.all_active, timeout=TIMEOUT)
    return juju


def test_lookup_block_and_unblock(keyserver: jubilant.Juju):
    status = keyserver.status()
    first = hkp.unit_address(status, APP, 0)
    assert hkp.add_key(first, (DATA / "alice.pub.asc").read_text()) == 200

    found = keyserver.run(f"{APP}/0", "lookup-key", {"keyword": "alice@example.test"})
    assert found.results["count"] == "1"

    blocked = keyserver.run(f"{APP}/1", "block-keys", {"fingerprints": ALICE, "comment": "test"})
    assert blocked.results["keys"] == {ALICE.lower(): "blocked+deleted"}
    keyserver.wait(jubilant.all_active, timeout=TIMEOUT)
    for index in range(2):
        assert hkp.get_key(hkp.unit_address(status, APP, index), ALICE)[0] == 404
    # Re-uploading is refused by every unit: the block list reached their config.
    assert hkp.add_key(first, (DATA / "alice.pub.asc").read_text()) == 200
    assert hkp.get_key(first, ALICE)[0] == 404

    listed = keyserver.run(f"{APP}/0", "list-blocked-keys")
    assert ALICE.lower() in listed.results["keys"]

    again = keyserver.run(f"{APP}/0", "block-keys", {"fingerprints": ALICE, "comment": "test"})
    assert again.results["keys"] == {ALICE.lower(): "already blocked"}

    keyserver.run(f"{APP}/0", "unblock-keys", {"fingerprints": ALICE})
    keyserver.wait(jubilant.all_active, timeout=TIMEOUT)
    assert hkp.add_key(first, (DATA / "alice.pub.asc").read_text()) == 200
    assert hkp.get_key(first, ALICE)[0] == 200


def test_rebuild_prefix_tree(keyserver: jubilant.Juju):
    task = keyserver.run(f"{APP}/0", "rebuild-prefix-tree", wait=30 * 60)

    assert task.results["result"] == "rebuilt"
    keyserver.wait(jubilant.all_active, timeout=TIMEOUT)
