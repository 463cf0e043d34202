"""Three units of one application, rendered from one view of the peer relation."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from hockeypuck_config import render
from relations.database import DatabaseCredentials
from relations.peers import PeerUnit
from state import CharmConfig, CharmState
from tests.functional import go_template
from tests.functional.hockeypuck_schema import violations

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
UNITS = {f"hockeypuck-{index}": f"10.42.0.{10 + index}" for index in range(3)}
EXTERNAL = "keyserver.example.net,11371,11370"


def unit_config(nodename: str) -> dict[str, Any]:
    """The file one unit writes, as Hockeypuck reads it (template layer, then TOML)."""
    others = tuple(
        PeerUnit(name, address, "2.3.3") for name, address in UNITS.items() if name != nodename
    )
    state = CharmState(
        config=CharmConfig.from_config(
            {"snap-channel": "latest/edge", "external-peers": EXTERNAL}
        ),
        database=DatabaseCredentials("10.42.0.2", 5432, "hockeypuck", "relation-3", "pw", False),
        nodename=nodename,
        unit_address=UNITS[nodename],
        peer_units=others,
    )
    return tomllib.loads(go_template.render(render(state, TEMPLATES)))


@pytest.mark.parametrize("nodename", sorted(UNITS))
def test_each_unit_reconciles_with_the_other_two_and_never_itself(nodename: str):
    config = unit_config(nodename)

    recon = config["hockeypuck"]["conflux"]["recon"]
    others = {name: address for name, address in UNITS.items() if name != nodename}
    assert recon["partner"] == {
        **{
            name: {"httpAddr": f"{address}:11371", "reconAddr": f"{address}:11370"}
            for name, address in others.items()
        },
        "keyserver.example.net:11370": {
            "httpAddr": "keyserver.example.net:11371",
            "reconAddr": "keyserver.example.net:11370",
        },
    }
    assert recon["allowCIDRs"] == []  # partners are let in by their addresses
    assert config["hockeypuck"]["nodename"] == nodename
    assert UNITS[nodename] not in str(recon)


def test_every_units_file_uses_only_real_hockeypuck_keys():
    for nodename in UNITS:
        assert violations(unit_config(nodename)) == []


def test_the_log_file_key_is_a_real_hockeypuck_key():
    state = CharmState(
        config=CharmConfig.from_config({"snap-channel": "latest/edge"}),
        database=DatabaseCredentials("10.42.0.2", 5432, "hockeypuck", "relation-3", "pw", False),
        nodename="hockeypuck-0",
        log_file="/var/snap/hockeypuck/common/logs/hockeypuck.log",
    )

    config = tomllib.loads(go_template.render(render(state, TEMPLATES)))

    assert config["hockeypuck"]["logfile"] == "/var/snap/hockeypuck/common/logs/hockeypuck.log"
    assert violations(config) == []
