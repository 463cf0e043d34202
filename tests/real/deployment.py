"""Units of the charm on real Hockeypuck daemons: a small stand-in for a Juju model.

Each unit is a test host (its own network namespace) with its own file-system root, fake
snapd and fake `systemctl`; the charm's hooks run in-process through `ops.testing`, in the
unit's network namespace, and the fake `systemctl` starts the real daemon through the
project's snap wrapper in the unit's namespaces (service_supervisor.py). The deployment
carries the relation data between the units' hooks as Juju would: each unit's own databags,
the leader's application data and secrets, and the postgresql charm's answer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import yaml
from charmlibs.snap import _client as snap_client
from ops import testing
from psycopg.conninfo import make_conninfo

import charm
import rolling
import snap_layout
import workload
from blocklist import reversed_fingerprint
from hkp_client import HkpClient
from relations import database, peers, recon
from tests.functional import fake_snap_cli
from tests.functional.fake_snapd import FakeSnapd, write_snap_file
from tests.functional.fake_systemctl import FakeSystemctl
from tests.functional.pg_server import PostgresServer
from tests.real import hockeypuck_build, netns, service_supervisor
from tests.real.netns import Lan, LanHost
from tests.unit.conftest import add_charm_venv

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = "hockeypuck"
SNAP_REVISION = "x1"  # what the fake snapd names the first snap installed from a file
# The recipe's restart-delay and the charm's drop-in RestartSec.
RESTART_DELAY = 5.0
TOOLS = ("load", "dump", "pbuild", "reload")
DB_USER = "relation-3"
# A password that crosses every layer of Hockeypuck's config parsing: Go template, TOML, DSN.
DB_PASSWORD = "p{{w}} \"q\" \\ 'x' #%$"
PEER_RELATION_ID = 1
DB_RELATION_ID = 2
ENDPOINTS = (peers.ENDPOINT, database.ENDPOINT, "haproxy-route", "cos-agent", *recon.ENDPOINTS)
SETTLE_ROUNDS = 6


def charm_root(directory: Path) -> Path:
    """A charm directory like the packed charm's (ops.testing writes into it)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("src", "templates"):
        (directory / name).symlink_to(REPO_ROOT / name)
    add_charm_venv(directory)  # where charmlibs-rollingops looks for its worker
    return directory


class _NoLockWorker:
    """subprocess.Popen, except for the rolling-restart lock's worker process.

    On a machine the worker runs `juju-exec` to dispatch the lock hook to the leader; here the
    deployment runs that hook itself (see `Deployment.roll`).
    """

    def __init__(self, real: Any):
        self._real = real

    def __call__(self, args: Any, *rest: Any, **kwargs: Any) -> Any:
        if isinstance(args, list) and any(str(a).endswith("_rollingops.py") for a in args):
            return _Spawned()
        return self._real(args, *rest, **kwargs)


class _Spawned:
    pid = 2**22 + 1  # above the kernel's pid_max: never a live process


@dataclasses.dataclass(frozen=True)
class Link:
    """A relation between two deployments (`juju integrate a:endpoint b:remote_endpoint`)."""

    relation_id: int
    endpoint: str
    other: Deployment
    remote_endpoint: str


@dataclasses.dataclass
class RealUnit:
    """One unit: its host, machine fakes, charm context and last state."""

    index: int
    host: LanHost
    workdir: Path
    ctx: testing.Context
    systemctl: FakeSystemctl
    snapd: FakeSnapd
    socket: Path
    state: testing.State | None = None
    peer_data: dict[str, str] = dataclasses.field(default_factory=dict)
    # This unit's databag on each relation with another deployment, by relation id.
    link_data: dict[int, dict[str, str]] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        """The Juju unit name."""
        return f"{APP}/{self.index}"

    @property
    def root(self) -> Path:
        """The unit's file-system root as the charm sees it."""
        return self.workdir / "root"

    @property
    def common(self) -> Path:
        """$SNAP_COMMON of the unit's snap."""
        return self.root / snap_layout.SNAP_COMMON.relative_to("/")

    @property
    def config_file(self) -> Path:
        """The hockeypuck.conf the charm wrote."""
        return self.root / snap_layout.CONFIG_FILE.relative_to("/")

    @property
    def daemon_log(self) -> Path:
        """Everything the daemon printed (its stderr, or the log file when it has one)."""
        return self.workdir / "daemon.log"

    def log_text(self) -> str:
        """The daemon's output so far: stderr and, when configured, its log file."""
        parts = [self.daemon_log.read_text(errors="replace") if self.daemon_log.exists() else ""]
        log_file = self.root / snap_layout.LOG_FILE.relative_to("/")
        if log_file.exists():
            parts.append(log_file.read_text(errors="replace"))
        return "\n".join(parts)

    def client(self, timeout: float = 10.0) -> HkpClient:
        """An HKP client for this unit's daemon, from the test host's namespace."""
        return HkpClient(host=self.host.ipv4, timeout=timeout)

    def url(self, path: str, port: int = snap_layout.HKP_PORT) -> str:
        """A URL on this unit."""
        return f"http://{self.host.ipv4}:{port}{path}"

    def get(self, path: str, port: int = snap_layout.HKP_PORT) -> tuple[int, str]:
        """Status and body of a GET on this unit (any status)."""
        try:
            with urllib.request.urlopen(self.url(path, port), timeout=10) as page:  # noqa: S310
                return page.status, page.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def stats(self) -> dict[str, Any]:
        """The stats page as JSON (`op=stats&options=mr`)."""
        status, body = self.get("/pks/lookup?op=stats&options=mr")
        assert status == 200, body
        return json.loads(body)

    def daemon_pid(self) -> int | None:
        """The running daemon's process ID, as its supervisor reports it (None: not running)."""
        state = self.workdir / "systemctl/real" / f"{snap_layout.SERVICE}.state"
        words = state.read_text().split() if state.exists() else []
        return int(words[1]) if len(words) == 2 and words[0] == "running" else None

    def running(self) -> bool:
        """Whether the daemon runs now."""
        unit = self.systemctl.unit(snap_layout.SERVICE)
        if not unit:
            return False
        from tests.functional import fake_systemctl_cli  # noqa: PLC0415

        return fake_systemctl_cli.real_active(str(self.systemctl.state_dir), snap_layout.SERVICE)

    def flush_tree(self) -> None:
        """Make the daemon apply its pending prefix-tree changes now.

        Hockeypuck queues tree changes and applies them when recon next runs (at the next
        gossip, up to a minute away): an incoming recon connection, here one from loopback
        that closes at once, is enough.
        """
        with (
            netns.entered(self.host.netns),
            socket.create_connection(("127.0.0.1", snap_layout.RECON_PORT), timeout=5),
        ):
            pass

    @contextlib.contextmanager
    def machine(self) -> Iterator[None]:
        """Make this process look like the unit's machine while a hook runs."""
        saved_env = {key: os.environ.get(key) for key in ("PATH", "FAKE_SNAP_APPS")}
        saved_socket = snap_client._SOCKET_PATH
        saved_settle = workload.SETTLE_SECONDS
        saved_popen = subprocess.Popen
        subprocess.Popen = _NoLockWorker(saved_popen)  # type: ignore[misc]
        os.environ["PATH"] = f"{self.workdir / 'bin'}{os.pathsep}{saved_env['PATH'] or ''}"
        os.environ["FAKE_SNAP_APPS"] = str(self.workdir / "apps")
        snap_client._SOCKET_PATH = str(self.socket)
        workload.SETTLE_SECONDS = 3.0
        try:
            with netns.entered(self.host.netns):
                yield
        finally:
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            snap_client._SOCKET_PATH = saved_socket
            workload.SETTLE_SECONDS = saved_settle
            subprocess.Popen = saved_popen  # type: ignore[misc]

    def stop(self) -> None:
        """Stop the daemon and the fake snapd (clean-up)."""
        self.systemctl.stop_real(snap_layout.SERVICE)
        self.snapd.stop()


class Deployment:
    """One application of the charm, its database relation, and its units."""

    def __init__(
        self, name: str, lan: Lan, postgres: PostgresServer, workdir: Path, bare: bool = False
    ):
        self.name = name
        self.bare = bare
        self.start_delay = 0.0  # seconds each daemon start takes (before units are added)
        self.lan = lan
        self.postgres = postgres
        self.workdir = workdir
        self.database_name = f"hockeypuck_{name.replace('-', '_')}"
        self.model = testing.Model(name=f"keyserver-{name}")
        self.config: dict[str, str | int | bool] = {}
        self.units: list[RealUnit] = []
        self.links: list[Link] = []
        self.peer_app_data: dict[str, str] = {}
        self.db_app_data: dict[str, str] = {}
        self.app_secrets: list[testing.Secret] = []
        self.db_secret = testing.Secret(
            tracked_content={"username": DB_USER, "password": DB_PASSWORD}
        )
        self.snap_file = write_snap_file(workdir / "hockeypuck.snap")
        self.build = hockeypuck_build.build()
        postgres.create_role(DB_USER, DB_PASSWORD)
        postgres.create_database(self.database_name, owner=DB_USER)

    def conninfo(self) -> str:
        """A libpq connection string for the deployment's database, as its user."""
        return make_conninfo(
            host=self.postgres.host,
            port=self.postgres.port,
            dbname=self.database_name,
            user=DB_USER,
            password=DB_PASSWORD,
            sslmode="disable",
        )

    def stored(self) -> set[str]:
        """Primary fingerprints in the deployment's Hockeypuck `keys` table."""
        with psycopg.connect(self.conninfo()) as connection:
            rows = connection.execute("SELECT rfingerprint FROM keys").fetchall()
        return {reversed_fingerprint(row[0]) for row in rows}

    # Units

    def add_unit(self) -> RealUnit:
        """A new machine with the snap's files in place, not yet installed."""
        index = len(self.units)
        host = self.lan.add_host(f"{self.name}-{index}")
        workdir = self.workdir / f"unit-{index}"
        root = workdir / "root"
        snap_dir = root / "snap" / snap_layout.SNAP_NAME
        hockeypuck_build.install_snap_tree(self.build, snap_dir / SNAP_REVISION, bare=self.bare)
        (snap_dir / "current").symlink_to(SNAP_REVISION)
        (root / "var/snap" / snap_layout.SNAP_NAME / SNAP_REVISION).mkdir(parents=True)
        bin_dir = workdir / "bin"
        bin_dir.mkdir()
        systemctl = FakeSystemctl(workdir / "systemctl")
        systemctl.write_wrapper(bin_dir)
        # A Unix socket path must stay under 108 bytes.
        socket = Path(tempfile.mkdtemp(prefix="hkp-sock-")) / "snapd.socket"
        snapd = FakeSnapd(socket, {}, systemctl=systemctl, root=root)
        snap_cli = [sys.executable, "-S", "-I", fake_snap_cli.__file__, str(socket)]
        snap_cli.append(str(workdir / "snap-cli.log"))
        (bin_dir / "snap").write_text(f'#!/bin/sh\nexec {shlex.join(snap_cli)} "$@"\n')
        (bin_dir / "snap").chmod(0o755)
        spec = self._write_service_spec(host, workdir)
        supervisor = [sys.executable, "-S", "-I", service_supervisor.__file__, str(spec)]
        systemctl.make_real(snap_layout.SERVICE, supervisor)
        apps = workdir / "apps"
        apps.mkdir()
        for app in TOOLS:
            command = f"{snap_layout.SNAP_CURRENT}/{hockeypuck_build.wrapper(app)}"
            script = apps / f"{snap_layout.SNAP_NAME}.{app}"
            script.write_text(
                f'#!/bin/sh\nexec {shlex.join([*supervisor, "--once", command])} "$@"\n'
            )
            script.chmod(0o755)
        snapd.start()
        charm_type = type(f"Unit{index}Charm", (charm.HockeypuckCharm,), {"workload_root": root})
        ctx = testing.Context(
            charm_type,
            meta=yaml.safe_load((REPO_ROOT / "charmcraft.yaml").read_text()),
            charm_root=charm_root(workdir / "charm"),
            app_name=APP,
            unit_id=index,
        )
        unit = RealUnit(index, host, workdir, ctx, systemctl, snapd, socket)
        self.units.append(unit)
        return unit

    def _write_service_spec(self, host: LanHost, workdir: Path) -> Path:
        root = workdir / "root"
        snap_data = snap_layout.SNAP_COMMON.parent / SNAP_REVISION
        spec = {
            "netns": host.netns,
            "mounts": [
                [str(root / "snap" / snap_layout.SNAP_NAME), f"/snap/{snap_layout.SNAP_NAME}"],
                [
                    str(root / "var/snap" / snap_layout.SNAP_NAME),
                    f"/var/snap/{snap_layout.SNAP_NAME}",
                ],
            ],
            "argv": [f"{snap_layout.SNAP_CURRENT}/{hockeypuck_build.wrapper('hockeypuck')}"],
            "env": {
                "SNAP": str(snap_layout.SNAP_CURRENT.parent / SNAP_REVISION),
                "SNAP_COMMON": str(snap_layout.SNAP_COMMON),
                "SNAP_DATA": str(snap_data),
                "SNAP_NAME": snap_layout.SNAP_NAME,
                "SNAP_INSTANCE_NAME": snap_layout.SNAP_NAME,
                "SNAP_REVISION": SNAP_REVISION,
                "HOME": "/root",
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            },
            "cwd": str(snap_data),
            "restart_delay": RESTART_DELAY,
            "start_delay": self.start_delay,
            "state": str(workdir / "systemctl/real" / f"{snap_layout.SERVICE}.state"),
            "log": str(workdir / "daemon.log"),
        }
        path = workdir / "service.json"
        path.write_text(json.dumps(spec, indent=1))
        return path

    # Hooks

    def _networks(self, unit: RealUnit) -> set[testing.Network]:
        subnet = f"{unit.host.ipv4.rsplit('.', 1)[0]}.0/24"
        address = testing.BindAddress([testing.Address(unit.host.ipv4, cidr=subnet)])
        return {
            testing.Network(
                endpoint,
                bind_addresses=[address],
                ingress_addresses=[unit.host.ipv4],
                egress_subnets=[f"{unit.host.ipv4}/32"],
            )
            for endpoint in ENDPOINTS
        }

    def _state(self, unit: RealUnit) -> testing.State:
        leader = unit.index == 0
        peer = testing.PeerRelation(
            peers.ENDPOINT,
            id=PEER_RELATION_ID,
            local_app_data=dict(self.peer_app_data),
            local_unit_data=dict(unit.peer_data),
            peers_data={
                other.index: dict(other.peer_data) for other in self.units if other is not unit
            },
        )
        db = testing.Relation(
            database.ENDPOINT,
            id=DB_RELATION_ID,
            remote_app_name="postgresql",
            local_app_data=dict(self.db_app_data) if leader else {},
            remote_app_data={
                "database": self.database_name,
                "endpoints": f"{self.postgres.host}:{self.postgres.port}",
                "version": "16.2",
                "secret-user": self.db_secret.id,
            },
        )
        previous = unit.state
        return testing.State(
            config=dict(self.config),
            leader=leader,
            relations={peer, db, *(self._link_relation(unit, link) for link in self.links)},
            networks=self._networks(unit),
            secrets={self.db_secret, *self.app_secrets},
            resources={testing.Resource(name=charm.SNAP_RESOURCE, path=self.snap_file)},
            planned_units=len(self.units),
            model=self.model,
            stored_states=previous.stored_states if previous else (),
            opened_ports=previous.opened_ports if previous else (),
            unit_status=previous.unit_status if previous else testing.UnknownStatus(),
            workload_version=previous.workload_version if previous else "",
        )

    def _link_relation(self, unit: RealUnit, link: Link) -> testing.Relation:
        """The unit's view of a relation with another deployment, as Juju would give it."""
        return testing.Relation(
            link.endpoint,
            id=link.relation_id,
            remote_app_name=link.other.name,
            remote_model_uuid=link.other.model.uuid,
            local_unit_data=dict(unit.link_data.get(link.relation_id, {})),
            remote_units_data={
                other.index: {
                    **other.link_data.get(link.relation_id, {}),
                    "egress-subnets": f"{other.host.ipv4}/32",
                    "ingress-address": other.host.ipv4,
                    "private-address": other.host.ipv4,
                }
                for other in link.other.units
            },
        )

    def integrate(self, endpoint: str, other: Deployment, remote_endpoint: str) -> None:
        """`juju integrate self:endpoint other:remote_endpoint` (cross-model: each its own)."""
        relation_id = 100 + len(self.links) + len(other.links)
        self.links.append(Link(relation_id, endpoint, other, remote_endpoint))
        other.links.append(Link(relation_id, remote_endpoint, self, endpoint))
        for deployment in (self, other):
            for unit in deployment.units:
                deployment.hook(unit, "relation_created", _endpoint(deployment, relation_id))
        settle(self, other)

    def run(
        self, unit: RealUnit, event: Callable[[testing.Context, testing.State], Any]
    ) -> testing.State:
        """Run one hook on the unit and keep what it wrote where Juju would."""
        state = self._state(unit)
        with unit.machine():
            out = unit.ctx.run(event(unit.ctx, state), state)
        self._keep(unit, out)
        return out

    def _keep(self, unit: RealUnit, out: testing.State) -> None:
        unit.state = out
        peer = out.get_relation(PEER_RELATION_ID)
        unit.peer_data = dict(peer.local_unit_data)
        for link in self.links:
            relation = out.get_relation(link.relation_id)
            unit.link_data[link.relation_id] = dict(relation.local_unit_data)
        if unit.index == 0:
            self.peer_app_data = dict(peer.local_app_data)
            self.db_app_data = dict(out.get_relation(DB_RELATION_ID).local_app_data)
            self.app_secrets = [secret for secret in out.secrets if secret.owner == "app"]

    def hook(
        self, unit: RealUnit, name: str, endpoint: str | None = None, remote: int = 0
    ) -> testing.State:
        """Run a hook by name (`install`, `config_changed`...; relation hooks need `endpoint`)."""

        def event(ctx: testing.Context, state: testing.State) -> Any:
            factory = getattr(ctx.on, name)
            if endpoint is None:
                return factory()
            (relation, *_) = state.get_relations(endpoint)
            if name == "relation_created":
                return factory(relation)
            return factory(relation, remote_unit=remote)

        return self.run(unit, event)

    def action(self, unit: RealUnit, name: str, **params: Any) -> dict[str, Any]:
        """Run an action on the unit; its results (testing.ActionFailed when it fails)."""
        self.run(unit, lambda ctx, _: ctx.on.action(name, params=params))
        return dict(unit.ctx.action_results or {})

    # Life cycle

    def deploy(self, units: int) -> None:
        """`juju deploy -n units` with the database relation: bring every unit up."""
        for _ in range(units):
            self.add_unit()
        self.start()

    def start(self) -> None:
        """Bring up every unit added so far (the leader first), then let relation data settle."""
        for unit in self.units:
            if unit.state is None:
                self.bring_up(unit)
        self.settle()

    def bring_up(self, unit: RealUnit) -> None:
        """The first hooks of a new unit."""
        self.hook(unit, "install")
        if unit.index == 0:
            self.hook(unit, "leader_elected")
        self.hook(unit, "config_changed")
        self.hook(unit, "start")
        self.hook(unit, "relation_created", peers.ENDPOINT)
        self.hook(unit, "relation_changed", database.ENDPOINT)

    def settle(self) -> None:
        """Deliver peer relation data and run rolling restarts until nothing changes.

        Relation-changed on every unit for every other (as Juju would deliver), then the
        rolling restart's hooks until no unit holds or asks for the lock.
        """
        for _ in range(SETTLE_ROUNDS):
            before = self.databags()
            for unit in self.units:
                for other in self.units:
                    if other is not unit:
                        self.hook(unit, "relation_changed", peers.ENDPOINT, other.index)
            self.roll()
            if self.databags() == before:
                return
        raise AssertionError(f"{self.name}: relation data did not settle")

    def roll(self, limit: int = 30, each: Callable[[], None] | None = None) -> None:
        """The hooks Juju runs for a rolling restart, until no unit holds or asks for the lock.

        The leader grants the lock in its peer relation-changed; a granted unit restarts in
        its next one and releases; the leader's own turn comes with the lock worker's hook,
        here an update-status. `each` runs after every hook (a probe, say).
        """
        leader = self.units[0]
        for _ in range(limit):
            granted = self.peer_app_data.get(rolling.GRANTED_KEY, "")
            asking = any(
                unit.peer_data.get(rolling.INTENT_KEY, "") not in rolling.IDLE_INTENTS
                for unit in self.units
            )
            if not granted and not asking:
                return
            index = int(granted.rsplit("/", 1)[1]) if granted else leader.index
            if index == leader.index:
                self.hook(leader, "update_status")
            else:
                self.hook(self.units[index], "relation_changed", peers.ENDPOINT, leader.index)
                if each is not None:
                    each()
                self.hook(leader, "relation_changed", peers.ENDPOINT, index)
            if each is not None:
                each()
        raise AssertionError(f"{self.name}: the rolling restart did not finish")

    def databags(self) -> str:
        return json.dumps(
            [self.peer_app_data, *((u.peer_data, u.link_data) for u in self.units)],
            sort_keys=True,
            default=str,
        )

    def deliver_links(self) -> None:
        """relation-changed on every unit for every remote unit of every link."""
        for link in self.links:
            for unit in self.units:
                for other in link.other.units:
                    self.hook(unit, "relation_changed", link.endpoint, other.index)

    def configure(self, **options: str | int | bool) -> None:
        """`juju config`: config-changed on every unit, then relation data settles."""
        self.config.update({key.replace("_", "-"): value for key, value in options.items()})
        for unit in self.units:
            self.hook(unit, "config_changed")
        self.settle()

    def statuses(self) -> dict[str, Any]:
        """Each unit's last status."""
        return {unit.name: unit.state.unit_status for unit in self.units if unit.state}

    def stop(self) -> None:
        """Stop every daemon and fake snapd."""
        for unit in self.units:
            unit.stop()
            shutil.rmtree(unit.socket.parent, ignore_errors=True)


def _endpoint(deployment: Deployment, relation_id: int) -> str:
    return next(link.endpoint for link in deployment.links if link.relation_id == relation_id)


def settle(*deployments: Deployment) -> None:
    """Deliver relation data between linked deployments until nothing changes."""
    for _ in range(SETTLE_ROUNDS):
        before = [deployment.databags() for deployment in deployments]
        for deployment in deployments:
            deployment.deliver_links()
            deployment.settle()
        if [deployment.databags() for deployment in deployments] == before:
            return
    raise AssertionError("relation data between the deployments did not settle")


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.5) -> float:
    """Poll until the condition holds; seconds it took (AssertionError after `timeout`)."""
    start = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(step)
