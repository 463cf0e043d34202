"""Three units on one database behind HAProxy, reconciling with each other."""

from __future__ import annotations

import json
import ssl
import time
import urllib.parse
import urllib.request
from pathlib import Path

import jubilant
import pytest

from tests.integration import hkp

APP = "hockeypuck"
DATA = Path(__file__).resolve().parents[1] / "data/hockeypuck/keys"
BOB = "AE907DC0364D265DD9DA88254380D6BCA8A7B373"
TIMEOUT = 40 * 60
HOSTNAME = "keys.example.test"


@pytest.fixture(scope="module")
def mesh(juju: jubilant.Juju, charm_path: Path, snap_resource: Path) -> jubilant.Juju:
    juju.deploy("postgresql", channel="16/stable", base="ubuntu@24.04")
    juju.deploy("haproxy", channel="2.8/edge", base="ubuntu@24.04")
    juju.deploy("self-signed-certificates", channel="1/stable")
    juju.deploy(
        charm_path,
        APP,
        num_units=3,
        resources={"hockeypuck-snap": str(snap_resource)},
        config={"hostname": HOSTNAME},
    )
    juju.integrate(APP, "postgresql")
    juju.integrate("haproxy:certificates", "self-signed-certificates:certificates")
    juju.integrate(f"{APP}:haproxy-route", "haproxy:haproxy-route")
    juju.wait(jubilant.all_active, timeout=TIMEOUT)
    return juju


def via_haproxy(juju: jubilant.Juju, path: str, data: bytes | None = None) -> tuple[int, str]:
    """Send a request to HAProxy's unit with the route's host name (self-signed TLS)."""
    address = juju.status().apps["haproxy"].units["haproxy/0"].public_address
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(
        f"https://{address}{path}", data=data, headers={"Host": HOSTNAME}
    )
    with urllib.request.urlopen(request, timeout=60, context=context) as response:  # noqa: S310
        return response.status, response.read().decode()


def stats_total(address: str) -> int:
    """The unit's prefix-tree size (stats `Total`)."""
    url = f"http://{address}:{hkp.HKP_PORT}/pks/lookup?op=stats&options=mr"
    with urllib.request.urlopen(url, timeout=30) as response:
        return int(json.loads(response.read())["Total"])


def test_haproxy_url_is_shown(mesh: jubilant.Juju):
    status = mesh.status()

    for unit in status.apps[APP].units.values():
        assert unit.workload_status.message.startswith("serving https://")


def test_add_through_haproxy_and_look_up_on_every_unit(mesh: jubilant.Juju):
    body = urllib.parse.urlencode({"keytext": (DATA / "bob.pub.asc").read_text()}).encode()

    assert via_haproxy(mesh, "/pks/add", body)[0] == 200
    status = mesh.status()
    for index in range(3):
        code, armored = hkp.get_key(hkp.unit_address(status, APP, index), BOB)
        assert code == 200
        assert "BEGIN PGP PUBLIC KEY BLOCK" in armored


def test_prefix_trees_converge_by_recon(mesh: jubilant.Juju):
    addresses = [hkp.unit_address(mesh.status(), APP, index) for index in range(3)]
    deadline = time.monotonic() + 10 * 60  # gossip every 60 s: a few rounds
    totals = [stats_total(address) for address in addresses]
    while len(set(totals)) != 1 and time.monotonic() < deadline:
        time.sleep(15)
        totals = [stats_total(address) for address in addresses]

    assert len(set(totals)) == 1, totals
    assert totals[0] >= 1


def test_removing_a_unit_keeps_serving(mesh: jubilant.Juju):
    mesh.remove_unit(f"{APP}/2")
    mesh.wait(lambda status: len(status.apps[APP].units) == 2, timeout=TIMEOUT)
    mesh.wait(jubilant.all_active, timeout=TIMEOUT)

    assert via_haproxy(mesh, f"/pks/lookup?op=get&options=mr&search=0x{BOB}")[0] == 200
