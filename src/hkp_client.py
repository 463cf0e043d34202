"""A small HKP client for the Hockeypuck on this machine (stdlib only, no proxies).

Answers are mapped to precise errors, as the real 2.3 server gives them: 404 = not found,
422 = admin signature rejected, 400 = bad request, 5xx = server trouble (its database is
down, typically), and no answer at all = the service is not ready.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import snap_layout
from parsing import ascii_int

DEFAULT_HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 30.0
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DELETE_FIRST_LINE = "/pks/delete"
# A fingerprint no key has: looking it up costs the database one index probe.
PROBE_SEARCH = "0x" + "0" * 40
MAX_STATUS_LINE = 1024
_HEX = re.compile(r"[0-9A-Fa-f]+")
_MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can hold


class HkpError(Exception):
    """Hockeypuck did not do what was asked."""


class ServiceNotReadyError(HkpError):
    """Hockeypuck does not answer (not started, restarting, or not healthy)."""


class KeyNotFoundError(HkpError):
    """404: no such key (or nothing matched the search)."""


class SignatureRejectedError(HkpError):
    """422: the admin signature was not accepted."""


class BadRequestError(HkpError):
    """400: Hockeypuck could not use the request."""


class ServerError(HkpError):
    """5xx: Hockeypuck failed (its database may be unreachable)."""


@dataclass(frozen=True)
class UserId:
    """One user id of an index entry."""

    text: str
    created: datetime | None
    expires: datetime | None
    flags: str


@dataclass(frozen=True)
class IndexEntry:
    """One key of a machine-readable index answer (`pub:` line and its `uid:` lines)."""

    fingerprint: str
    key_id: str
    algorithm: int | None
    bits: int | None
    created: datetime | None
    expires: datetime | None
    flags: str
    user_ids: tuple[UserId, ...]

    @property
    def revoked(self) -> bool:
        """Whether the server flags the key as revoked."""
        return "r" in self.flags


@dataclass(frozen=True)
class AddResult:
    """What `/pks/add` did: key descriptions like `(4)eddsa_Curve25519/<fingerprint>`."""

    inserted: tuple[str, ...]
    updated: tuple[str, ...]
    ignored: tuple[str, ...]

    @property
    def refused(self) -> bool:
        """Nothing inserted, updated or ignored: what a blacklisted key gets."""
        return not (self.inserted or self.updated or self.ignored)


def delete_keytext(armored_key: str) -> str:
    """The `keytext` of a `/pks/delete` request: the command line, then the armored key."""
    return f"{DELETE_FIRST_LINE}\n{armored_key}"


def parse_index(text: str) -> list[IndexEntry]:
    """Parse the HKP machine-readable index (`info:`, `pub:`, `uid:` lines).

    Unknown lines are skipped; `uid:` lines before any `pub:` line are ignored. Fields that
    are not what HKP says (a key that is not hex, a number that is not ASCII digits) are left
    empty.
    """
    entries: list[IndexEntry] = []
    for raw in text.splitlines():
        fields = raw.strip().split(":")
        if fields[0] == "pub" and len(fields) >= 2:
            fields += [""] * (7 - len(fields))
            key = fields[1].strip()
            # Not a key id or fingerprint: the entry keeps its other fields.
            key = key.upper() if _HEX.fullmatch(key) else ""
            entries.append(
                IndexEntry(
                    fingerprint=key if len(key) in (40, 64) else "",
                    key_id=_key_id(key),
                    algorithm=_int(fields[2]),
                    bits=_int(fields[3]),
                    created=_time(fields[4]),
                    expires=_time(fields[5]),
                    flags=fields[6],
                    user_ids=(),
                )
            )
        elif fields[0] == "uid" and entries and len(fields) >= 2:
            fields += [""] * (5 - len(fields))
            uid = UserId(
                text=urllib.parse.unquote(fields[1]),
                created=_time(fields[2]),
                expires=_time(fields[3]),
                flags=fields[4],
            )
            entries[-1] = replace(entries[-1], user_ids=(*entries[-1].user_ids, uid))
    return entries


def _key_id(key: str) -> str:
    if len(key) == 40:  # v4: the low 64 bits
        return key[-16:]
    if len(key) == 64:  # v6: the high 64 bits
        return key[:16]
    return key


def _int(text: str) -> int | None:
    return ascii_int(text, 0, 2**31 - 1)


def _time(text: str) -> datetime | None:
    seconds = ascii_int(text, 0, _MAX_TIME)
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds is not None else None


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes


class HkpClient:
    """Talks HKP to one Hockeypuck (by default the local one)."""

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = snap_layout.HKP_PORT,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.host = host
        self.port = port
        self.timeout = timeout

    def health(self) -> None:
        """Check `/pks/health`.

        Raises:
            ServiceNotReadyError: no answer, or not `200 OK`.
        """
        try:
            response = self._request("GET", "/pks/health")
        except ServiceNotReadyError:
            raise
        except HkpError as error:
            raise ServiceNotReadyError(f"Hockeypuck is not healthy: {error}") from None
        if response.status != 200 or response.body.strip() != b"OK":
            raise ServiceNotReadyError(
                f"Hockeypuck is not healthy: /pks/health answered {response.status}"
            )

    def is_ready(self) -> bool:
        """Whether `/pks/health` answers OK."""
        try:
            self.health()
        except ServiceNotReadyError:
            return False
        return True

    def check_database(self) -> None:
        """One lookup of a key nobody has: 404 (or 200) when Hockeypuck and its database work.

        A bare HTTP/1.0 exchange over a socket: the status line is all it reads, and the
        charm's frequent hooks do not pay for importing an HTTP client.

        Raises:
            ServerError: 5xx, Hockeypuck cannot use its database.
            ServiceNotReadyError: no answer, or not HTTP.
            HkpError: another status.
        """
        where = f"{self.host}:{self.port}"
        request = (
            f"GET {_lookup_path('index', PROBE_SEARCH)} HTTP/1.0\r\n"
            f"Host: {where}\r\nUser-Agent: hockeypuck-charm\r\n\r\n"
        )
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                sock.sendall(request.encode())
                with sock.makefile("rb") as answer:
                    line = answer.readline(MAX_STATUS_LINE)
        except TimeoutError:
            raise ServiceNotReadyError(
                f"Hockeypuck on {where} did not answer a lookup within {self.timeout:g}s"
            ) from None
        except OSError as error:
            raise ServiceNotReadyError(
                f"Hockeypuck is not answering on {where} ({error.strerror or error})"
            ) from None
        fields = line.decode("latin-1").split()
        status = ascii_int(fields[1], 100, 599) if len(fields) > 1 else None
        if not fields or not fields[0].startswith("HTTP/") or status is None:
            raise ServiceNotReadyError(f"what answers on {where} does not speak HTTP")
        if status in (200, 404):
            return
        if status >= 500:
            raise ServerError(f"a lookup on {where} answered {status}")
        raise HkpError(f"a lookup on {where} answered {status}")

    def wait_ready(
        self,
        timeout: float,
        interval: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wait until `/pks/health` answers OK.

        Raises:
            ServiceNotReadyError: still not healthy after `timeout` seconds.
        """
        deadline = clock() + timeout
        while True:
            try:
                self.health()
                return
            except ServiceNotReadyError:
                if clock() >= deadline:
                    raise
            sleep(interval)

    def add_key(self, armored_key: str) -> AddResult:
        """Upload a key with `/pks/add`.

        Raises:
            BadRequestError: not an armored key.
            ServerError, ServiceNotReadyError, HkpError: see the module doc.
        """
        response = self._request("POST", "/pks/add", form={"keytext": armored_key})
        try:
            answer = json.loads(response.body)
            return AddResult(
                inserted=tuple(answer.get("inserted") or ()),
                updated=tuple(answer.get("updated") or ()),
                ignored=tuple(answer.get("ignored") or ()),
            )
        except (ValueError, AttributeError, TypeError):
            raise HkpError("/pks/add answered 200 but not with the expected JSON") from None

    def index(self, search: str) -> list[IndexEntry]:
        """The keys matching `search` (`op=index&options=mr`); empty when nothing matched.

        Raises:
            BadRequestError, ServerError, ServiceNotReadyError, HkpError.
        """
        try:
            response = self._request("GET", _lookup_path("index", search))
        except KeyNotFoundError:
            return []
        return parse_index(response.body.decode(errors="replace"))

    def get_key(self, search: str) -> str:
        """The armored key(s) matching `search` (`op=get&options=mr`).

        Raises:
            KeyNotFoundError: nothing matched.
            BadRequestError, ServerError, ServiceNotReadyError, HkpError.
        """
        response = self._request("GET", _lookup_path("get", search))
        return response.body.decode()

    def delete_key(self, keytext: str, signature: str) -> None:
        """Send a signed `/pks/delete`; `keytext` starts with the line `/pks/delete`.

        Raises:
            KeyNotFoundError: the key is not in the database.
            SignatureRejectedError: bad signature, signer not in adminKeys, or the signer's
                public key is not in the database.
            BadRequestError, ServerError, ServiceNotReadyError, HkpError.
        """
        self._request("POST", "/pks/delete", form={"keytext": keytext, "keysig": signature})

    def _request(self, method: str, path: str, form: Mapping[str, str] | None = None) -> _Response:
        import http.client  # noqa: PLC0415 - the actions need it, the frequent hooks do not

        headers = {"User-Agent": "hockeypuck-charm", "Accept": "*/*"}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        where = f"{self.host}:{self.port}"
        what = f"{method} {path.split('?', maxsplit=1)[0]}"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read(MAX_RESPONSE_BYTES + 1)
        except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
            raise ServiceNotReadyError(
                f"Hockeypuck is not answering on {where} (not running or starting up)"
            ) from None
        except TimeoutError:
            raise ServiceNotReadyError(
                f"Hockeypuck on {where} did not answer {what} within {self.timeout:g}s"
            ) from None
        except (OSError, http.client.HTTPException) as error:
            raise ServiceNotReadyError(
                f"cannot talk to Hockeypuck on {where}: {type(error).__name__}"
            ) from None
        finally:
            connection.close()
        if len(data) > MAX_RESPONSE_BYTES:
            raise HkpError(f"{what}: answer larger than {MAX_RESPONSE_BYTES} bytes")
        _raise_for_status(response.status, what)
        return _Response(response.status, data)


def _lookup_path(op: str, search: str) -> str:
    query = urllib.parse.urlencode({"op": op, "options": "mr", "search": search})
    return f"/pks/lookup?{query}"


def _raise_for_status(status: int, what: str) -> None:
    if 200 <= status < 300:
        return
    if status == 404:
        raise KeyNotFoundError(f"{what}: not found (404)")
    if status == 422:
        raise SignatureRejectedError(
            f"{what}: signature rejected (422): the signer must be in adminKeys and its "
            "public key in Hockeypuck's database"
        )
    if status == 400:
        raise BadRequestError(f"{what}: bad request (400)")
    if status >= 500:
        raise ServerError(f"{what}: Hockeypuck failed ({status}); is its database reachable?")
    raise HkpError(f"{what}: unexpected HTTP status {status}")
