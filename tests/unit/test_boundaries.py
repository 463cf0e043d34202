"""The parsing boundary, and the inputs that are plain functions away from a hook.

Numbers, addresses and networks as Go reads them; the invariant checked before the config file
is written; HKP answers and database rows on their way into action results.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import tomllib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import config_check
import hkp_client
import key_actions
import parsing
from blocklist import BlockedKey
from hockeypuck_config import TEMPLATES_DIR, render
from relations.database import DatabaseCredentials
from state import CharmConfig, CharmState
from tests.functional import go_template, lib_pq
from tests.unit.conftest import REPO_ROOT
from tests.unit.hostile import check_result_keys, hostile_text

# --- numbers, addresses, networks, messages ----------------------------------------------------


@pytest.mark.parametrize("text", ["²", "5432²", "٥٤٣٢", "", " 80", "80 ", "+80", "0", "65536"])
def test_ports_are_ascii_digits_in_range(text: str):
    assert parsing.port(text) is None


@pytest.mark.parametrize(
    "text",
    ["fe80::1%eth0", "fe80::1%25eth0", "010.0.0.1", "1.2.3", "\uff11.2.3.4", "::1%1", ""],
)
def test_ip_addresses_are_what_go_parses(text: str):
    assert parsing.go_ip(text) is None


@pytest.mark.parametrize(
    ("text", "network"),
    [
        ("10.0.0.1/24", "10.0.0.0/24"),
        ("10.0.0.1", "10.0.0.1/32"),
        ("2001:DB8::1/32", "2001:db8::/32"),
        ("::ffff:10.0.0.1/128", "::ffff:a00:1/128"),
    ],
)
def test_networks_are_normalised_as_go_returns_them(text: str, network: str):
    assert parsing.go_cidr(text) == network


@pytest.mark.parametrize(
    "text", ["10.0.0.0/255.255.255.0", "10.0.0.0/²4", "fe80::/64%eth0", "fe80::1%eth0/64", "/8"]
)
def test_networks_go_refuses_are_refused(text: str):
    assert parsing.go_cidr(text) is None


@settings(max_examples=300)
@given(text=hostile_text())
def test_what_the_boundary_accepts_is_ascii_and_canonical(text: str):
    port = parsing.port(text)
    if port is not None:
        assert text.isascii() and text.isdigit() and 1 <= port <= 65535
    address = parsing.go_ip(text)
    if address is not None:
        assert address.isascii() and "%" not in address
        assert str(ipaddress.ip_address(address)) == address
    network = parsing.go_cidr(text)
    if network is not None:
        assert network.isascii() and "%" not in network
        assert parsing.go_cidr(network) == network
    line = parsing.one_line(text, 20)
    assert len(line) <= 20
    assert not any(ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in line)
    assert len(line.splitlines()) <= 1
    assert len(parsing.shown(text)) <= 10 * parsing.MAX_SHOWN + 2  # repr escapes included


def test_one_line_keeps_short_text_and_marks_a_cut():
    assert parsing.one_line("a\n  b\tc") == "a b c"
    assert parsing.one_line("x" * 300, 10) == "xxxxxxxxx…"


# --- the invariant before the config file is written -------------------------------------------

DSN = "database='h' host='10.0.0.5' port='5432' user='u' password='p' sslmode='disable'"
GOOD = f'[hockeypuck]\nloglevel = "INFO"\n[hockeypuck.openpgp.db]\ndsn = "{DSN}"\n'


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (GOOD + 'x = "{{ .Env }}"\n', "Go template action"),
        (GOOD + "[hockeypuck.openpgp.db]\n", "not valid TOML"),
        (GOOD + "[p.a]\nx = 1\n[p.a]\ny = 2\n", "not valid TOML"),
        (GOOD + f"big = {2**63}\n", "does not fit a Go int64"),
        ('[hockeypuck]\nloglevel = "INFO"\n', "no [hockeypuck.openpgp.db] dsn"),
        (GOOD.replace("port='5432'", "port='5432²'"), "port is not a port number"),
        (GOOD.replace("password='p' ", ""), "has the keys"),
        (GOOD.replace("password='p'", "password='p"), "not a lib/pq connection string"),
        (GOOD.replace("'disable'", "'maybe'"), "sslmode"),
    ],
)
def test_the_check_refuses_what_hockeypuck_could_not_read(text: str, why: str):
    problem = config_check.problem(text)

    assert problem is not None and why in problem


def test_the_check_accepts_an_escaped_template_open():
    assert config_check.problem(GOOD + 'x = "a{{"{{"}}b"\n') is None


def _state(password: str, username: str, hostname: str) -> CharmState:
    config = CharmConfig.from_config({"snap-channel": "latest/edge", "hostname": hostname})
    database = DatabaseCredentials("10.0.0.5", 5432, "hockeypuck", username, password, False)
    return CharmState(config=config, database=database, nodename="hockeypuck-0")


@settings(max_examples=300)
@given(password=st.text(min_size=1, max_size=60), username=st.text(min_size=1, max_size=20))
def test_any_credentials_render_a_file_that_passes_the_check_and_every_real_parser(
    password: str, username: str
):
    text = render(_state(password, username, ""), REPO_ROOT / TEMPLATES_DIR)

    assert config_check.problem(text) is None
    document = tomllib.loads(go_template.render(text))
    dsn = lib_pq.parse(document["hockeypuck"]["openpgp"]["db"]["dsn"])
    assert (dsn["user"], dsn["password"]) == (username, password)
    assert config_check.parse_dsn(document["hockeypuck"]["openpgp"]["db"]["dsn"]) == dsn


TOML_PIECES = st.sampled_from(
    [
        "[hockeypuck]\n",
        "[hockeypuck.openpgp.db]\n",
        f'dsn = "{DSN}"\n',
        'loglevel = "INFO"\n',
        "{{",
        '{{"{{"}}',
        "}}",
        '"',
        "\\",
        "x = 1\n",
        f"x = {2**64}\n",
        "[a]\n",
        "\n",
        "'",
        "= ",
    ]
)


@settings(max_examples=300)
@given(text=st.lists(TOML_PIECES, max_size=12).map("".join))
def test_what_the_check_accepts_the_emulated_layers_read(text: str):
    if config_check.problem(text) is None:
        document = tomllib.loads(go_template.render(text))
        lib_pq.parse(document["hockeypuck"]["openpgp"]["db"]["dsn"])


# --- HKP answers into lookup-key's results -----------------------------------------------------


class IndexAnswer:
    """A keyserver whose index answer is the given text (Hockeypuck's or anyone's)."""

    def __init__(self, text: str):
        self.text = text

    def health(self) -> None:
        return None

    def index(self, search: str) -> list[hkp_client.IndexEntry]:
        return hkp_client.parse_index(self.text)

    def get_key(self, search: str) -> str:
        return "ARMORED"


INDEX_LINE = st.one_of(
    st.tuples(
        st.sampled_from(["pub", "uid", "info", "PUB"]),
        hostile_text(12),
        st.sampled_from(["1", "²", "9" * 40, "-1", "", "22"]),
        st.sampled_from(["256", "٣", ""]),
        st.sampled_from(["1700000000", "9" * 25, "²", ""]),
        hostile_text(6),
        hostile_text(4),
    ).map(":".join),
    hostile_text(),
)


@settings(max_examples=300)
@given(lines=st.lists(INDEX_LINE, max_size=6), keyword=st.sampled_from(["alice", "0x" + "A" * 40]))
def test_any_index_answer_gives_valid_result_keys(lines: list[str], keyword: str):
    keyserver = IndexAnswer("\n".join(lines))

    results = key_actions.lookup_key(keyword, keyserver=keyserver)  # type: ignore[arg-type]

    check_result_keys(results)


def test_an_index_entry_without_a_usable_key_gets_a_numbered_result_key():
    keyserver = IndexAnswer("pub:not hex:1:2:3::\npub::1:2:3::\npub:ﬀﬀ:1:2:3::")

    results = key_actions.lookup_key("alice", keyserver=keyserver)  # type: ignore[arg-type]

    assert list(results["keys"]) == ["entry-1", "entry-2", "entry-3"]


# --- database rows into list-blocked-keys' results ---------------------------------------------


class Rows:
    """A block-list table holding whatever rows were written into it, by anyone."""

    def __init__(self, rows: list[BlockedKey]):
        self.rows = rows

    def list(self) -> list[BlockedKey]:
        return self.rows


@settings(max_examples=300)
@given(
    rows=st.lists(
        st.builds(
            BlockedKey,
            fingerprint=st.one_of(hostile_text(), st.just("ab" * 20), st.just("0xAB" + "c" * 38)),
            comment=hostile_text(),
            blocked_at=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
        ),
        max_size=5,
    )
)
def test_any_block_list_rows_give_valid_result_keys(rows: list[BlockedKey]):
    results = key_actions.list_blocked_keys(store=Rows(rows))  # type: ignore[arg-type]

    check_result_keys(results)
    assert results["count"] == str(len(rows))


def test_a_row_that_is_not_a_fingerprint_is_listed_under_a_numbered_key():
    rows = [BlockedKey("0xABC DEF", "spam", datetime(2026, 1, 2, tzinfo=UTC))]

    results = key_actions.list_blocked_keys(store=Rows(rows))  # type: ignore[arg-type]

    assert results["keys"] == {
        "entry-1": {
            "fingerprint": "0xABC DEF",
            "comment": "spam",
            "blocked-at": "2026-01-02T00:00:00Z",
        }
    }


# --- the serving check's answer ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 404 Not Found\r\n\r\n", None),
        (b"HTTP/1.1 200 OK\r\n\r\n", None),
        (b"HTTP/1.1 500 Internal Server Error\r\n\r\n", hkp_client.ServerError),
        (b"HTTP/1.1 403 Forbidden\r\n\r\n", hkp_client.HkpError),
        (b"HTTP/1.1 5\xb200 x\r\n\r\n", hkp_client.ServiceNotReadyError),
        (b"SSH-2.0-OpenSSH\r\n", hkp_client.ServiceNotReadyError),
        (b"", hkp_client.ServiceNotReadyError),
    ],
)
def test_the_serving_check_reads_only_a_valid_status_line(
    answer: bytes, error: type[Exception] | None
):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(4096)
            connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = hkp_client.HkpClient(port=server.getsockname()[1], timeout=5)
    try:
        if error is None:
            client.check_database()
        else:
            with pytest.raises(error):
                client.check_database()
    finally:
        thread.join(5)
        server.close()
