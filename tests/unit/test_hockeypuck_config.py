"""Rendering hockeypuck.conf: structure, values and escaping."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hockeypuck_config import dsn, libpq_value, render, toml_value
from relations.database import DatabaseCredentials
from state import CharmConfig, CharmState

TEMPLATES = Path(__file__).parents[2] / "templates"
ADMIN = "4E6955676366F4F25D46BBD77722ECD1CF6E3EEA"


def make_state(password: str = "pw", **options: object) -> CharmState:
    config = CharmConfig.from_config({"snap-channel": "latest/edge", **options})  # type: ignore[dict-item]
    database = DatabaseCredentials(
        host="10.0.0.5",
        port=5432,
        database="hockeypuck",
        username="relation-7",
        password=password,
        tls=False,
    )
    return CharmState(config=config, database=database, nodename="hockeypuck-0")


def rendered(state: CharmState) -> dict:
    return tomllib.loads(render(state, TEMPLATES))


def test_defaults_render_the_machine_layout():
    conf = rendered(make_state())

    hockeypuck = conf["hockeypuck"]
    assert hockeypuck["loglevel"] == "INFO"
    assert hockeypuck["nodename"] == "hockeypuck-0"
    assert "hostname" not in hockeypuck and "contact" not in hockeypuck
    assert hockeypuck["adminKeys"] == []
    assert hockeypuck["webroot"] == "/snap/hockeypuck/current/usr/share/hockeypuck/www"
    assert hockeypuck["hkp"] == {"bind": ":11371", "logRequestDetails": False}
    assert hockeypuck["metrics"] == {"metricsAddr": ":9626", "metricsPath": "/metrics"}
    assert hockeypuck["openpgp"]["maxKeyLength"] == 1048576
    assert hockeypuck["openpgp"]["maxPacketLength"] == 8192
    assert hockeypuck["openpgp"]["db"]["driver"] == "postgres-jsonb"
    recon = hockeypuck["conflux"]["recon"]
    assert (recon["httpAddr"], recon["reconAddr"]) == (":11371", ":11370")
    assert recon["leveldb"] == {"path": "/var/snap/hockeypuck/common/ptree"}
    assert "partner" not in recon


def test_operator_options_reach_the_file():
    conf = rendered(
        make_state(
            hostname="keys.example.com",
            **{
                "contact-fingerprint": ADMIN.lower(),
                "admin-keys": f"0x{ADMIN}",
                "log-level": "debug",
                "log-request-details": True,
                "max-key-length": 2000000,
                "max-packet-length": 16384,
                "external-peers": "keyserver.example.net,11371,11370\n10.9.9.9,8080,8081",
            },
        )
    )

    hockeypuck = conf["hockeypuck"]
    assert hockeypuck["hostname"] == "keys.example.com"
    assert hockeypuck["contact"] == f"0x{ADMIN}"
    assert hockeypuck["adminKeys"] == [ADMIN]
    assert hockeypuck["loglevel"] == "DEBUG"
    assert hockeypuck["hkp"]["logRequestDetails"] is True
    assert hockeypuck["openpgp"]["maxKeyLength"] == 2000000
    assert hockeypuck["openpgp"]["maxPacketLength"] == 16384
    assert hockeypuck["conflux"]["recon"]["partner"] == {
        "keyserver.example.net:11370": {
            "httpAddr": "keyserver.example.net:11371",
            "reconAddr": "keyserver.example.net:11370",
        },
        "10.9.9.9:8081": {"httpAddr": "10.9.9.9:8080", "reconAddr": "10.9.9.9:8081"},
    }


def test_dsn_quotes_every_value_for_libpq():
    database = DatabaseCredentials("db.internal", 5433, "hockeypuck", "relation-7", "p w", True)

    assert dsn(database) == (
        "database='hockeypuck' host='db.internal' port='5433' user='relation-7' "
        "password='p w' sslmode='require'"
    )


@pytest.mark.parametrize(
    ("value", "quoted"),
    [("plain", "'plain'"), ("it's", r"'it\'s'"), ("back\\slash", r"'back\\slash'"), ("", "''")],
)
def test_libpq_quoting(value: str, quoted: str):
    assert libpq_value(value) == quoted


@pytest.mark.parametrize(
    ("value", "toml"),
    [
        ("plain", '"plain"'),
        ('q"uote', '"q\\"uote"'),
        ("back\\slash", '"back\\\\slash"'),
        ("new\nline", '"new\\nline"'),
        ("bell\x07", '"bell\\u0007"'),
        ("open{{brace", '"open{{"{{"}}brace"'),
        ("close}}only", '"close}}only"'),
        (True, "true"),
        (8192, "8192"),
        (["a", "b"], '["a", "b"]'),
        ([], "[]"),
    ],
)
def test_toml_values_survive_the_go_template_layer(value: object, toml: str):
    assert toml_value(value) == toml


def test_password_with_every_special_character_is_escaped_in_the_file():
    text = render(make_state(password="q\"uo\\te' {{x}}"), TEMPLATES)

    dsn_line = next(line for line in text.splitlines() if line.startswith("dsn"))
    # TOML escapes " and \, libpq escapes ' and \, the template layer only sees {{.
    assert dsn_line.endswith("password='q\\\"uo\\\\\\\\te\\\\' {{\"{{\"}}x}}' sslmode='disable'\"")


def test_template_has_no_go_template_actions_of_its_own():
    text = render(make_state(), TEMPLATES)

    assert "{{" not in text


def test_rendering_is_deterministic():
    assert render(make_state(), TEMPLATES) == render(make_state(), TEMPLATES)
