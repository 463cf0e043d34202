"""A fake snapd: the REST API subset charmlibs.snap 2.x uses, on a Unix socket.

Shapes follow snapd's daemon (daemon/response.go, daemon/errors.go, daemon/api_snaps.go):

- sync: `{"type": "sync", "status-code": 200, "status": "OK", "result": ...}`;
- async: 202 `{"type": "async", "status-code": 202, "status": "Accepted", "result": null,
  "change": "<id>"}`, then `GET /v2/changes/<id>` answers the change, here at once `ready`
  with status `Done`;
- error: `{"type": "error", "status-code": N, "status": ..., "result": {"message": ...,
  "kind": ..., "value": ...}}`.

Routes: `GET /v2/snaps/<name>` (`snap list`; 404 `snap-not-found` "snap not installed" when
absent), `POST /v2/snaps/<name>` with action `install`, `refresh` (also `amend`), `hold`,
`unhold`; `GET /v2/changes/<id>`. Behaviour modelled on snapd's: installing an installed snap is
400 `snap-already-installed`; a channel with no revision is 404 `snap-channel-not-available`;
refreshing to what is installed is 400 `snap-no-update-available`; refreshing a locally
installed snap (revision `xN`, no snap-id) without `amend` is 400 `snap-local`; holding a snap
that is not installed is a 400 with no kind; a sideload keeps the channel the snap tracked.
A new revision restarts the snap's daemon if it is enabled, as snapd does.

One private route stands in for the multipart upload of `snap install --dangerous FILE`:
`POST /x-test/sideload {"path": FILE}`. A fake snap file is `hsqs` (squashfs's magic) followed
by `key=value` lines: `name`, `version`, `install-mode` (see `write_snap_file`).
"""

from __future__ import annotations

import datetime
import http.server
import json
import re
import socketserver
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.functional.fake_systemctl import FakeSystemctl

RISKS = ("stable", "candidate", "beta", "edge")
SQUASHFS_MAGIC = b"hsqs"
_STATUS_TEXT = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}


@dataclass(frozen=True)
class StoreRevision:
    """What the store offers on one channel."""

    revision: str
    version: str
    install_mode: str = "enable"


@dataclass
class InstalledSnap:
    """snapd's state for one installed snap."""

    name: str
    revision: str
    version: str
    tracking: str
    channel: str
    snap_id: str
    hold: str | None = None
    revisions: list[str] = field(default_factory=list)


def write_snap_file(
    path: Path, version: str = "2.3.3", name: str = "hockeypuck", install_mode: str = "disable"
) -> Path:
    """Write a file the fake snapd accepts as a snap (the project's snap: install-mode disable)."""
    body = f"\nname={name}\nversion={version}\ninstall-mode={install_mode}\n"
    path.write_bytes(SQUASHFS_MAGIC + body.encode())
    return path


def full_channel(channel: str, tracking: str = "") -> str:
    """The channel snapd would track for a requested one (snapd's channel.Resolve)."""
    parts = channel.split("/")
    if parts[0] in RISKS:
        track = tracking.split("/", maxsplit=1)[0] if "/" in tracking else "latest"
        return "/".join([track, *parts])
    if len(parts) == 1:
        return f"{channel}/stable"
    return channel


class ApiError(Exception):
    """An error response."""

    def __init__(self, status: int, message: str, kind: str = "", value: Any = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.value = value


class FakeSnapd:
    """The fake daemon: state, the store's channels, and a server thread."""

    def __init__(
        self,
        socket_path: Path,
        store: dict[str, dict[str, StoreRevision]],
        systemctl: FakeSystemctl | None = None,
        root: Path | None = None,
    ):
        self.socket_path = socket_path
        self.store = store
        self.systemctl = systemctl
        self.root = root
        self.snaps: dict[str, InstalledSnap] = {}
        self.changes: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    # Life cycle

    def start(self) -> None:
        """Listen on the socket in a background thread."""
        fake = self

        class Handler(_Handler):
            snapd = fake

        self._server = socketserver.ThreadingUnixStreamServer(str(self.socket_path), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and remove the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.socket_path.unlink(missing_ok=True)

    # For the tests

    def posts(self, action: str | None = None) -> list[dict[str, Any]]:
        """The bodies of POST requests to /v2/snaps/..., optionally only one action's."""
        return [
            body or {}
            for method, path, body in self.requests
            if method == "POST"
            and path.startswith("/v2/snaps/")
            and (action is None or (body or {}).get("action") == action)
        ]

    # The API

    def handle(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        """Answer one request: (HTTP status, JSON document)."""
        with self._lock:
            self.requests.append((method, path, body))
            try:
                return self._route(method, path, body or {})
            except ApiError as error:
                return _error(error)
            except (KeyError, TypeError, ValueError) as error:
                # A request this fake does not understand: say so loudly.
                return _error(ApiError(500, f"fake snapd cannot handle it: {error!r}"))

    def _route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        snap_match = re.fullmatch(r"/v2/snaps/([^/]+)", path)
        change_match = re.fullmatch(r"/v2/changes/([^/]+)", path)
        if method == "GET" and snap_match:
            return _sync(self._info(snap_match.group(1)))
        if method == "GET" and change_match:
            change = self.changes.get(change_match.group(1))
            if change is None:
                raise ApiError(404, f"cannot find change with id {change_match.group(1)!r}")
            return _sync(change)
        if method == "POST" and snap_match:
            return self._snap_action(snap_match.group(1), body)
        if method == "POST" and path == "/x-test/sideload":
            return self._sideload(Path(body["path"]))
        raise ApiError(404, "not found")

    def _info(self, name: str) -> dict[str, Any]:
        snap = self.snaps.get(name)
        if snap is None:
            raise ApiError(404, "snap not installed", "snap-not-found", name)
        info: dict[str, Any] = {
            "id": snap.snap_id,
            "name": name,
            "summary": "OpenPGP keyserver",
            "type": "app",
            "version": snap.version,
            "revision": snap.revision,
            "channel": snap.channel,
            "confinement": "strict",
            "status": "active",
            "devmode": False,
            "jailmode": False,
            "private": False,
            "mounted-from": f"/var/lib/snapd/snaps/{name}_{snap.revision}.snap",
            "apps": [{"snap": name, "name": name, "daemon": "simple", "daemon-scope": "system"}],
        }
        if snap.tracking:
            info["tracking-channel"] = snap.tracking
        if snap.hold is not None:
            info["hold"] = snap.hold
        return info

    def _snap_action(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        action = body.get("action")
        if action == "install":
            return self._install(name, body)
        if action == "refresh":
            return self._refresh(name, body)
        if action in ("hold", "unhold"):
            return self._hold(name, body)
        raise ApiError(400, f"unknown action {action!r}")

    def _store_revision(self, name: str, channel: str, action: str) -> StoreRevision:
        channels = self.store.get(name)
        if channels is None:
            raise ApiError(404, "snap not found", "snap-not-found", name)
        if channel not in channels:
            raise ApiError(
                404,
                "no snap revision on specified channel",
                "snap-channel-not-available",
                {
                    "snap-name": name,
                    "action": action,
                    "channel": channel,
                    "architecture": "amd64",
                    "releases": [{"architecture": "amd64", "channel": c} for c in channels],
                },
            )
        return channels[channel]

    def _install(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        if name in self.snaps:
            raise ApiError(
                400, f"snap {name!r} is already installed", "snap-already-installed", name
            )
        channel = full_channel(body.get("channel") or "latest/stable")
        offer = self._store_revision(name, channel, "install")
        self.snaps[name] = InstalledSnap(
            name=name,
            revision=offer.revision,
            version=offer.version,
            tracking=channel,
            channel=channel,
            snap_id=f"{name}-snap-id",
            revisions=[offer.revision],
        )
        self._installed_new(name, offer.install_mode)
        return self._change("install-snap", f'Install "{name}" snap', name)

    def _refresh(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        snap = self.snaps.get(name)
        if snap is None:
            raise ApiError(400, f"snap {name!r} is not installed", "snap-not-installed", name)
        if not snap.snap_id and not body.get("amend"):
            raise ApiError(400, "cannot perform operation on local snap", "snap-local")
        channel = full_channel(
            body.get("channel") or snap.tracking or "latest/stable", snap.tracking
        )
        offer = self._store_revision(name, channel, "refresh")
        if offer.revision == snap.revision and channel == snap.tracking:
            raise ApiError(400, "snap has no updates available", "snap-no-update-available")
        snap.tracking = channel
        if offer.revision != snap.revision:
            snap.revision, snap.version, snap.channel = offer.revision, offer.version, channel
            snap.snap_id = f"{name}-snap-id"
            snap.revisions.append(offer.revision)
            self._revision_changed(name)
        return self._change(
            "refresh-snap", f'Refresh "{name}" snap from {channel!r} channel', name
        )

    def _hold(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        snap = self.snaps.get(name)
        if snap is None:
            raise ApiError(400, f"snap {name!r} is not installed")
        if body["action"] == "unhold":
            snap.hold = None
            return self._change("unhold-refresh", f"Remove refresh hold on {name!r}", name)
        if body.get("hold-level") not in ("general", "auto-refresh"):
            raise ApiError(400, f"invalid hold-level {body.get('hold-level')!r}")
        until = body.get("time")
        if until == "forever":
            # snapd holds "forever" for Go's longest duration: about 292 years.
            now = datetime.datetime.now(datetime.UTC)
            until = now.replace(year=now.year + 292).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if not isinstance(until, str):
            raise ApiError(400, "hold time must be a timestamp or 'forever'")
        snap.hold = until
        return self._change("hold-refresh", f"Hold general refreshes for {name!r}", name)

    def _sideload(self, path: Path) -> tuple[int, Any]:
        try:
            content = path.read_bytes()
        except OSError as error:
            raise ApiError(400, f"cannot open snap file: {error.strerror}") from None
        if not content.startswith(SQUASHFS_MAGIC):
            raise ApiError(400, f"cannot read snap file {str(path)!r}: not a squashfs file")
        meta = dict(
            line.split("=", 1)
            for line in content[len(SQUASHFS_MAGIC) :].decode().splitlines()
            if "=" in line
        )
        name = meta.get("name", "hockeypuck")
        snap = self.snaps.get(name)
        local = [int(r[1:]) for r in (snap.revisions if snap else []) if r.startswith("x")]
        revision = f"x{max(local, default=0) + 1}"
        version = meta.get("version", "2.3.3")
        if snap is None:
            self.snaps[name] = InstalledSnap(
                name=name,
                revision=revision,
                version=version,
                tracking="",
                channel="",
                snap_id="",
                revisions=[revision],
            )
            self._installed_new(name, meta.get("install-mode", "enable"))
        else:
            # Like snapd's doLinkSnap: no channel given, so the tracked channel stays.
            snap.revision, snap.version, snap.channel, snap.snap_id = revision, version, "", ""
            snap.revisions.append(revision)
            self._revision_changed(name)
        return self._change("install-snap", f'Install "{name}" snap from file', name)

    def _installed_new(self, name: str, install_mode: str) -> None:
        if self.root is not None:
            (self.root / "var/snap" / name / "common").mkdir(parents=True, exist_ok=True)
        if self.systemctl is not None:
            start = install_mode != "disable"
            self.systemctl.add_unit(_unit(name), enabled=start, active=start)

    def _revision_changed(self, name: str) -> None:
        if self.systemctl is not None:
            self.systemctl.snapd_restart(_unit(name))

    def _change(self, kind: str, summary: str, name: str) -> tuple[int, Any]:
        change_id = str(len(self.changes) + 1)
        now = datetime.datetime.now(datetime.UTC).isoformat()
        self.changes[change_id] = {
            "id": change_id,
            "kind": kind,
            "summary": summary,
            "status": "Done",
            "ready": True,
            "spawn-time": now,
            "ready-time": now,
            "data": {"snap-names": [name]},
        }
        return 202, {
            "type": "async",
            "status-code": 202,
            "status": "Accepted",
            "result": None,
            "change": change_id,
        }


def _unit(snap_name: str) -> str:
    return f"snap.{snap_name}.{snap_name}.service"


def _error(error: ApiError) -> tuple[int, Any]:
    # snapd omits an empty kind or value (omitempty).
    result = {"message": error.message}
    result.update({k: v for k, v in (("kind", error.kind), ("value", error.value)) if v})
    return error.status, {
        "type": "error",
        "status-code": error.status,
        "status": _STATUS_TEXT.get(error.status, ""),
        "result": result,
    }


def _sync(result: Any) -> tuple[int, Any]:
    return 200, {"type": "sync", "status-code": 200, "status": "OK", "result": result}


class _Handler(http.server.BaseHTTPRequestHandler):
    snapd: FakeSnapd

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = self.path.split("?", 1)[0]
        status, document = self.snapd.handle(method, path, body)
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def log_message(self, format: str, *args: Any) -> None:
        """Keep quiet (and AF_UNIX has no client address to log)."""
