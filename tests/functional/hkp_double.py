"""A small HKP server that behaves like Hockeypuck 2.3.3 in the recorded transcripts.

Backed by Hockeypuck's real `keys`, `userids` and `subkeys` tables in PostgreSQL, it parses
keys with the real `gpg` and checks admin signatures with it. What it copies from the
transcripts (tests/data/hockeypuck/http/):

- error bodies are the status text plus a newline, `text/plain; charset=utf-8`, `nosniff`;
- `/pks/add`: 200 JSON `{"inserted","updated","ignored"}` with `null` for empty lists; a
  blacklisted key gets 200 with all three `null` and is not stored; 400 without keytext or
  with something that is not an armored key;
- `/pks/delete`: 400 unless keytext starts with the line `/pks/delete`; 422 for a bad
  signature, a signer not in `admin_fingerprints`, or a signer whose key is not stored; 404 for
  a key that is not stored; 200 with an empty body on success, and also for a blacklisted key,
  which is not deleted (the request's key is read through the blacklist);
- `/pks/lookup`: `op=get|index` (`options=mr` gives the `info:`/`pub:`/`uid:` format), 404
  when nothing matches (also for 32-bit key IDs), 400 for a missing search or unknown op;
- `/pks/health`: 200 `OK`.

Simplifications: a changed key replaces the stored one (no merge); text search matches user
id substrings (Hockeypuck uses a tsvector); `doc` holds the armored key, not the packet JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg

SERVER = "Hockeypuck/2.3.3-test-double"
_STATUS_TEXT = {
    400: "Bad Request",
    404: "Not Found",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
}
_ARMOR = re.compile(
    r"-----BEGIN PGP PUBLIC KEY BLOCK-----.*?-----END PGP PUBLIC KEY BLOCK-----", re.DOTALL
)
_EMAIL = re.compile(r"<([^<>]+@[^<>]+)>")
_ALGORITHMS = {"1": "rsa", "17": "dsa", "19": "ecdsa", "22": "eddsa_Curve25519"}


@dataclass
class ParsedKey:
    """What the double needs of one OpenPGP key (as gpg lists it)."""

    fingerprint: str  # lower case
    algorithm: str
    bits: str
    created: str
    expires: str
    user_ids: list[tuple[str, str]] = field(default_factory=list)  # (text, created)
    subkeys: list[str] = field(default_factory=list)  # lower-case fingerprints
    armored: str = ""

    @property
    def description(self) -> str:
        """How Hockeypuck names the key in /pks/add answers."""
        name = _ALGORITHMS.get(self.algorithm, f"algo{self.algorithm}")
        if name == "rsa":
            name = f"rsa{self.bits}"
        return f"(4){name}/{self.fingerprint}"


@contextmanager
def _gnupg_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="hkp-double-gnupg-"))
    try:
        yield home
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False
        )
        shutil.rmtree(home, ignore_errors=True)


def _gpg(home: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--no-tty", *args],
        input=stdin,
        capture_output=True,
        check=False,
        env={"GNUPGHOME": str(home), "PATH": "/usr/bin:/bin"},
    )


def _unescape_colons(text: str) -> str:
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda match: chr(int(match.group(1), 16)), text)


def parse_keys(keytext: str) -> list[ParsedKey]:
    """Every public key in the armored blocks of `keytext` (empty when there is none)."""
    keys: list[ParsedKey] = []
    for armored in _ARMOR.findall(keytext):
        with _gnupg_home() as home:
            result = _gpg(
                home,
                "--with-colons",
                "--import-options",
                "show-only",
                "--import",
                stdin=armored.encode(),
            )
        if result.returncode != 0:
            continue
        block_keys: list[ParsedKey] = []
        last = ""
        for line in result.stdout.decode().splitlines():
            fields = line.split(":")
            if fields[0] == "pub":
                block_keys.append(ParsedKey("", fields[3], fields[2], fields[5], fields[6]))
                last = "pub"
            elif fields[0] == "sub":
                last = "sub"
            elif fields[0] == "fpr" and block_keys:  # codespell:ignore fpr
                if last == "pub":
                    block_keys[-1].fingerprint = fields[9].lower()
                elif last == "sub":
                    block_keys[-1].subkeys.append(fields[9].lower())
                last = ""
            elif fields[0] == "uid" and block_keys:
                block_keys[-1].user_ids.append((_unescape_colons(fields[9]), fields[5]))
        if len(block_keys) == 1:
            block_keys[0].armored = armored
        keys.extend(block_keys)
    return keys


def _reverse(fingerprint: str) -> str:
    return fingerprint.lower()[::-1]


class HkpDouble:
    """An HKP server on 127.0.0.1 (a free port) over a database with Hockeypuck's schema.

    `admin_fingerprints` and `blacklist` play the config's `adminKeys` and `blacklist`.
    """

    def __init__(
        self,
        conninfo: str,
        admin_fingerprints: Iterable[str] = (),
        blacklist: Iterable[str] = (),
    ):
        self._conninfo = conninfo
        self.admin_fingerprints = {fp.lower() for fp in admin_fingerprints}
        self.blacklist = {fp.lower() for fp in blacklist}
        self.requests: list[tuple[str, str, int]] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            server_version = SERVER
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

            def do_GET(self) -> None:
                double._handle(self, "GET")

            def do_HEAD(self) -> None:
                double._handle(self, "HEAD")

            def do_POST(self) -> None:
                double._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> HkpDouble:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- plumbing -------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self._conninfo)

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        query = parse_qs(url.query, keep_blank_values=True)
        form: dict[str, list[str]] = {}
        if method == "POST":
            length = int(request.headers.get("Content-Length") or 0)
            body = request.rfile.read(length).decode()
            form = parse_qs(body, keep_blank_values=True)
        routes = {
            ("GET", "/pks/health"): lambda: self._health(method),
            ("HEAD", "/pks/health"): lambda: self._health(method),
            ("GET", "/pks/lookup"): lambda: self._lookup(query),
            ("POST", "/pks/add"): lambda: self._add(form),
            ("POST", "/pks/delete"): lambda: self._delete(form),
        }
        route = routes.get((method, url.path))
        try:
            status, headers, payload = route() if route else self._error(404)
        except psycopg.OperationalError:
            # As Hockeypuck 2.3: a database that refuses it (credentials revoked, down) makes
            # lookups and adds 500 while /pks/health stays 200.
            status, headers, payload = self._error(500)
        self.requests.append((method, request.path, status))
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if method != "HEAD":
            request.wfile.write(payload)

    @staticmethod
    def _error(status: int) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "X-Content-Type-Options": "nosniff",
        }
        return status, headers, f"{_STATUS_TEXT[status]}\n".encode()

    # --- endpoints ------------------------------------------------------------------------

    def _health(self, method: str) -> tuple[int, dict[str, str], bytes]:
        headers = {"Access-Control-Allow-Origin": "*", "Content-Type": "text/plain; charset=utf-8"}
        return 200, headers, b"" if method == "HEAD" else b"OK"

    def _add(self, form: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        if "keytext" not in form:
            return self._error(400)
        keys = parse_keys(form["keytext"][0])
        if not keys:
            return self._error(400)
        inserted: list[str] = []
        updated: list[str] = []
        ignored: list[str] = []
        with self._connect() as conn:
            for key in keys:
                if key.fingerprint in self.blacklist:
                    continue  # "blacklisted key": not stored, not reported
                outcome = self._store(conn, key)
                {"inserted": inserted, "updated": updated, "ignored": ignored}[outcome].append(
                    key.description
                )
        answer = {
            "inserted": inserted or None,
            "updated": updated or None,
            "ignored": ignored or None,
        }
        headers = {"Access-Control-Allow-Origin": "*", "Content-Type": "application/json"}
        return 200, headers, json.dumps(answer, separators=(",", ":")).encode()

    def _store(self, conn: psycopg.Connection, key: ParsedKey) -> str:
        rfingerprint = _reverse(key.fingerprint)
        md5 = hashlib.md5(key.armored.encode(), usedforsecurity=False).hexdigest()
        row = conn.execute(
            "SELECT md5 FROM keys WHERE rfingerprint = %s", [rfingerprint]
        ).fetchone()
        if row and row[0] == md5:
            return "ignored"
        doc = json.dumps({"armored": key.armored, "fingerprint": key.fingerprint})
        words = " ".join(text for text, _ in key.user_ids)
        if row:
            conn.execute("DELETE FROM subkeys WHERE rfingerprint = %s", [rfingerprint])
            conn.execute("DELETE FROM userids WHERE rfingerprint = %s", [rfingerprint])
            conn.execute(
                "UPDATE keys SET doc = %s, md5 = %s, mtime = now(), idxtime = now(), "
                "keywords = to_tsvector('simple', %s) WHERE rfingerprint = %s",
                [doc, md5, words, rfingerprint],
            )
        else:
            conn.execute(
                "INSERT INTO keys (rfingerprint, doc, ctime, mtime, md5, keywords, idxtime, "
                "vfingerprint) VALUES (%s, %s, now(), now(), %s, to_tsvector('simple', %s), "
                "now(), %s)",
                [rfingerprint, doc, md5, words, "04" + key.fingerprint],
            )
        for text, _ in key.user_ids:
            email = _EMAIL.search(text)
            conn.execute(
                "INSERT INTO userids (rfingerprint, uidstring, identity, confidence) "
                "VALUES (%s, %s, %s, 0) ON CONFLICT DO NOTHING",
                [rfingerprint, text, email.group(1).lower() if email else None],
            )
        for subkey in key.subkeys:
            conn.execute(
                "INSERT INTO subkeys (rfingerprint, rsubfp, vsubfp) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                [rfingerprint, _reverse(subkey), "04" + subkey],
            )
        return "updated" if row else "inserted"

    def _find(self, conn: psycopg.Connection, search: str) -> list[str]:
        """The rfingerprints of the keys matching a search, like Hockeypuck resolves them."""
        if search[:2].lower() == "0x":
            digits = search[2:].lower()
            if not re.fullmatch(r"[0-9a-f]+", digits):
                return []
            if len(digits) in (40, 64):
                rows = conn.execute(
                    "SELECT rfingerprint FROM keys WHERE rfingerprint = %(r)s UNION "
                    "SELECT rfingerprint FROM subkeys WHERE rsubfp = %(r)s",
                    {"r": _reverse(digits)},
                ).fetchall()
            elif len(digits) == 16:
                prefix = _reverse(digits) + "%"
                rows = conn.execute(
                    "SELECT rfingerprint FROM keys WHERE rfingerprint LIKE %(p)s UNION "
                    "SELECT rfingerprint FROM subkeys WHERE rsubfp LIKE %(p)s",
                    {"p": prefix},
                ).fetchall()
            else:
                return []  # 32-bit key IDs: 404, as recorded
            return [row[0] for row in rows]
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", search) + "%"
        rows = conn.execute(
            "SELECT DISTINCT rfingerprint FROM userids WHERE uidstring ILIKE %s "
            "ORDER BY rfingerprint",
            [pattern],
        ).fetchall()
        return [row[0] for row in rows]

    def _lookup(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        op = query.get("op", [""])[0]
        search = query.get("search", [""])[0]
        if op not in ("get", "index", "vindex") or not search:
            return self._error(400)
        with self._connect() as conn:
            found = self._find(conn, search)
            if not found:
                return self._error(404)
            if op == "get":
                armors = []
                for rfingerprint in found:
                    row = conn.execute(
                        "SELECT doc->>'armored' FROM keys WHERE rfingerprint = %s", [rfingerprint]
                    ).fetchone()
                    if row:
                        armors.append(_server_armor(row[0]))
                headers = {
                    "Access-Control-Allow-Origin": "*",
                    "Content-Type": "application/pgp-keys",
                }
                return 200, headers, "".join(armors).encode()
            lines = [f"info:1:{len(found)}"]
            for rfingerprint in found:
                lines.extend(self._index_lines(conn, rfingerprint))
        return 200, {"Content-Type": "text/plain"}, ("\n".join(lines) + "\n").encode()

    def _index_lines(self, conn: psycopg.Connection, rfingerprint: str) -> list[str]:
        row = conn.execute(
            "SELECT doc->>'armored' FROM keys WHERE rfingerprint = %s", [rfingerprint]
        ).fetchone()
        keys = parse_keys(row[0]) if row else []
        if not keys:
            return []
        key = keys[0]
        lines = [f"pub:{key.fingerprint.upper()}:{key.algorithm}:{key.bits}:{key.created}::"]
        for text, created in key.user_ids:
            escaped = text.replace("%", "%25").replace(":", "%3A")
            lines.append(f"uid:{escaped}:{created}::")
        return lines

    def _delete(  # noqa: PLR0911 - one answer per case Hockeypuck distinguishes
        self, form: dict[str, list[str]]
    ) -> tuple[int, dict[str, str], bytes]:
        if "keytext" not in form or "keysig" not in form:
            return self._error(400)
        keytext, keysig = form["keytext"][0], form["keysig"][0]
        first, _, rest = keytext.partition("\n")
        if first.strip() != "/pks/delete":
            return self._error(400)
        with self._connect() as conn:
            if not self._admin_signed(conn, keytext, keysig):
                return self._error(422)
            keys = parse_keys(rest)
            if not keys:
                return self._error(400)
            # Hockeypuck reads the request's keys like an upload: blacklisted keys are dropped
            # and nothing is deleted for them, yet the answer is 200.
            keys = [key for key in keys if key.fingerprint not in self.blacklist]
            if not keys:
                return 200, {"Access-Control-Allow-Origin": "*"}, b""
            stored = [
                key
                for key in keys
                if conn.execute(
                    "SELECT 1 FROM keys WHERE rfingerprint = %s", [_reverse(key.fingerprint)]
                ).fetchone()
            ]
            if not stored:
                return self._error(404)
            for key in stored:
                rfingerprint = _reverse(key.fingerprint)
                conn.execute("DELETE FROM subkeys WHERE rfingerprint = %s", [rfingerprint])
                conn.execute("DELETE FROM userids WHERE rfingerprint = %s", [rfingerprint])
                conn.execute("DELETE FROM keys WHERE rfingerprint = %s", [rfingerprint])
        return 200, {"Access-Control-Allow-Origin": "*"}, b""

    def _admin_signed(self, conn: psycopg.Connection, keytext: str, keysig: str) -> bool:
        """A good signature over keytext by an admin key that is in the database."""
        admin_rows = conn.execute(
            "SELECT doc->>'armored' FROM keys WHERE rfingerprint = ANY(%s)",
            [[_reverse(fp) for fp in self.admin_fingerprints]],
        ).fetchall()
        if not admin_rows:
            return False
        with _gnupg_home() as home:
            for (armored,) in admin_rows:
                _gpg(home, "--import", stdin=armored.encode())
            (home / "data").write_bytes(keytext.encode())
            (home / "data.sig").write_bytes(keysig.encode())
            result = _gpg(
                home, "--status-fd", "1", "--verify", str(home / "data.sig"), str(home / "data")
            )
        for line in result.stdout.decode().splitlines():
            fields = line.split()
            if fields[:2] == ["[GNUPG:]", "VALIDSIG"] and fields[-1].lower() in (
                self.admin_fingerprints
            ):
                return True
        return False


def _server_armor(armored: str) -> str:
    """The stored armor with the headers Hockeypuck adds to what it serves."""
    lines = armored.strip().splitlines()
    blank = lines.index("") if "" in lines else 1
    served = [
        lines[0],
        "Comment: Hostname: keyserver.example.test",
        "Version: Hockeypuck 2.3.3-test-double",
        *lines[1:blank],
        "",
        *lines[blank + 1 :],
    ]
    return "\n".join(served) + "\n"
