"""The HKP client against responses replayed from the recorded Hockeypuck 2.3.3 transcripts.

The transcripts (tests/data/hockeypuck/http/, copied from the project's reference recordings)
hold each response's status line, headers and body exactly as the real server sent them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

import hkp_client
import snap_layout
from hkp_client import (
    AddResult,
    BadRequestError,
    HkpClient,
    HkpError,
    KeyNotFoundError,
    ServerError,
    ServiceNotReadyError,
    SignatureRejectedError,
)

HTTP = Path(__file__).parents[1] / "data" / "hockeypuck" / "http"
ALICE = "68C5878085CD227BB9697F15F7BEC0A960422C11"


@dataclass
class Recorded:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def recorded(name: str) -> Recorded:
    """The response part of one transcript file."""
    text = (HTTP / name).read_text()
    response = text.split("--- response ---\n", 1)[1]
    head, _, rest = response.partition("\n\n")
    lines = head.splitlines()
    status = int(lines[0].split()[1])
    headers = []
    for line in lines[1:]:
        name_, _, value = line.partition(": ")
        if name_ not in ("Date", "Content-Length", "Transfer-Encoding"):
            headers.append((name_, value))
    length = next(int(line.split(": ")[1]) for line in lines if line.startswith("Content-Length"))
    return Recorded(status, headers, rest.encode()[:length])


@dataclass
class Replay:
    """An HTTP server answering the next request with a queued transcript response."""

    answers: list[Recorded | str] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    port: int = 0


@pytest.fixture
def replay() -> Iterator[Replay]:
    state = Replay()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            state.requests.append((method, self.path, form))
            answer = state.answers.pop(0)
            if answer == "hang up":
                self.close_connection = True
                self.connection.close()
                return
            if answer == "sleep":
                time.sleep(1)
                return
            assert isinstance(answer, Recorded)
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def client(replay: Replay, *answers: Recorded | str, timeout: float = 5.0) -> HkpClient:
    replay.answers.extend(answers)
    return HkpClient(port=replay.port, timeout=timeout)


def closed_port() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return port


def test_defaults_to_the_local_hkp_port():
    default = HkpClient()
    assert (default.host, default.port) == ("127.0.0.1", snap_layout.HKP_PORT)


def test_health(replay: Replay):
    hkp = client(replay, recorded("01-health-get.txt"))
    hkp.health()
    assert replay.requests == [("GET", "/pks/health", {})]


def test_health_not_ok_is_not_ready(replay: Replay):
    hkp = client(replay, Recorded(500, [], b"Internal Server Error\n"))
    with pytest.raises(ServiceNotReadyError, match="not healthy"):
        hkp.health()
    hkp = client(replay, Recorded(200, [], b"starting"))
    assert not hkp.is_ready()


def test_connection_refused_is_not_ready():
    hkp = HkpClient(port=closed_port())
    with pytest.raises(ServiceNotReadyError, match="not answering on 127.0.0.1"):
        hkp.health()
    assert not hkp.is_ready()
    with pytest.raises(ServiceNotReadyError):
        hkp.index("alice")


def test_hang_up_and_timeout_are_not_ready(replay: Replay):
    with pytest.raises(ServiceNotReadyError):
        client(replay, "hang up").get_key("0x" + ALICE)
    with pytest.raises(ServiceNotReadyError, match="did not answer GET /pks/lookup within 0.2s"):
        client(replay, "sleep", timeout=0.2).get_key("0x" + ALICE)


def test_wait_ready_polls_until_healthy(replay: Replay):
    hkp = client(
        replay, Recorded(503, [], b""), Recorded(503, [], b""), recorded("01-health-get.txt")
    )
    sleeps: list[float] = []
    hkp.wait_ready(timeout=10, interval=0.5, sleep=sleeps.append, clock=lambda: 0.0)
    assert sleeps == [0.5, 0.5]


def test_wait_ready_gives_up():
    hkp = HkpClient(port=closed_port())
    ticks = iter([0.0, 3.0, 6.0])
    with pytest.raises(ServiceNotReadyError):
        hkp.wait_ready(timeout=5, sleep=lambda _: None, clock=lambda: next(ticks))


def test_add_key_new_again_and_blacklisted(replay: Replay):
    hkp = client(
        replay,
        recorded("10-add-new-key.txt"),
        recorded("11-add-same-key-again.txt"),
        recorded("50-add-blacklisted-key.txt"),
    )
    new = hkp.add_key("-----BEGIN PGP PUBLIC KEY BLOCK-----\n...")
    assert new == AddResult(("(4)eddsa_Curve25519/" + ALICE.lower(),), (), ())
    assert not new.refused
    again = hkp.add_key("...")
    assert again.ignored == ("(4)eddsa_Curve25519/" + ALICE.lower(),)
    blocked = hkp.add_key("...")
    assert blocked == AddResult((), (), ())
    assert blocked.refused
    method, path, form = replay.requests[0]
    assert (method, path) == ("POST", "/pks/add")
    assert form == {"keytext": ["-----BEGIN PGP PUBLIC KEY BLOCK-----\n..."]}


def test_add_garbage_is_a_bad_request(replay: Replay):
    with pytest.raises(BadRequestError, match="400"):
        client(replay, recorded("12-add-garbage.txt")).add_key("this is not an armored key")


def test_add_unexpected_body(replay: Replay):
    with pytest.raises(HkpError, match="not with the expected JSON"):
        client(replay, Recorded(200, [], b"<html>")).add_key("x")


def test_index_by_email(replay: Replay):
    entries = client(replay, recorded("24-index-mr-by-email.txt")).index("alice@example.test")
    assert replay.requests[0][1] == ("/pks/lookup?op=index&options=mr&search=alice%40example.test")
    assert len(entries) == 1
    alice = entries[0]
    assert alice.fingerprint == ALICE
    assert alice.key_id == "F7BEC0A960422C11"
    assert (alice.algorithm, alice.bits) == (22, 263)
    assert alice.created == datetime(2026, 11, 26, 2, 44, 24, tzinfo=UTC)
    assert alice.expires is None
    assert not alice.revoked
    assert [uid.text for uid in alice.user_ids] == ["Alice Example <alice@example.test>"]


def test_index_after_merge_has_both_user_ids(replay: Replay):
    entries = client(replay, recorded("41-index-after-merge.txt")).index("0x" + ALICE)
    assert [uid.text for uid in entries[0].user_ids] == [
        "Alice Example (work) <alice.work@example.test>",
        "Alice Example <alice@example.test>",
    ]


def test_index_not_found_is_empty(replay: Replay):
    assert client(replay, recorded("28-index-mr-not-found.txt")).index("nobody") == []


def test_lookup_bad_request(replay: Replay):
    with pytest.raises(BadRequestError):
        client(replay, recorded("72-lookup-missing-search.txt")).index("")


def test_search_with_metacharacters_arrives_verbatim(replay: Replay):
    keyword = "'; DROP TABLE keys;-- &op=get #x %41 {{ }} <a@b>"
    client(replay, recorded("28-index-mr-not-found.txt")).index(keyword)
    path = replay.requests[0][1]
    assert parse_qs(path.split("?", 1)[1]) == {
        "op": ["index"],
        "options": ["mr"],
        "search": [keyword],
    }


def test_get_key(replay: Replay):
    armored = (
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEaw==\n-----END PGP PUBLIC KEY BLOCK-----\n"
    )
    hkp = client(
        replay, Recorded(200, [("Content-Type", "application/pgp-keys")], armored.encode())
    )
    assert hkp.get_key("0x" + ALICE) == armored
    assert replay.requests[0][1] == f"/pks/lookup?op=get&options=mr&search=0x{ALICE}"


def test_get_missing_key(replay: Replay):
    with pytest.raises(KeyNotFoundError, match="404"):
        client(replay, recorded("22-get-not-found.txt")).get_key("0x" + "01" * 20)


def test_delete_success_sends_keytext_and_keysig(replay: Replay):
    keytext = hkp_client.delete_keytext("-----BEGIN PGP PUBLIC KEY BLOCK-----\n...")
    assert keytext == "/pks/delete\n-----BEGIN PGP PUBLIC KEY BLOCK-----\n..."
    client(replay, recorded("34-delete-success.txt")).delete_key(keytext, "SIG")
    method, path, form = replay.requests[0]
    assert (method, path) == ("POST", "/pks/delete")
    assert form == {"keytext": [keytext], "keysig": ["SIG"]}


def test_delete_bad_signature(replay: Replay):
    with pytest.raises(SignatureRejectedError, match="422"):
        client(replay, recorded("30-delete-bad-signature.txt")).delete_key("/pks/delete\n", "x")


def test_delete_absent_key(replay: Replay):
    with pytest.raises(KeyNotFoundError):
        client(replay, recorded("36-delete-again-key-absent.txt")).delete_key("k", "s")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors(replay: Replay, status: int):
    with pytest.raises(ServerError, match=f"failed \\({status}\\); is its database reachable"):
        client(replay, Recorded(status, [], b"Internal Server Error\n")).index("alice")


def test_other_statuses(replay: Replay):
    with pytest.raises(HkpError, match="unexpected HTTP status 418"):
        client(replay, Recorded(418, [], b"")).get_key("x")


def test_parse_index_formats():
    text = (
        "info:1:3\n"
        "uid:orphan before any pub:1::\n"
        f"pub:{ALICE}:22:263:1795661064:1800000000:r\n"
        "uid:Colon%3A Name %25 <c@example.test>:1795661064::\n"
        "uid:no times\n"
        f"pub:{'AB' * 32}:27:256:::\n"
        "pub:4380D6BCA8A7B373:1:3072\n"
        "junk line\n"
    )
    first, v6, short = hkp_client.parse_index(text)
    assert first.revoked
    assert first.expires == datetime.fromtimestamp(1800000000, tz=UTC)
    assert [uid.text for uid in first.user_ids] == ["Colon: Name % <c@example.test>", "no times"]
    assert first.user_ids[1].created is None
    assert v6.key_id == "AB" * 8
    assert v6.created is None
    assert (short.fingerprint, short.key_id, short.created) == ("", "4380D6BCA8A7B373", None)
