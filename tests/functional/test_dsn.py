"""The database password survives all three layers and authenticates against real PostgreSQL.

Hockeypuck reads its DSN through Go text/template, then TOML, then lib/pq's key=value parser
(config-observations.md, cases 04 and 05). Each test renders the real config file, applies the
emulated template layer, tomllib and the emulated lib/pq parser, and then lets a real
PostgreSQL server (SCRAM passwords, loopback) judge the credentials. Negative controls show the
chain can fail: skipping a layer's escaping authenticates with the wrong password.
"""

from __future__ import annotations

import itertools
import random
import re
import tomllib
from typing import Any

import psycopg
import psycopg.conninfo
import pytest

from hockeypuck_config import render, toml_value
from relations.database import DatabaseCredentials
from state import CharmConfig, CharmState
from tests.functional import go_template, lib_pq
from tests.functional.conftest import DATA, REPO_ROOT
from tests.functional.pg_server import PostgresServer, free_port

pytestmark = pytest.mark.functional

TEMPLATES = REPO_ROOT / "templates"
DATABASE = "hockeypuck"

PASSWORDS = {
    "double quote": 'q"uote',
    "backslash": "back\\slash",
    "single quote": "it's",
    "spaces": " has  spaces ",
    "open braces": "open{{brace",
    "close braces": "close}}brace",
    "the escape itself": '{{"{{"}}',
    "braces pair": "both{{x}}",
    "go raw string": "open{{`{{`}}brace",
    "env field": "{{ .HOME }}",
    "unicode": "pässwörd-密码-🔑",
    "recorded 05 case": 'q"uo\\te',
    "trailing backslash": "ends with\\",
    "backslash quote": "\\'",
    "control characters": "tab\there\nnewline\rreturn",
    "toml-looking": '"""\nx = 1\n[hockeypuck]',
    "libpq-looking": "x' host='evil.example' password='y",
    "everything": 'q"uo\\te\' {{x}} }} {{"{{"}} ü\t=;#',
}


def _generated_passwords(count: int) -> dict[str, str]:
    """Deterministic random passwords over the characters that matter to some layer."""
    alphabet = "aZ09 \t\n\"'\\{}`=$#.;[]-_%@!üé密🔑\u3000\u00a0"
    generator = random.Random(20260101)
    return {
        f"generated {index}": "".join(
            generator.choice(alphabet) for _ in range(generator.randint(1, 24))
        )
        for index in range(count)
    }


ALL_PASSWORDS = {**PASSWORDS, **_generated_passwords(24)}


@pytest.fixture(scope="module")
def server(postgres: PostgresServer) -> PostgresServer:
    postgres.create_database(DATABASE)
    return postgres


def _state(server: PostgresServer, username: str, password: str, **db: Any) -> CharmState:
    credentials = DatabaseCredentials(
        host=db.get("host", server.host),
        port=db.get("port", server.port),
        database=db.get("database", DATABASE),
        username=username,
        password=password,
        tls=False,
    )
    config = CharmConfig.from_config({"snap-channel": "2.3/stable"})
    return CharmState(config=config, database=credentials, nodename="hockeypuck-0")


def dsn_as_hockeypuck_reads_it(config_file: str) -> str:
    """Layers one and two: the Go template, then TOML; the DSN string lib/pq gets."""
    document = tomllib.loads(go_template.render(config_file))
    return document["hockeypuck"]["openpgp"]["db"]["dsn"]


def connect_as_hockeypuck(dsn: str) -> psycopg.Connection:
    """Layer three, lib/pq's parsing, then a real connection with what it parsed."""
    return psycopg.connect(lib_pq.libpq_conninfo(lib_pq.parse(dsn)), connect_timeout=5)


def _who(connection: psycopg.Connection) -> tuple[Any, ...] | None:
    with connection:
        return connection.execute("SELECT current_user, current_database()").fetchone()


_ROLE_IDS = itertools.count(100)


@pytest.fixture
def role(server: PostgresServer) -> str:
    """A fresh role name per test (the postgresql charm names them relation-<id>)."""
    return f"relation-{next(_ROLE_IDS)}"


@pytest.mark.parametrize("password", ALL_PASSWORDS.values(), ids=list(ALL_PASSWORDS))
def test_password_survives_all_layers_and_authenticates(
    server: PostgresServer, role: str, password: str
):
    server.create_role(role, password)
    assert server.password_hash(role).startswith("SCRAM-SHA-256$")
    config_file = render(_state(server, role, password), TEMPLATES)

    dsn = dsn_as_hockeypuck_reads_it(config_file)

    assert lib_pq.parse(dsn)["password"] == password
    assert _who(connect_as_hockeypuck(dsn)) == (role, DATABASE)


@pytest.mark.parametrize("password", PASSWORDS.values(), ids=list(PASSWORDS))
def test_rendered_dsn_reads_the_same_in_libpq(server: PostgresServer, password: str):
    # lib/pq's parser is "based on" libpq's: the real libpq must read the same values
    # (lib/pq's `database` key is libpq's `dbname`).
    dsn = dsn_as_hockeypuck_reads_it(render(_state(server, "relation-1", password), TEMPLATES))

    libpq_view = psycopg.conninfo.conninfo_to_dict(re.sub(r"^database=", "dbname=", dsn))

    assert libpq_view == {
        "dbname": DATABASE,
        "host": server.host,
        "port": str(server.port),
        "user": "relation-1",
        "password": password,
        "sslmode": "disable",
    }


def test_wrong_password_is_refused(server: PostgresServer, role: str):
    # The server really checks: without this, every test above could pass vacuously.
    server.create_role(role, "right")
    dsn = dsn_as_hockeypuck_reads_it(render(_state(server, role, "wrong"), TEMPLATES))

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect_as_hockeypuck(dsn)


@pytest.mark.parametrize(
    "password", ['q"uo\\te', "back\\slash", "ends with\\"], ids=["05b", "backslash", "trailing"]
)
def test_negative_control_dsn_escaped_for_toml_only_fails(
    server: PostgresServer, role: str, password: str
):
    # Case 05b: the password is TOML-escaped but not libpq-escaped. lib/pq then reads `\t` as
    # `t`, and the server refuses the wrong password (or lib/pq the dangling backslash).
    server.create_role(role, password)
    config_file = render(_state(server, role, password), TEMPLATES)
    right_dsn = dsn_as_hockeypuck_reads_it(config_file)
    toml_only = (
        f"database={DATABASE} host={server.host} port={server.port} user={role} "
        f"password={password} sslmode=disable"
    )
    broken_file = config_file.replace(toml_value(right_dsn), toml_value(toml_only))
    assert broken_file != config_file

    dsn = dsn_as_hockeypuck_reads_it(broken_file)

    assert dsn == toml_only
    with pytest.raises((psycopg.OperationalError, lib_pq.DsnError)):
        connect_as_hockeypuck(dsn)


@pytest.mark.parametrize("password", ["open{{brace", "both{{x}}", '{{"{{"}}'])
def test_negative_control_skipping_the_template_layer_fails(server: PostgresServer, password: str):
    # Read without the template layer, the quotes of the escape `{{"{{"}}` end the TOML string
    # early: proof that the emulated layer does real work before TOML, as Hockeypuck's does.
    config_file = render(_state(server, "relation-1", password), TEMPLATES)

    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(config_file)


def test_negative_control_unescaped_braces_break_the_template(server: PostgresServer):
    # Case 04a: a config writer that forgot the template layer makes Hockeypuck exit.
    config_file = render(_state(server, "relation-1", "open{{brace"), TEMPLATES)
    unescaped = config_file.replace('{{"{{"}}', "{{")

    with pytest.raises(go_template.TemplateError, match='function "brace" not defined'):
        go_template.render(unescaped)


# The recorded cases, replayed against this server: same roles, same passwords.

CASES = DATA / "config-cases"
RECORDED_ROLES = {
    "hockeypuck": "hkp-test",
    "hkp_tmpl1": "open{{brace",
    "hkp_tmpl2": "both{{x}}",
    "hkp_quote": 'q"uo\\te',
    "hkp_space": "has space",
}
# What the real Hockeypuck 2.3.3 did (config-observations.md), as (stage, message fragment):
# the stage that failed first, or "connected". Messages are lib/pq's where the emulator
# reproduces them, libpq's (the server's) for connection errors.
RECORDED_OUTCOMES = {
    "00-baseline": ("connected", ""),
    "04a-dsn-password-with-open-braces-unescaped": ("template", 'function "brace" not defined'),
    "04b-dsn-password-with-braces-pair-unescaped": ("template", 'function "x" not defined'),
    "04c-dsn-password-braces-escaped-quoted": ("connected", ""),
    "04d-dsn-password-braces-pair-escaped": ("connected", ""),
    "04e-dsn-password-braces-escaped-rawstring": ("connected", ""),
    "04f-dsn-password-from-env-template": ("connected", ""),
    "04g-dsn-password-env-var-unset": ("dsn", 'missing "=" after "value>"'),
    "05a-dsn-quote-backslash-unescaped": ("toml", ""),
    "05b-dsn-quote-backslash-toml-escaped-only": (
        "connect",
        'password authentication failed for user "hkp_quote"',
    ),
    "05c-dsn-quote-backslash-toml-and-libpq-escaped": ("connected", ""),
    "05d-dsn-quote-backslash-toml-literal-string": ("connected", ""),
    "05e-dsn-password-with-space-quoted": ("connected", ""),
    "05f-dsn-password-with-space-unquoted": ("dsn", 'missing "=" after "space"'),
    "06a-db-port-refused": ("connect", "Connection refused"),
    "06b-db-wrong-password": ("connect", 'password authentication failed for user "hockeypuck"'),
    "06c-db-nonexistent-database": ("connect", 'database "no_such_db" does not exist'),
    # Not replayed: 06d needs a DNS lookup of a .invalid name (slow or hanging offline).
    "06g-db-sslmode-default": ("connect", "SSL"),
    "14-only-dsn": ("connected", ""),
}
# The environment Hockeypuck was started with for case 04f.
RECORDED_ENV = {"HKP_DB_PASSWORD": "open{{brace"}


@pytest.fixture
def recorded_server(server: PostgresServer) -> PostgresServer:
    # Per test: other modules may give the shared `hockeypuck` role another password.
    server.create_database("hkp_cfg")
    for name, password in RECORDED_ROLES.items():
        server.create_role(name, password)
    return server


def _replay(text: str) -> tuple[str, str]:
    """Run a recorded file through every layer: (stage reached, message)."""
    try:
        rendered = go_template.render(text, RECORDED_ENV)
    except go_template.TemplateError as error:
        return "template", str(error)
    try:
        dsn = tomllib.loads(rendered)["hockeypuck"]["openpgp"]["db"]["dsn"]
    except tomllib.TOMLDecodeError as error:
        return "toml", str(error)
    try:
        conninfo = lib_pq.libpq_conninfo(lib_pq.parse(dsn))
    except lib_pq.DsnError as error:
        return "dsn", str(error)
    try:
        with psycopg.connect(conninfo, connect_timeout=5) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as error:
        return "connect", str(error)
    return "connected", ""


@pytest.mark.parametrize(
    ("case", "outcome"), RECORDED_OUTCOMES.items(), ids=list(RECORDED_OUTCOMES)
)
def test_recorded_case_replays_as_hockeypuck_behaved(
    recorded_server: PostgresServer, case: str, outcome: tuple[str, str]
):
    text = (CASES / f"{case}.conf").read_text()
    text = text.replace("port=55433", f"port={recorded_server.port}")
    text = text.replace("port=55499", f"port={free_port()}")

    stage, message = _replay(text)

    assert (stage, outcome[1] in message) == (outcome[0], True), message


def test_recorded_cases_cover_every_dsn_file():
    dsn_cases = {path.stem for path in CASES.glob("0[4-6]*.conf")}
    assert dsn_cases - set(RECORDED_OUTCOMES) == {"06d-db-host-unresolvable"}
