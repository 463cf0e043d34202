"""Fixtures for ops.testing tests: the machine is faked at the charmlibs snap/systemd seam."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from charmlibs import rollingops, snap, systemd
from hypothesis import HealthCheck, settings
from ops import testing

import admin_key
import blocklist
import charm
import hkp_client
import snap_layout
import workload

# Property-based tests: seeded (the same cases on every run), no example database, no time
# limit per case (a hook takes tens of milliseconds on a loaded machine). Fixtures are made
# once per test and shared by its cases, like one unit living through many hooks.
settings.register_profile(
    "charm",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
settings.load_profile("charm")

REPO_ROOT = Path(__file__).parents[2]
SITE_PACKAGES = Path(rollingops.__file__).parents[2]
DB_PASSWORD = "s3cret-pw"
# The charmlibs.systemd functions the workload calls, faked by FakeSystemd.
SYSTEMD_CALLS = (
    "service_running",
    "service_restart",
    "service_start",
    "service_stop",
    "service_enable",
    "service_disable",
    "daemon_reload",
)
DB_USER = "relation-7"


@dataclass
class FakeSnapd:
    """The snapd the workload talks to: channels with revisions, local installs."""

    channels: dict[str, str] = field(
        default_factory=lambda: {"latest/edge": "42", "latest/stable": "40", "2.3/stable": "51"}
    )
    installed: snap.InstalledInfo | None = None
    held: bool = False
    local_installs: list[str] = field(default_factory=list)
    fail_with: snap.Error | None = None
    systemd: FakeSystemd | None = None

    def list_one(self, name: str) -> snap.InstalledInfo:
        assert name == snap_layout.SNAP_NAME
        if self.installed is None:
            raise snap.NotInstalledError("snap not installed", kind="snap-not-found", value=name)
        return self.installed

    def ensure_installed(
        self, name: str, channel: str | None = None, update: bool = True, **_: object
    ) -> bool:
        if self.fail_with is not None:
            raise self.fail_with
        channel = channel or "latest/stable"
        if channel not in self.channels:
            raise snap.ChannelNotAvailableError(f"no channel {channel}", kind="", value=name)
        installed = self.installed
        if (
            installed is not None
            and installed.tracking == channel
            and (not update or installed.revision == self.channels[channel])
        ):
            return False
        self._set(channel, self.channels[channel])
        return True

    def hold(self, name: str, duration: object = None) -> None:
        self.held = True

    tool_runs: list[list[str]] = field(default_factory=list)
    tool_fails: bool = False

    def run(self, command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        if command[:3] == ["systemctl", "--quiet", "is-enabled"] and self.systemd is not None:
            return subprocess.CompletedProcess(command, 0 if self.systemd.enabled else 1, "", "")
        if command[:2] == ["snap", "run"]:
            self.tool_runs.append(command[2:])
            if self.tool_fails:
                return subprocess.CompletedProcess(
                    command, 1, "", "resource temporarily unavailable"
                )
            return subprocess.CompletedProcess(command, 0, "done", "")
        if command[:3] == ["snap", "refresh", "--amend"]:
            channel = command[3].removeprefix("--channel=")
            self._set(channel, self.channels[channel])
            return subprocess.CompletedProcess(command, 0, "", "")
        assert command[:3] == ["snap", "install", "--dangerous"], command
        self.local_installs.append(command[3])
        self._set("", f"x{len(self.local_installs)}")
        return subprocess.CompletedProcess(command, 0, "", "")

    def _set(self, tracking: str, revision: str) -> None:
        # Like snapd, a refresh restarts the daemon if it was running.
        if self.installed is not None and self.systemd is not None and self.systemd.running:
            self.systemd.restarts += 1
        self.installed = snap.InstalledInfo(
            name=snap_layout.SNAP_NAME,
            classic=False,
            tracking=tracking,
            revision=revision,
            version=f"2.3.3+rev{revision}",
            hold=None,
        )


@dataclass
class FakeSystemd:
    """systemctl as the workload sees it, counting what matters: restarts."""

    running: bool = False
    enabled: bool = False
    stays_up: bool = True
    restarts: int = 0
    starts: int = 0
    stops: int = 0
    daemon_reloads: int = 0

    dies_after_start: bool = False
    answers_health: bool = True
    health_waits: int = 0

    def settle(self) -> None:
        if self.dies_after_start:
            self.running = False

    def wait_healthy(self, timeout: float) -> None:
        """`/pks/health` of the daemon: answers while it runs (unless told not to)."""
        self.health_waits += 1
        if not (self.running and self.answers_health):
            raise hkp_client.ServiceNotReadyError("connection refused")

    def service_running(self, unit: str) -> bool:
        assert unit == snap_layout.SERVICE
        return self.running

    def service_restart(self, unit: str) -> bool:
        self.restarts += 1
        self.running = self.stays_up
        return True

    def service_start(self, unit: str) -> bool:
        self.starts += 1
        self.running = self.stays_up
        return True

    def service_stop(self, unit: str) -> bool:
        self.stops += 1
        self.running = False
        return True

    def service_enable(self, unit: str) -> bool:
        self.enabled = True
        return True

    def service_disable(self, unit: str) -> bool:
        self.enabled = False
        return True

    def daemon_reload(self) -> bool:
        self.daemon_reloads += 1
        return True


@dataclass
class FakeBlocklist:
    """The block-list table, in memory (the real one is tested against PostgreSQL)."""

    entries: dict[str, str] = field(default_factory=dict)
    stored_keys: set[str] = field(default_factory=set)
    unreachable: bool = False
    connections: int = 0
    purged: list[str] = field(default_factory=list)

    def __call__(self, credentials: object, connect_timeout: int = 10) -> FakeBlocklist:
        self.connections += 1
        return self

    def _check(self) -> None:
        if self.unreachable:
            raise blocklist.BlocklistError("cannot connect to the database: refused")

    def ensure_table(self) -> None:
        self._check()

    def block(self, fingerprints: Iterable[str], comment: str) -> list[str]:
        self._check()
        added = [fp.lower() for fp in fingerprints if fp.lower() not in self.entries]
        self.entries.update(dict.fromkeys(added, comment))
        return added

    def unblock(self, fingerprints: Iterable[str]) -> list[str]:
        removed = [fp.lower() for fp in fingerprints if fp.lower() in self.entries]
        for fingerprint in removed:
            del self.entries[fingerprint]
        return removed

    def list(self) -> list[blocklist.BlockedKey]:
        return [blocklist.BlockedKey(fp, comment, None) for fp, comment in self.entries.items()]

    def fingerprints(self) -> list[str]:
        self._check()
        return sorted(self.entries)

    def stored(self, fingerprints: Iterable[str]) -> set[str]:
        return {fp.lower() for fp in fingerprints} & self.stored_keys

    def purge(self, fingerprints: Iterable[str]) -> list[str]:
        self._check()
        purged = sorted({fp.lower() for fp in fingerprints} & self.stored_keys)
        self.stored_keys.difference_update(purged)
        self.purged.extend(purged)
        return purged

    def count_keys(self) -> int:
        return len(self.stored_keys)


@dataclass
class FakeHkpPort:
    """Hockeypuck's HKP port as the serving check sees it: what a lookup answers.

    A real HTTP server on a free loopback port (the workload is pointed at it), answering
    `lookup_status` to every request; `requests` counts them.
    """

    lookup_status: int = 404
    requests: int = 0
    address: tuple[str, int] = ("127.0.0.1", 0)


@pytest.fixture(autouse=True)
def hkp_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHkpPort]:
    """Every unit test's machine has it (a cluster's units share it)."""
    fake = FakeHkpPort()
    # A restarted daemon answers HKP at once, or not at all.
    monkeypatch.setattr(workload, "STARTUP_GRACE_SECONDS", 0.0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.requests += 1
            self.send_response(fake.lookup_status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.address = ("127.0.0.1", server.server_address[1])
    # A short poll interval: shutdown() waits for it, at the end of every test.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    monkeypatch.setattr(workload.Hockeypuck, "hkp_address", fake.address)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


ADMIN_FINGERPRINT = "0123456789ABCDEF0123456789ABCDEF01234567"


@pytest.fixture
def blocklist_db(monkeypatch: pytest.MonkeyPatch) -> FakeBlocklist:
    fake = FakeBlocklist()
    monkeypatch.setattr(blocklist, "PostgresBlocklist", fake)
    return fake


@pytest.fixture
def admin_keys_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Gpg key generation, faked: records the user ids asked for."""
    made: list[str] = []

    def generate(app: str, model: str) -> admin_key.AdminKey:
        made.append(admin_key.admin_user_id(app, model))
        return admin_key.AdminKey(ADMIN_FINGERPRINT, "PUBLIC KEY BLOCK", "SECRET KEY BLOCK")

    monkeypatch.setattr(admin_key, "generate_admin_key", generate)
    return made


@pytest.fixture
def snapd(monkeypatch: pytest.MonkeyPatch, systemctl: FakeSystemd) -> FakeSnapd:
    fake = FakeSnapd(systemd=systemctl)
    for name in ("list_one", "ensure_installed", "hold"):
        monkeypatch.setattr(snap, name, getattr(fake, name))
    monkeypatch.setattr(subprocess, "run", fake.run)
    return fake


@pytest.fixture
def systemctl(monkeypatch: pytest.MonkeyPatch) -> FakeSystemd:
    fake = FakeSystemd()
    # The settle time after a restart passes at once; a daemon that dies early dies in it.
    monkeypatch.setattr(workload, "settle", fake.settle)
    monkeypatch.setattr(workload, "wait_healthy", fake.wait_healthy)
    for name in SYSTEMD_CALLS:
        monkeypatch.setattr(systemd, name, getattr(fake, name))
    return fake


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The machine's file system root for the workload."""
    machine = tmp_path / "machine"
    machine.mkdir()
    monkeypatch.setattr(charm.HockeypuckCharm, "workload_root", machine)
    return machine


def make_charm_root(directory: Path) -> Path:
    """A charm directory like the packed charm's, without touching the repository.

    ops.testing writes metadata files into the charm root it is given, so it must not be the
    repository itself (parallel test runs would see each other's files).
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("src", "templates"):
        (directory / name).symlink_to(REPO_ROOT / name)
    add_charm_venv(directory)
    return directory


def add_charm_venv(charm_dir: Path) -> None:
    """The packed charm's `venv/lib/pythonX.Y/site-packages`, pointing at this interpreter's.

    charmlibs-rollingops starts its worker script from there (it checks that it exists) when
    the leader grants itself the lock; fake the process itself with `FakeWorker`.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    lib = charm_dir / "venv" / "lib" / version
    lib.mkdir(parents=True)
    (lib / "site-packages").symlink_to(SITE_PACKAGES)


@dataclass
class FakeWorker:
    """Processes the charm spawns: the rolling-ops worker that dispatches the lock hook."""

    commands: list[list[str]] = field(default_factory=list)

    def popen(self, command: list[str], **_: object) -> FakeWorker:
        assert command[2].endswith("rollingops/_peer/_rollingops.py"), command
        self.commands.append([str(part) for part in command])
        return self

    pid = 2**22 + 1  # above the kernel's pid_max: never a live process


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> FakeWorker:
    fake = FakeWorker()
    monkeypatch.setattr(subprocess, "Popen", fake.popen)
    return fake


@pytest.fixture
def ctx(
    root: Path,
    snapd: FakeSnapd,
    systemctl: FakeSystemd,
    blocklist_db: FakeBlocklist,
    admin_keys_made: list[str],
    hkp_port: FakeHkpPort,
    worker: FakeWorker,
    tmp_path: Path,
) -> testing.Context:
    return testing.Context(charm.HockeypuckCharm, charm_root=make_charm_root(tmp_path / "charm"))


def user_secret(password: str = DB_PASSWORD, username: str = DB_USER) -> testing.Secret:
    """The secret the postgresql charm shares with the credentials."""
    return testing.Secret(tracked_content={"username": username, "password": password})


def db_relation(
    secret: testing.Secret | None = None, endpoints: str = "10.0.0.5:5432", **extra: str
) -> testing.Relation:
    """A database relation as the postgresql charm (16/stable) fills it."""
    remote = {"database": "hockeypuck", "endpoints": endpoints, "version": "16.9", **extra}
    if secret is not None:
        remote["secret-user"] = secret.id
    return testing.Relation("database", remote_app_name="postgresql", remote_app_data=remote)


EMPTY_SNAP = Path(__file__).parent / "empty.snap"


def base_state(**kwargs: Any) -> testing.State:
    """A unit as deployed from Charmhub: the snap resource is the empty placeholder."""
    kwargs.setdefault("resources", {testing.Resource(name="hockeypuck-snap", path=EMPTY_SNAP)})
    return testing.State(**kwargs)


def ready_state(*extra_relations: testing.RelationBase, **kwargs: Any) -> testing.State:
    """A unit with a database relation whose credentials have arrived, and other relations."""
    secret = user_secret()
    kwargs.setdefault("relations", {db_relation(secret), *extra_relations})
    kwargs.setdefault("secrets", {secret})
    return base_state(**kwargs)


def config_file(root: Path) -> Path:
    return root / snap_layout.CONFIG_FILE.relative_to("/")
