"""The rendered hockeypuck.conf, read the way Hockeypuck 2.3 reads it, holds only real keys.

Each rendered file goes through the Go template layer (emulated) and TOML (tomllib), and is
then checked key by key and against the Hockeypuck 2.3 schema (tests/functional/
hockeypuck_schema.py). The schema check is itself pinned to the recorded behaviour of the real
daemon: keys it ignored and types it died on are flagged; every recorded file it accepted is
clean.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hockeypuck_config import render
from relations.database import DatabaseCredentials
from relations.peers import PeerUnit
from state import CharmConfig, CharmState
from tests.functional import go_template, hockeypuck_schema
from tests.functional.conftest import DATA, REPO_ROOT

pytestmark = pytest.mark.functional

TEMPLATES = REPO_ROOT / "templates"
ADMIN_1 = "4E6955676366F4F25D46BBD77722ECD1CF6E3EEA"
ADMIN_2 = "E159E5B123864CFAB85FB61F59B09C4D72522CE4"
CONTACT = "68C5878085CD227BB9697F15F7BEC0A960422C11"


def make_state(
    options: dict[str, Any] | None = None, *, tls: bool = False, password: str = "s3cret"
) -> CharmState:
    config = CharmConfig.from_config({"snap-channel": "2.3/stable", **(options or {})})
    database = DatabaseCredentials(
        host="10.1.2.3",
        port=5432,
        database="hockeypuck",
        username="relation-7",
        password=password,
        tls=tls,
    )
    return CharmState(config=config, database=database, nodename="hockeypuck-0")


def as_hockeypuck_reads_it(state: CharmState) -> dict[str, Any]:
    """Render, then the Go template layer, then TOML."""
    return tomllib.loads(go_template.render(render(state, TEMPLATES)))


FULL_OPTIONS: dict[str, Any] = {
    "hostname": "keys.example.com",
    "contact-fingerprint": f"0x{CONTACT.lower()}",
    "admin-keys": f"{ADMIN_1.lower()}, 0x{ADMIN_2}\n{ADMIN_1}",
    "external-peers": (
        "keyserver.example.net,11371,11370\n10.9.9.9,8080,8081\n2001:db8::5,11371,11370"
    ),
    "log-level": "debug",
    "log-request-details": True,
    "max-key-length": 2097152,
    "max-packet-length": 16384,
    "allowed-recon-cidrs": "192.0.2.0/24, 2001:db8:1::/48",
}


def test_full_config_key_by_key():
    document = as_hockeypuck_reads_it(make_state(FULL_OPTIONS))

    templates = "/snap/hockeypuck/current/usr/share/hockeypuck/templates"
    assert document == {
        "hockeypuck": {
            "loglevel": "DEBUG",
            "nodename": "hockeypuck-0",
            "hostname": "keys.example.com",
            "contact": f"0x{CONTACT}",
            "adminKeys": [ADMIN_1, ADMIN_2],
            "indexTemplate": f"{templates}/index.html.tmpl",
            "vindexTemplate": f"{templates}/index.html.tmpl",
            "statsTemplate": f"{templates}/stats.html.tmpl",
            "webroot": "/snap/hockeypuck/current/usr/share/hockeypuck/www",
            "hkp": {"bind": ":11371", "logRequestDetails": True},
            "metrics": {"metricsAddr": ":9626", "metricsPath": "/metrics"},
            "openpgp": {
                "maxKeyLength": 2097152,
                "maxPacketLength": 16384,
                "blacklist": [],
                "db": {
                    "driver": "postgres-jsonb",
                    "dsn": (
                        "database='hockeypuck' host='10.1.2.3' port='5432' user='relation-7' "
                        "password='s3cret' sslmode='disable'"
                    ),
                },
            },
            "conflux": {
                "recon": {
                    "httpAddr": ":11371",
                    "reconAddr": ":11370",
                    "allowCIDRs": ["192.0.2.0/24", "2001:db8:1::/48"],
                    "gossipIntervalSecs": 60,
                    "seenCacheSize": 0,
                    "leveldb": {"path": "/var/snap/hockeypuck/common/ptree"},
                    "partner": {
                        "keyserver.example.net:11370": {
                            "httpAddr": "keyserver.example.net:11371",
                            "reconAddr": "keyserver.example.net:11370",
                        },
                        "10.9.9.9:8081": {
                            "httpAddr": "10.9.9.9:8080",
                            "reconAddr": "10.9.9.9:8081",
                        },
                        "[2001:db8::5]:11370": {
                            "httpAddr": "[2001:db8::5]:11371",
                            "reconAddr": "[2001:db8::5]:11370",
                        },
                    },
                },
            },
        }
    }


def test_minimal_config_key_by_key():
    hockeypuck = as_hockeypuck_reads_it(make_state(tls=True))["hockeypuck"]

    assert set(hockeypuck) == {
        "loglevel",
        "nodename",
        "adminKeys",
        "indexTemplate",
        "vindexTemplate",
        "statsTemplate",
        "webroot",
        "hkp",
        "metrics",
        "openpgp",
        "conflux",
    }
    assert hockeypuck["loglevel"] == "INFO"
    assert hockeypuck["adminKeys"] == []
    assert hockeypuck["hkp"] == {"bind": ":11371", "logRequestDetails": False}
    assert hockeypuck["openpgp"]["maxKeyLength"] == 1048576
    assert hockeypuck["openpgp"]["maxPacketLength"] == 8192
    assert hockeypuck["openpgp"]["db"]["dsn"].endswith(" sslmode='require'")
    assert hockeypuck["conflux"]["recon"] == {
        "httpAddr": ":11371",
        "reconAddr": ":11370",
        "allowCIDRs": [],
        "gossipIntervalSecs": 60,
        "seenCacheSize": 0,
        "leveldb": {"path": "/var/snap/hockeypuck/common/ptree"},
    }


def with_peers() -> CharmState:
    state = make_state({"external-peers": "10.0.0.12,11371,11370\nkeys.example.org,11371,11370"})
    peers = (
        PeerUnit(nodename="hockeypuck-1", address="10.0.0.11", version="2.3.3"),
        PeerUnit(nodename="hockeypuck-2", address="fd00::12", version="2.3.3"),
    )
    return dataclasses.replace(
        state, unit_address="10.0.0.12", peer_units=peers, proxy_hostname="keys.example.com"
    )


def test_peer_units_are_partners_not_allowed_networks():
    hockeypuck = as_hockeypuck_reads_it(with_peers())["hockeypuck"]

    assert hockeypuck["hostname"] == "keys.example.com"
    recon = hockeypuck["conflux"]["recon"]
    assert recon["allowCIDRs"] == []
    # This unit's own address, listed as an external peer too, is not its own partner.
    assert recon["partner"] == {
        "hockeypuck-1": {"httpAddr": "10.0.0.11:11371", "reconAddr": "10.0.0.11:11370"},
        "hockeypuck-2": {"httpAddr": "[fd00::12]:11371", "reconAddr": "[fd00::12]:11370"},
        "keys.example.org:11370": {
            "httpAddr": "keys.example.org:11371",
            "reconAddr": "keys.example.org:11370",
        },
    }


STATES = {
    "minimal": make_state(),
    "tls": make_state(tls=True),
    "full": make_state(FULL_OPTIONS),
    "nasty password": make_state(password='q"uo\\te\' {{x}} {{"{{"}} ü\t\n'),
    "warn": make_state({"log-level": "warn"}),
    "peers": with_peers(),
}


@pytest.mark.parametrize("state", STATES.values(), ids=list(STATES))
def test_every_written_key_is_a_hockeypuck_2_3_key_of_the_right_type(state: CharmState):
    assert hockeypuck_schema.violations(as_hockeypuck_reads_it(state)) == []


@pytest.mark.parametrize("level", ["trace", "debug", "info", "warning", "warn", "error", "fatal"])
def test_log_levels_are_strings_logrus_knows(level: str):
    hockeypuck = as_hockeypuck_reads_it(make_state({"log-level": level}))["hockeypuck"]

    # Hockeypuck dies on a non-string loglevel and only warns on an unknown string: pin both.
    assert isinstance(hockeypuck["loglevel"], str)
    assert hockeypuck["loglevel"].lower() in (
        "panic",
        "fatal",
        "error",
        "warn",
        "warning",
        "info",
        "debug",
        "trace",
    )


def test_paths_the_confined_daemon_reads_are_absolute_and_inside_the_snap():
    hockeypuck = as_hockeypuck_reads_it(make_state())["hockeypuck"]

    paths = [
        hockeypuck["indexTemplate"],
        hockeypuck["vindexTemplate"],
        hockeypuck["statsTemplate"],
        hockeypuck["webroot"],
        hockeypuck["conflux"]["recon"]["leveldb"]["path"],
    ]
    for path in paths:
        assert Path(path).is_absolute(), path
        assert path.startswith(("/snap/hockeypuck/current/", "/var/snap/hockeypuck/common/"))
    # The prefix tree must survive refreshes: $SNAP_COMMON, not $SNAP_DATA.
    assert hockeypuck["conflux"]["recon"]["leveldb"]["path"].startswith(
        "/var/snap/hockeypuck/common/"
    )


def test_compiled_template_cache_renders_the_same(tmp_path: Path):
    state = make_state(FULL_OPTIONS)
    cache = tmp_path / "template-cache"

    first = render(state, TEMPLATES, cache)
    second = render(state, TEMPLATES, cache)

    assert any(cache.iterdir())
    assert first == second == render(state, TEMPLATES)


def test_advertised_http_port_is_the_hkp_port():
    hockeypuck = as_hockeypuck_reads_it(make_state())["hockeypuck"]

    assert hockeypuck["conflux"]["recon"]["httpAddr"] == hockeypuck["hkp"]["bind"]


# The schema check, pinned to what the real daemon did with the recorded files.

CASES = DATA / "config-cases"
# Files the real daemon started with, all of whose keys it used.
ACCEPTED_CLEAN = [
    "00-baseline",
    "02c-case-variant-adminkeys",
    "03c-invalid-loglevel-string",
    "03d-loglevel-debug",
    "04c-dsn-password-braces-escaped-quoted",
    "04d-dsn-password-braces-pair-escaped",
    "04e-dsn-password-braces-escaped-rawstring",
    "05c-dsn-quote-backslash-toml-and-libpq-escaped",
    "05d-dsn-quote-backslash-toml-literal-string",
    "05e-dsn-password-with-space-quoted",
    "07a-adminkeys-0x-lowercase",
    "07b-adminkeys-0X-uppercase-prefix",
    "07c-adminkeys-long-keyid-only",
    "08a-blacklist-lowercase",
    "08b-blacklist-0x-prefix",
    "09-partner-unresolvable",
    "10-reconaddr-none",
    "10b-reconaddr-none-with-partner",
    "11-empty-config",
    "12-metrics-port-in-use",
    "13-recon-port-in-use",
    "14-only-dsn",
]
# Files where the real daemon silently ignored keys, or died on a type.
FLAGGED = {
    "01-unknown-key": [
        "[hockeypuck]: unknown key 'bogusTopLevelKey' (Hockeypuck ignores it)",
        "unknown section [hockeypuck.unknownsection]",
    ],
    "02-misspelled-hkp-bind": ["[hockeypuck.hkp]: unknown key 'bnid' (Hockeypuck ignores it)"],
    "02b-misspelled-adminkeys": ["[hockeypuck]: unknown key 'admin_keys' (Hockeypuck ignores it)"],
    "03-wrong-type-loglevel-int": [
        "[hockeypuck]: 'loglevel' has TOML type integer, Hockeypuck's is string"
    ],
    "03b-wrong-type-gossip-string": [
        "[hockeypuck.conflux.recon]: 'gossipIntervalSecs' has TOML type string, "
        "Hockeypuck's is integer"
    ],
}


def _recorded(path: Path) -> dict[str, Any]:
    return tomllib.loads(go_template.render(path.read_text()))


@pytest.mark.parametrize("case", ACCEPTED_CLEAN)
def test_schema_accepts_every_recorded_file_hockeypuck_used(case: str):
    assert hockeypuck_schema.violations(_recorded(CASES / f"{case}.conf")) == []


@pytest.mark.parametrize("path", sorted((DATA / "configs").glob("*.conf")), ids=lambda p: p.stem)
def test_schema_accepts_the_recorded_multi_node_configs(path: Path):
    assert hockeypuck_schema.violations(_recorded(path)) == []


@pytest.mark.parametrize(("case", "problems"), FLAGGED.items(), ids=list(FLAGGED))
def test_schema_flags_what_hockeypuck_ignored_or_died_on(case: str, problems: list[str]):
    assert hockeypuck_schema.violations(_recorded(CASES / f"{case}.conf")) == problems


def test_schema_flags_keys_that_must_match_peers_and_case_duplicates():
    document = {
        "hockeypuck": {
            "loglevel": "INFO",
            "LogLevel": "DEBUG",
            "conflux": {"recon": {"threshMult": 10, "allowCIDRs": ["10.0.0.0/8", 5]}},
            "hkp": {"logRequestDetails": "false"},
            "openpgp": {"maxKeyLength": True},
        },
        "stray": 1,
    }

    assert hockeypuck_schema.violations(document) == [
        "[hockeypuck]: 'LogLevel' and 'loglevel' are the same key",
        "[hockeypuck.conflux.recon]: 'threshMult' must match every peer: never write it",
        "[hockeypuck.conflux.recon]: 'allowCIDRs' has TOML type array, "
        "Hockeypuck's is array of strings",
        "[hockeypuck.hkp]: 'logRequestDetails' has TOML type string, Hockeypuck's is boolean",
        "[hockeypuck.openpgp]: 'maxKeyLength' has TOML type boolean, Hockeypuck's is integer",
        "the top level: unknown key 'stray' (Hockeypuck ignores it)",
    ]


def test_every_recorded_case_file_is_classified():
    # A new recording must be sorted into one of the lists above (or the DSN tests).
    dsn_cases = {path.stem for path in CASES.glob("0[4-6]*.conf")}
    known = set(ACCEPTED_CLEAN) | set(FLAGGED) | dsn_cases
    assert {path.stem for path in CASES.glob("*.conf")} <= known
