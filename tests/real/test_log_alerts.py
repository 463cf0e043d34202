"""The Loki alert rules match the lines the real Hockeypuck writes when things go wrong.

The daemon is made to fail recon (a partner where nothing listens) and to fail lookups on the
database (the role loses its LOGIN right), then every rule's line filters must match a line it
wrote, and none may match a line from before the faults.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg import sql

from tests.logql_filters import line_filters, passes
from tests.real.deployment import DB_USER, Deployment, wait_for
from tests.real.keys import BOB
from tests.real.netns import Lan

RULES = Path(__file__).resolve().parents[2] / "src/loki_alert_rules"


def loki_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in sorted(RULES.glob("*.rules"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


@pytest.fixture(scope="module")
def lines(make_deployment: Callable[..., Deployment], lan: Lan) -> dict[str, list[str]]:
    """The lines a unit wrote while healthy, then while recon and the database failed."""
    nobody = lan.add_host("logs-nobody")  # a partner address where nothing listens
    deployment = make_deployment("logs")
    deployment.config["recon-gossip-interval"] = 5
    deployment.deploy(1)
    unit = deployment.units[0]
    unit.client().wait_ready(timeout=30)
    unit.get(f"/pks/lookup?op=get&search=0x{BOB}")  # a healthy 404
    healthy = unit.log_text().splitlines()

    def since() -> str:
        return "\n".join(unit.log_text().splitlines()[len(healthy) :])

    deployment.configure(external_peers=f"{nobody.ipv4},11371,11370")
    unit.client().wait_ready(timeout=30)
    wait_for(lambda: "recon with recon=" in since(), 30, "a failed recon")
    admin = deployment.postgres.admin
    role = sql.Identifier(DB_USER)
    admin.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(role))
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [DB_USER]
    )
    try:
        status, _ = unit.get(f"/pks/lookup?op=get&search=0x{BOB}")
        assert status == 500
        wait_for(lambda: "HTTP 500: " in since(), 10, "the 500's error line")
    finally:
        admin.execute(sql.SQL("ALTER ROLE {} LOGIN").format(role))
    return {"healthy": healthy, "faulty": unit.log_text().splitlines()[len(healthy) :]}


@pytest.fixture(scope="module")
def faulty(lines: dict[str, list[str]]) -> list[str]:
    return lines["faulty"]


@pytest.mark.parametrize("rule", loki_rules(), ids=lambda rule: rule["alert"])
def test_every_rule_matches_a_line_of_the_real_daemon(rule: dict[str, Any], faulty: list[str]):
    assert line_filters(rule["expr"]), "a log alert without a line filter matches every line"
    assert any(passes(line, rule["expr"]) for line in faulty), rule["expr"]


def test_no_rule_matches_a_healthy_daemon(lines: dict[str, list[str]]):
    for rule in loki_rules():
        assert not [line for line in lines["healthy"] if passes(line, rule["expr"])]


def test_the_rules_match_different_lines(faulty: list[str]):
    matched = [
        {index for index, line in enumerate(faulty) if passes(line, rule["expr"])}
        for rule in loki_rules()
    ]
    for first, second in itertools.combinations(matched, 2):
        assert not first & second
