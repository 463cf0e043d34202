"""Deploy hockeypuck with postgresql 16 and use it as a keyserver would be used."""

from __future__ import annotations

from pathlib import Path

import jubilant
import pytest

from tests.integration import hkp

APP = "hockeypuck"
DATA = Path(__file__).resolve().parents[1] / "data/hockeypuck/keys"
ALICE = "68C5878085CD227BB9697F15F7BEC0A960422C11"
SERVICE = "snap.hockeypuck.hockeypuck.service"
TIMEOUT = 30 * 60


@pytest.fixture(scope="module")
def deployed(juju: jubilant.Juju, charm_path: Path, snap_resource: Path) -> jubilant.Juju:
    juju.deploy("postgresql", channel="16/stable", base="ubuntu@24.04")
    juju.deploy(charm_path, APP, resources={"hockeypuck-snap": str(snap_resource)})
    juju.wait(lambda status: jubilant.all_blocked(status, APP), timeout=TIMEOUT)
    juju.integrate(APP, "postgresql")
    juju.wait(jubilant.all_active, timeout=TIMEOUT)
    return juju


def active_since(juju: jubilant.Juju) -> str:
    """When systemd last (re)started the daemon."""
    return juju.exec(
        f"systemctl show -p ActiveEnterTimestamp --value {SERVICE}", unit=f"{APP}/0"
    ).stdout.strip()


def test_without_database_the_charm_says_so(
    juju: jubilant.Juju, charm_path: Path, snap_resource: Path
):
    juju.deploy(charm_path, "lonely", resources={"hockeypuck-snap": str(snap_resource)})
    status = juju.wait(lambda s: jubilant.all_blocked(s, "lonely"), timeout=TIMEOUT)

    assert status.apps["lonely"].units["lonely/0"].workload_status.message == (
        "needs a database relation"
    )
    juju.remove_application("lonely", destroy_storage=True, force=True)


def test_serves_keys_from_the_database(deployed: jubilant.Juju):
    address = hkp.unit_address(deployed.status(), APP)

    assert hkp.add_key(address, (DATA / "alice.pub.asc").read_text()) == 200
    status, body = hkp.get_key(address, ALICE)

    assert status == 200
    assert "BEGIN PGP PUBLIC KEY BLOCK" in body


def test_status_shows_the_hockeypuck_version(deployed: jubilant.Juju):
    assert deployed.status().apps[APP].version


def test_unchanged_config_does_not_restart(deployed: jubilant.Juju):
    before = active_since(deployed)

    deployed.config(APP, {"log-level": "INFO", "admin-keys": ""})
    deployed.wait(jubilant.all_active, timeout=TIMEOUT)

    assert active_since(deployed) == before


def test_changed_config_restarts_once(deployed: jubilant.Juju):
    before = active_since(deployed)

    deployed.config(APP, {"log-level": "DEBUG"})
    deployed.wait(jubilant.all_active, timeout=TIMEOUT)
    after = active_since(deployed)
    deployed.wait(jubilant.all_active, timeout=TIMEOUT)

    assert after != before
    assert active_since(deployed) == after


def test_invalid_config_blocks_and_keeps_serving(deployed: jubilant.Juju):
    deployed.config(APP, {"contact-fingerprint": "0x1234"})
    status = deployed.wait(lambda s: jubilant.all_blocked(s, APP), timeout=TIMEOUT)
    message = status.apps[APP].units[f"{APP}/0"].workload_status.message

    assert message.startswith("invalid config: contact-fingerprint:")
    assert hkp.get_key(hkp.unit_address(status, APP), ALICE)[0] == 200
    deployed.config(APP, reset=["contact-fingerprint"])
    deployed.wait(jubilant.all_active, timeout=TIMEOUT)


def test_removing_the_database_stops_the_service(deployed: jubilant.Juju):
    deployed.remove_relation(APP, "postgresql")
    status = deployed.wait(lambda s: jubilant.all_blocked(s, APP), timeout=TIMEOUT)

    assert status.apps[APP].units[f"{APP}/0"].workload_status.message == (
        "needs a database relation"
    )
    state = deployed.exec(f"systemctl is-active {SERVICE} || true", unit=f"{APP}/0")
    assert state.stdout.strip() in ("inactive", "failed")
    deployed.integrate(APP, "postgresql")
    deployed.wait(jubilant.all_active, timeout=TIMEOUT)
