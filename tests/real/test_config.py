"""The charm's config, every option, as the real Hockeypuck reads and applies it."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable

import pytest
from ops import testing

import snap_layout
from tests.real import netns
from tests.real.deployment import Deployment, RealUnit, wait_for
from tests.real.keys import ALICE, BOB, CAROL, armored
from tests.real.netns import Lan, LanHost
from tests.real.settings import read_settings


@pytest.fixture(scope="module")
def hosts(lan: Lan) -> dict[str, LanHost]:
    """An external peer (nothing listens there), an allowed and a stranger recon client."""
    return {name: lan.add_host(f"cfg-{name}") for name in ("peer", "allowed", "stranger")}


@pytest.fixture(scope="module")
def configured(
    make_deployment: Callable[..., Deployment], hosts: dict[str, LanHost]
) -> Deployment:
    deployment = make_deployment("config")
    deployment.config.update(
        {
            "hostname": "keys.example.org",
            "contact-fingerprint": f"0x{ALICE.upper()}",
            "admin-keys": f"{BOB}\n{CAROL.upper()}",
            "external-peers": (
                f"{hosts['peer'].ipv4},11371,11370\n{hosts['peer'].ipv6},11371,11370"
            ),
            "log-level": "debug",
            "log-request-details": True,
            "allowed-recon-cidrs": f"{hosts['allowed'].ipv4}/32",
        }
    )
    deployment.deploy(1)
    return deployment


@pytest.fixture(scope="module")
def unit(configured: Deployment) -> RealUnit:
    return configured.units[0]


def test_every_option_starts_a_daemon_that_stays_up(configured: Deployment, unit: RealUnit):
    assert configured.statuses()[unit.name] == testing.ActiveStatus("")
    time.sleep(2)
    assert unit.running()
    unit.client().health()


def test_hockeypuck_reads_every_key_the_charm_writes(unit: RealUnit, hosts: dict[str, LanHost]):
    settings, unused = read_settings(unit.config_file)

    assert unused == []
    assert settings["Hostname"] == "keys.example.org"
    assert settings["Nodename"] == "hockeypuck-0"
    assert settings["Contact"] == f"0x{ALICE.upper()}"
    assert settings["LogLevel"] == "DEBUG"
    assert settings["LogFile"] == str(snap_layout.LOG_FILE)
    assert settings["HKP"]["LogRequestDetails"] is True
    admin = {key.lower() for key in settings["AdminKeys"]}
    assert {BOB, CAROL} <= admin


def test_stats_page_shows_names_contact_version_and_exactly_the_wanted_peers(
    unit: RealUnit, hosts: dict[str, LanHost]
):
    stats = unit.stats()

    assert stats["hostname"] == "keys.example.org"
    assert stats["nodename"] == "hockeypuck-0"
    assert stats["contact"] == f"0x{ALICE.upper()}"
    assert stats["version"] == "2.3.3"
    peer = hosts["peer"]
    assert sorted((p["httpAddr"], p["reconAddr"]) for p in stats["peers"]) == sorted(
        [
            (f"{peer.ipv4}:11371", f"{peer.ipv4}:11370"),
            (f"[{peer.ipv6}]:11371", f"[{peer.ipv6}]:11370"),
        ]
    )


def test_a_key_round_trips_and_is_served_with_the_host_name(unit: RealUnit):
    client = unit.client()
    assert client.add_key(armored("bob")).inserted

    served = client.get_key(f"0x{BOB}")

    assert "Comment: Hostname: keys.example.org" in served
    assert BOB.upper() in json.dumps(client.index(BOB).__repr__()).upper()


def test_request_details_and_debug_lines_reach_the_log_file(unit: RealUnit):
    unit.get("/pks/lookup?op=get&search=0x" + BOB)
    log = unit.log_text()
    assert "level=debug" in log
    assert "user-agent=" in log


def test_metrics_answer_on_the_metrics_port(unit: RealUnit):
    status, body = unit.get(snap_layout.METRICS_PATH, port=snap_layout.METRICS_PORT)

    assert status == 200
    assert "hockeypuck_http_request_duration_seconds" in body


def recon_attempt(unit: RealUnit, client: LanHost) -> None:
    """Open a recon connection to the unit from the client host, then close it."""
    address = (unit.host.ipv4, snap_layout.RECON_PORT)
    with netns.entered(client.netns), socket.create_connection(address, timeout=5) as conn:
        conn.settimeout(2)
        with contextlib.suppress(TimeoutError):
            conn.recv(64)


def log_lines(unit: RealUnit, *words: str) -> list[str]:
    """The daemon's log lines that contain every word."""
    return [line for line in unit.log_text().splitlines() if all(w in line for w in words)]


def test_recon_answers_only_allowed_addresses(unit: RealUnit, hosts: dict[str, LanHost]):
    stranger, allowed = hosts["stranger"].ipv4, hosts["allowed"].ipv4

    recon_attempt(unit, hosts["stranger"])
    recon_attempt(unit, hosts["allowed"])

    wait_for(
        lambda: bool(log_lines(unit, "connection rejected from", f"{stranger}:")),
        10,
        "the stranger's recon rejected",
    )
    wait_for(
        lambda: bool(log_lines(unit, "accepted recon from", f"addr={allowed},")),
        10,
        "the allowed client's recon accepted",
    )
    assert not log_lines(unit, "connection rejected from", f"{allowed}:")


def test_max_key_length_is_enforced(configured: Deployment, unit: RealUnit):
    key = armored("carol")
    configured.configure(max_key_length=200)
    try:
        unit.client().wait_ready(timeout=30)
        assert unit.client().add_key(key).refused or not unit.client().add_key(key).inserted
        from hkp_client import KeyNotFoundError  # noqa: PLC0415

        with pytest.raises(KeyNotFoundError):
            unit.client().get_key(f"0x{CAROL}")
    finally:
        configured.configure(max_key_length=1048576)
    unit.client().wait_ready(timeout=30)
    assert unit.client().add_key(key).inserted


def test_a_snap_without_web_files_or_log_slot(make_deployment: Callable[..., Deployment]):
    deployment = make_deployment("bare", bare=True)
    deployment.deploy(1)
    unit = deployment.units[0]

    settings, unused = read_settings(unit.config_file)
    assert unused == []
    assert settings["IndexTemplate"] == "" and settings["Webroot"] == ""
    assert settings["LogFile"] == ""
    assert deployment.statuses()[unit.name] == testing.ActiveStatus("")
    status, body = unit.get("/pks/lookup?op=stats")
    assert status == 200 and "hockeypuck-0" in body
    assert "level=info" in unit.daemon_log.read_text()  # standard error: the journal
