"""Two deployments, each with its own database, peered through one recon relation."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import jubilant
import pytest

from tests.integration import hkp

EU, US = "hockeypuck-eu", "hockeypuck-us"
DATA = Path(__file__).resolve().parents[1] / "data/hockeypuck/keys"
CAROL = "84353343549A2C54E805AFB7B8D6734EB572AD57"  # tests/data/hockeypuck/README.md
TIMEOUT = 40 * 60
NEVER = "0001-01-01T00:00:00Z"


@pytest.fixture(scope="module")
def peered(juju: jubilant.Juju, charm_path: Path, snap_resource: Path) -> jubilant.Juju:
    for app, units in ((EU, 1), (US, 2)):
        # Separate databases: a key can only reach the other side through recon.
        juju.deploy("postgresql", f"postgresql-{app}", channel="16/stable", base="ubuntu@24.04")
        juju.deploy(
            charm_path,
            app,
            num_units=units,
            resources={"hockeypuck-snap": str(snap_resource)},
        )
        juju.integrate(f"{app}:database", f"postgresql-{app}:database")
    juju.integrate(f"{EU}:recon-partners", f"{US}:recon-peers")
    juju.wait(jubilant.all_active, timeout=TIMEOUT)
    return juju


def stats(address: str) -> dict[str, Any]:
    url = f"http://{address}:{hkp.HKP_PORT}/pks/lookup?op=stats&options=mr"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_every_unit_lists_every_unit_of_the_other_side(peered: jubilant.Juju):
    status = peered.status()

    for app, other, count in ((EU, US, 2), (US, EU, 1)):
        for unit in status.apps[app].units.values():
            names = {peer["Name"] for peer in stats(unit.public_address)["peers"]}
            remote = {name for name in names if name.startswith(f"{other}/")}
            assert len(remote) == count, names


def test_a_key_added_on_one_side_reaches_the_other(peered: jubilant.Juju):
    status = peered.status()
    armored = (DATA / "carol.pub.asc").read_text()
    assert hkp.add_key(hkp.unit_address(status, EU), armored) == 200

    deadline = time.monotonic() + 15 * 60
    found: dict[str, int] = {}
    while time.monotonic() < deadline:
        found = {
            unit: hkp.get_key(info.public_address, CAROL)[0]
            for unit, info in status.apps[US].units.items()
        }
        if all(code == 200 for code in found.values()):
            break
        time.sleep(30)

    assert found and all(code == 200 for code in found.values()), found


def test_incoming_recon_is_matched_to_the_named_partner(peered: jubilant.Juju):
    status = peered.status()
    address = hkp.unit_address(status, EU)

    deadline = time.monotonic() + 10 * 60
    incoming: dict[str, str] = {}
    while time.monotonic() < deadline:
        incoming = {
            peer["Name"]: peer["LastIncomingRecon"]
            for peer in stats(address)["peers"]
            if peer["Name"].startswith(f"{US}/")
        }
        if incoming and NEVER not in incoming.values():
            break
        time.sleep(30)

    # Zero when Hockeypuck took the partner for an anonymous peer (an allowCIDRs match).
    assert incoming and NEVER not in incoming.values(), incoming
