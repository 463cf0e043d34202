"""Hockeypuck on this machine: the snap, its config file and its systemd service.

No Juju here: the charm tells this class what it wants, and it raises its own errors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from charmlibs import snap, systemd

import config_check
import hkp_client
import snap_layout
from parsing import is_valid_host, one_line, printable

logger = logging.getLogger(__name__)
# charmlibs.systemd logs every systemctl call at DEBUG; in a hook each log line is a juju-log
# process, which doubles the cost of a no-op hook.
logging.getLogger("charmlibs.systemd").setLevel(logging.INFO)

SERVICE_DROP_IN = """\
# Written by the hockeypuck charm. Hockeypuck exits at once when PostgreSQL is unreachable
# at start-up (and one of two nodes starting together on an empty database), so keep trying.
[Unit]
StartLimitIntervalSec=0

[Service]
Restart=on-failure
RestartSec=5s
"""


# Seconds to wait after a (re)start before checking the daemon stayed up (RestartSec is 5).
SETTLE_SECONDS = 3.0
# Seconds a unit restarted in its turn of a rolling restart waits for `/pks/health`.
HEALTH_TIMEOUT = 120.0
LOCAL_REVISION_PREFIX = "x"  # snapd's revisions of snaps installed from a file: x1, x2, ...
CONFIG_MODE = 0o600  # the config file holds the database password
PROBE_TIMEOUT = 5.0  # seconds the local HKP port has to answer the serving check
# After a (re)start, how long the daemon may take to listen (it connects to PostgreSQL and
# creates its schema first); on other hooks the serving check asks once.
STARTUP_GRACE_SECONDS = 30.0
_REVISION = re.compile(r"x?[0-9]+")
_BLOCKED_FINGERPRINT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_VERSION_LENGTH = 64


LOGROTATE_CONFIG = f"""\
# Written by the hockeypuck charm: Hockeypuck's log file (shared with the COS collector).
{snap_layout.LOG_FILE} {{
    daily
    rotate 7
    maxsize 100M
    compress
    delaycompress
    missingok
    notifempty
    copytruncate
}}
"""


class WorkloadError(Exception):
    """Hockeypuck cannot be brought to the wanted state on this machine."""


class SnapError(WorkloadError):
    """The snap could not be installed, refreshed or queried."""


class ServiceError(WorkloadError):
    """The systemd service could not be managed, or does not stay up."""


class ToolError(WorkloadError):
    """One of the snap's offline tools (pbuild, load, dump) failed."""


class FileWriteError(WorkloadError):
    """A file of the charm or of the daemon cannot be written (a full disk, say)."""


class ConfigNotWrittenError(WorkloadError):
    """The rendered config is not one Hockeypuck could read: the old file is kept."""


class DatabaseUnreachableError(WorkloadError):
    """Hockeypuck runs but cannot use its database with the credentials it was given."""


class Hockeypuck:
    """The Hockeypuck snap, config file and service, under a file-system root."""

    # Where the daemon serves HKP on this machine (the serving check asks there).
    hkp_address: tuple[str, int] = (hkp_client.DEFAULT_HOST, snap_layout.HKP_PORT)

    def __init__(self, root: Path = Path("/")):
        self._root = root
        self._state_dir = root / "var/lib/hockeypuck-charm"
        self.template_cache_dir = self._state_dir / "template-cache"
        self.config_path = self._host_path(snap_layout.CONFIG_FILE)
        self.prefix_tree = self._host_path(snap_layout.PREFIX_TREE)
        self._store_config_link = self._host_path(snap_layout.STORE_SNAP_CONFIG_FILE)
        self._logrotate = root / "etc/logrotate.d" / snap_layout.SNAP_NAME
        self._drop_in = (
            root / "etc/systemd/system" / f"{snap_layout.SERVICE}.d" / "10-hockeypuck-charm.conf"
        )
        self._started = False  # (re)started by this process: it may not listen yet

    def _host_path(self, daemon_path: PurePosixPath) -> Path:
        return self._root / daemon_path.relative_to("/")

    @property
    def common_dir(self) -> Path:
        """The snap's common directory ($SNAP_COMMON) on this machine's file system."""
        return self._host_path(snap_layout.SNAP_COMMON)

    # The snap

    def installed_revision(self) -> str | None:
        """The snap revision this charm last installed, without asking snapd (cheap).

        None also when the record is unreadable: the next install writes it again.
        """
        return _read_state(self._state_dir / "snap-revision", _REVISION.fullmatch)

    def web_layout(self) -> tuple[PurePosixPath, PurePosixPath] | None:
        """Where the installed snap has its HTML templates and web root, or None if nowhere."""
        for templates, webroot in snap_layout.WEB_LAYOUTS:
            if (self._host_path(templates) / "index.html.tmpl").is_file():
                return templates, webroot
        return None

    def installed_version(self) -> str:
        """Hockeypuck's version in the snap this charm last installed ("" if unknown)."""
        version = _read_state(
            self._state_dir / "snap-version", lambda text: printable(text, MAX_VERSION_LENGTH)
        )
        return version or ""

    def _snapd_info(self) -> snap.InstalledInfo | None:
        try:
            return snap.list_one(snap_layout.SNAP_NAME)
        except snap.NotInstalledError:
            return None
        except snap.Error as error:
            raise SnapError(f"cannot query snapd: {error}") from error

    def install(
        self, channel: str, resource: Path | None, update: bool = False
    ) -> snap.InstalledInfo:
        """Install or refresh the snap from the resource file, else the channel; hold refreshes.

        With `update`, a snap already on the channel moves to the channel's newest revision.

        Returns:
            The installed snap.
        """
        before = self._snapd_info()
        # Until this install succeeds, the next hook must try again (not trust the old record).
        _remove(self._state_dir / "snap-revision")
        try:
            if resource is not None:
                self._install_file(resource, installed=before is not None)
            elif before is not None and before.revision.startswith(LOCAL_REVISION_PREFIX):
                # snapd moves a snap installed from a file to the store only with --amend (and
                # a file install keeps the tracked channel, so ensure_installed sees no change).
                self._snap_cli("refresh", "--amend", f"--channel={channel}", snap_layout.SNAP_NAME)
                _remove(self._state_dir / "snap-resource.sha256")
            else:
                snap.ensure_installed(snap_layout.SNAP_NAME, channel=channel, update=update)
            snap.hold(snap_layout.SNAP_NAME)
        except snap.Error as error:
            raise SnapError(
                f"cannot install the {snap_layout.SNAP_NAME} snap: {one_line(str(error))}"
            ) from error
        after = self._snapd_info()
        if after is None:
            raise SnapError(f"the {snap_layout.SNAP_NAME} snap is not installed after install")
        self._write_drop_in()
        self._set_up_log_file(after)
        _ensure_gnupg()
        if before is None or before.revision != after.revision:
            logger.info("hockeypuck snap now at revision %s (%s)", after.revision, after.version)
            if before is not None and self.is_running():
                # snapd restarted the daemon with the config on disk: that is what now runs.
                self._record_applied(self._read_config(), after.revision)
        _write_atomic(self._state_dir / "snap-version", after.version, mode=0o644)
        _write_atomic(self._state_dir / "snap-revision", after.revision, mode=0o644)
        return after

    def refresh_restarts(self, channel: str, resource: Path | None, update: bool) -> bool:
        """Whether `install` would refresh the snap under a running daemon (snapd restarts it).

        `update` (upgrade-charm) may bring a new revision or not: counted as a refresh.
        """
        installed = self._snapd_info()
        if installed is None or not self.is_running():
            return False
        if resource is not None:
            return not self._resource_installed(resource)
        if installed.revision.startswith(LOCAL_REVISION_PREFIX):
            return True  # back from the attached file to the store
        return update or installed.tracking != channel

    def _resource_installed(self, resource: Path) -> bool:
        """Whether this very file is the snap installed last (by its SHA-256)."""
        return _read_text(self._state_dir / "snap-resource.sha256") == _file_digest(resource)

    def _install_file(self, resource: Path, installed: bool) -> None:
        if installed and self._resource_installed(resource):
            return
        self._snap_cli("install", "--dangerous", str(resource))
        _write_atomic(self._state_dir / "snap-resource.sha256", _file_digest(resource), 0o644)

    def _set_up_log_file(self, installed: snap.InstalledInfo) -> None:
        """Log to a rotated file when the snap shares one through its `logs` slot."""
        record = self._state_dir / "log-file"
        if f"{snap_layout.SNAP_NAME}:{snap_layout.LOG_SLOT}" not in snap_log_slots(self._root):
            _remove(record)
            return
        _make_directory(self._host_path(snap_layout.LOG_DIR))
        if _read_text(self._logrotate) != LOGROTATE_CONFIG:
            _write_atomic(self._logrotate, LOGROTATE_CONFIG, mode=0o644)
        _write_atomic(record, str(snap_layout.LOG_FILE), mode=0o644)
        logger.info("snap revision %s shares its log: logging to a file", installed.revision)

    def machine_hostname(self, refresh: bool = False) -> str:
        """This machine's fully qualified name, looked up once and remembered (DNS can be slow).

        With `refresh`, looked up again (install, config-changed and upgrade hooks).
        """
        record = self._state_dir / "hostname"
        cached = None if refresh else _read_state(record, is_valid_host)
        if cached:
            return cached
        import socket  # noqa: PLC0415 - only when the name is looked up

        name = socket.getfqdn() or socket.gethostname()
        if _read_text(record) != name:
            _write_atomic(record, name, mode=0o644)
        return name

    def log_file(self) -> str | None:
        """The daemon's log file, or None: it logs to the journal (or the record is unusable)."""
        return _read_state(self._state_dir / "log-file", str(snap_layout.LOG_FILE).__eq__)

    def _snap_cli(self, *args: str) -> None:
        """Run the snap command for what the snapd library does not offer (local files)."""
        command = ["snap", *args]
        what = " ".join(command[:3])
        try:
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
        except subprocess.CalledProcessError as error:
            reason = (
                error.stderr or error.stdout or ""
            ).strip() or f"exit code {error.returncode}"
            raise SnapError(f"{what} failed: {one_line(reason)}") from error
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SnapError(f"{what} failed: {one_line(str(error))}") from error

    def _write_drop_in(self) -> None:
        if _read_text(self._drop_in) == SERVICE_DROP_IN:
            return
        _write_atomic(self._drop_in, SERVICE_DROP_IN, mode=0o644)
        try:
            systemd.daemon_reload()
        except systemd.SystemdError as error:
            raise ServiceError(
                f"systemctl daemon-reload failed: {_systemd_reason(error)}"
            ) from error

    # The config file

    def write_config(self, content: str) -> bool:
        """Write hockeypuck.conf (mode 0600, atomically) when its content differs.

        The content is replaced only if Hockeypuck can read it.

        Returns:
            Whether the file changed.

        Raises:
            ConfigNotWrittenError: Hockeypuck could not read the new content; the old file stays.
            FileWriteError: the file could not be written.
        """
        self._link_store_config()
        if self._read_config() == content:
            return False
        problem = config_check.problem(content)
        if problem is not None:
            raise ConfigNotWrittenError(
                f"not writing {snap_layout.CONFIG_FILE.name}, Hockeypuck could not read it: "
                f"{one_line(problem)}"
            )
        _write_atomic(self.config_path, content, mode=CONFIG_MODE)
        logger.info("wrote %s", self.config_path)
        return True

    def enforce_config_mode(self) -> None:
        """Set the config file's mode back to 0600 if someone loosened it (every hook)."""
        try:
            mode = stat.S_IMODE(self.config_path.stat().st_mode)
            if mode != CONFIG_MODE:
                os.chmod(self.config_path, CONFIG_MODE)
                logger.warning(
                    "%s had mode %o, set back to %o", self.config_path, mode, CONFIG_MODE
                )
        except FileNotFoundError:
            return
        except OSError as error:
            raise FileWriteError(
                f"cannot set the mode of {self.config_path}: {_os_reason(error)}"
            ) from error

    def write_config_for(self, key: str, render: Callable[[], str]) -> bool:
        """Write the config rendered for `key`, rendering only when the key changed.

        The file on disk is checked too, so a hand edit is still put right.

        Returns:
            Whether the file changed.
        """
        record = self._state_dir / "rendered.json"
        content = self._read_config()
        if content is not None and _read_json(record) == {"key": key, "config": _digest(content)}:
            self._link_store_config()
            return False
        changed = self.write_config(render())
        record_content = {"key": key, "config": _digest(self._read_config() or "")}
        _write_atomic(record, json.dumps(record_content), mode=0o600)
        return changed

    def _read_config(self) -> str | None:
        return _read_text(self.config_path)

    def _link_store_config(self) -> None:
        """Point the store snap's `config` at hockeypuck.conf, so either snap reads it."""
        link = self._store_config_link
        target = self.config_path.name
        try:
            if link.is_symlink() and os.readlink(link) == target:
                return
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target)
        except OSError as error:
            raise FileWriteError(f"cannot link {link}: {_os_reason(error)}") from error

    # The service

    def needs_restart(self, revision: str) -> bool:
        """Whether the running service runs another config or snap revision than wanted.

        Never before the charm first started it: whatever snapd started at install is not
        serving this application yet, so starting it properly is no restart.
        """
        content = self._read_config()
        applied = self._applied()
        if content is None or applied is None or applied == _wanted(content, revision):
            return False
        return self.is_running()

    def wait_serving(self) -> None:
        """Wait until the daemon answers `/pks/health`.

        Raises:
            ServiceError: it does not within HEALTH_TIMEOUT seconds.
        """
        import hkp_client  # noqa: PLC0415 - only for a restart in a rolling restart

        try:
            wait_healthy(HEALTH_TIMEOUT)
        except hkp_client.ServiceNotReadyError as error:
            raise ServiceError(
                f"restarted, but no answer on {snap_layout.HEALTH_PATH} within"
                f" {HEALTH_TIMEOUT:.0f} s: the other units wait to restart ({error})"
            ) from error

    def ensure_running(self, revision: str) -> bool:
        """Run the service with the config on disk, restarting only if it runs something else.

        Returns:
            Whether the service was restarted to apply a change.

        Raises:
            ServiceError: systemd failed, or the service is not running afterwards.
        """
        content = self._read_config()
        if content is None:
            raise ServiceError(f"{self.config_path} does not exist")
        restarted = self._applied() != _wanted(content, revision)
        try:
            if restarted:
                systemd.service_enable(snap_layout.SERVICE)
                systemd.service_restart(snap_layout.SERVICE)
                self._record_applied(content, revision)
            elif systemd.service_running(snap_layout.SERVICE):
                return False
            else:
                systemd.service_enable(snap_layout.SERVICE)
                systemd.service_start(snap_layout.SERVICE)
        except systemd.SystemdError as error:
            raise ServiceError(
                f"cannot start {snap_layout.SERVICE}: {_systemd_reason(error)}"
            ) from error
        # systemd calls a simple service started as soon as it runs; Hockeypuck exits within
        # milliseconds when PostgreSQL refuses it, so look again once it had time to fail.
        self._started = True
        settle()
        if not self.is_running():
            raise ServiceError(f"{snap_layout.SERVICE} is not running")
        return restarted

    def check_serving(self) -> None:
        """Ask the running daemon one lookup: it answers HKP, and its database works.

        `/pks/health` stays 200 when PostgreSQL is gone; a lookup of a key nobody has answers
        404 when the database works and 500 when it does not (dropped role, revoked password).

        Raises:
            ServiceError: nothing answers on the HKP port.
            DatabaseUnreachableError: Hockeypuck answers, but its database fails it.
        """
        host, port = self.hkp_address
        client = hkp_client.HkpClient(host, port, timeout=PROBE_TIMEOUT)
        deadline = time.monotonic() + (STARTUP_GRACE_SECONDS if self._started else 0.0)
        while True:
            try:
                client.check_database()
                return
            except hkp_client.ServiceNotReadyError as error:
                if time.monotonic() >= deadline:
                    raise ServiceError(
                        f"the HKP port does not serve: {one_line(str(error))}"
                    ) from error
                time.sleep(1.0)
            except hkp_client.ServerError as error:
                raise DatabaseUnreachableError(one_line(str(error))) from error
            except hkp_client.HkpError as error:
                raise ServiceError(
                    f"the HKP port does not serve: {one_line(str(error))}"
                ) from error

    def stop(self) -> None:
        """Stop and disable the service, so it does not crash-loop without a database."""
        self.pause()
        try:
            systemd.service_disable(snap_layout.SERVICE)
        except systemd.SystemdError as error:
            raise ServiceError(
                f"cannot stop {snap_layout.SERVICE}: {_systemd_reason(error)}"
            ) from error

    def pause(self) -> None:
        """Stop the service for an offline tool, leaving it enabled if the charm runs it."""
        try:
            if systemd.service_running(snap_layout.SERVICE):
                systemd.service_stop(snap_layout.SERVICE)
        except systemd.SystemdError as error:
            raise ServiceError(
                f"cannot stop {snap_layout.SERVICE}: {_systemd_reason(error)}"
            ) from error

    def resume(self) -> bool:
        """After an offline tool: start the service again, unless the charm had stopped it.

        The charm disables the service when it stops it on purpose (no database relation), so
        a disabled service stays stopped.

        Returns:
            Whether the service was started.
        """
        if not self.is_enabled():
            logger.info("leaving %s stopped, as the charm wants it", snap_layout.SERVICE)
            return False
        try:
            systemd.service_start(snap_layout.SERVICE)
        except systemd.SystemdError as error:
            raise ServiceError(
                f"cannot start {snap_layout.SERVICE}: {_systemd_reason(error)}"
            ) from error
        return True

    def is_enabled(self) -> bool:
        """Whether systemd starts the service at boot: the charm wants it running."""
        command = ["systemctl", "--quiet", "is-enabled", snap_layout.SERVICE]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
        except (OSError, subprocess.SubprocessError) as error:
            raise ServiceError(
                f"cannot ask systemd about {snap_layout.SERVICE}: {error}"
            ) from error
        return done.returncode == 0

    def run_tool(self, app: str, *args: str) -> str:
        """Run one of the snap's tools (the service must be stopped: they lock the tree).

        Returns:
            What the tool printed (stdout and stderr).
        """
        command = ["snap", "run", f"{snap_layout.SNAP_NAME}.{app}", *args]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            raise ToolError(f"cannot run {app}: {error}") from error
        output = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            raise ToolError(f"{app} failed: {tool_error(done.stderr, done.returncode)}")
        return output

    def cached_blocklist(self) -> tuple[str, ...] | None:
        """The block list as last read from the database (lower-case fingerprints).

        Empty before the first read; None when the record is damaged (read it again).
        """
        path = self._state_dir / "blocklist.json"
        cached = _read_json(path)
        if cached is None and not path.exists():
            return ()
        if not isinstance(cached, list) or not all(
            isinstance(item, str) and _BLOCKED_FINGERPRINT.fullmatch(item) for item in cached
        ):
            return None
        return tuple(cached)

    def cache_blocklist(self, fingerprints: tuple[str, ...]) -> None:
        """Remember the block list, so hooks that do not read the database can render it.

        Rows that are not fingerprints (written by hand: `0x` prefixes, spaces, any text) are
        left out and logged: Hockeypuck could not use them either.
        """
        usable = tuple(item for item in fingerprints if _BLOCKED_FINGERPRINT.fullmatch(item))
        if len(usable) != len(fingerprints):
            unusable = [item for item in fingerprints if item not in usable]
            logger.warning("block-list rows that are not fingerprints, ignored: %r", unusable)
        fingerprints = usable
        path = self._state_dir / "blocklist.json"
        if self.cached_blocklist() != fingerprints or not path.exists():
            _write_atomic(path, json.dumps(fingerprints), 0o600)

    def is_running(self) -> bool:
        """Whether systemd reports the service active."""
        return systemd.service_running(snap_layout.SERVICE)

    def _applied(self) -> dict[str, str] | None:
        record = _read_json(self._state_dir / "applied.json")
        if not isinstance(record, dict) or set(record) != {"config", "revision"}:
            return None
        return {key: str(value) for key, value in record.items()}

    def _record_applied(self, content: str | None, revision: str) -> None:
        record = _wanted(content or "", revision)
        _write_atomic(self._state_dir / "applied.json", json.dumps(record), mode=0o600)


_LOG_LINE = re.compile(r'(^|\s)level=(\w+)\s.*?msg="?(.*?)"?(\s+\w+=|$)')


def snap_log_slots(root: Path) -> list[str]:
    """`<snap>:<slot>` for each content slot of the installed snap named `logs` or `*-logs`.

    Read from the installed snap's `meta/snap.yaml`; no snap, or no such slot: [].
    """
    import yaml  # noqa: PLC0415 - only when the snap changes or COS asks

    path = root / snap_layout.SNAP_YAML.relative_to("/")
    try:
        meta = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        logger.debug("no snap metadata to look for log slots in: %s", error)
        return []
    slots = meta.get("slots") if isinstance(meta, dict) else None
    if not isinstance(slots, dict):
        return []
    return sorted(
        f"{snap_layout.SNAP_NAME}:{name}"
        for name, slot in slots.items()
        if isinstance(slot, dict)
        and slot.get("interface") == "content"
        and (name == snap_layout.LOG_SLOT or str(name).endswith(f"-{snap_layout.LOG_SLOT}"))
    )


def _ensure_gnupg() -> None:
    """Install GnuPG if the machine lacks it (the admin key is made with it); log failures.

    Serving keys does not need it, so a failure only shows when a key must be deleted.
    """
    if shutil.which("gpg") is not None:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", "gnupg"]
    try:
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    except (OSError, subprocess.SubprocessError) as error:
        logger.warning("cannot install gnupg (block-keys needs it): %s", error)


def settle() -> None:
    """Give a just (re)started daemon the time to fail, if it is going to."""
    time.sleep(SETTLE_SECONDS)


def wait_healthy(timeout: float) -> None:
    """Wait until the local daemon answers `/pks/health` (raises ServiceNotReadyError)."""
    import hkp_client  # noqa: PLC0415

    hkp_client.HkpClient().wait_ready(timeout)


def _wanted(content: str, revision: str) -> dict[str, str]:
    """What the running daemon must have been started with: config digest and snap revision."""
    return {"config": _digest(content), "revision": revision}


def tool_error(stderr: str, returncode: int) -> str:
    """The error a Hockeypuck tool died with.

    A dying tool prints its error, then a Go stack trace (frames are a function line and an
    indented file line); before that come its log lines (`level=... msg=...`). The first line
    that is neither is the error; failing that, the last error-level log message.
    """
    logged = []
    for line in stderr.splitlines():
        if not line.strip() or line.startswith(("\t", " ")):
            continue
        entry = _LOG_LINE.search(line)
        if entry is None:
            return line.strip()
        if entry.group(2) in ("error", "fatal", "panic"):
            logged.append(entry.group(3))
    return logged[-1] if logged else f"exit code {returncode}"


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise SnapError(f"cannot read the snap resource: {one_line(str(error))}") from error


def _digest(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def _read_text(path: Path) -> str | None:
    """The file's text; None when it is missing or cannot be read as text (logged)."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        logger.warning("cannot read %s, treating it as missing: %s", path, error)
        return None


def _read_state(path: Path, valid: Callable[[str], object]) -> str | None:
    """A one-value state file, or None when missing or not a valid value (logged)."""
    text = _read_text(path)
    if text is None:
        return None
    if not valid(text):
        logger.warning("ignoring %s: %s is not a valid value", path, one_line(repr(text), 60))
        return None
    return text


def _read_json(path: Path) -> object:
    """A JSON state file's value, or None when missing or damaged (logged)."""
    text = _read_text(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        logger.warning("ignoring %s: not JSON (%s)", path, error)
        return None


def _os_reason(error: OSError) -> str:
    return one_line(error.strerror or str(error))


def _systemd_reason(error: systemd.SystemdError) -> str:
    """The error systemctl printed (its first stderr line), on one line: not the whole dump."""
    text = str(error)
    _, found, stderr = text.rpartition("stderr:")
    lines = [line for line in (stderr if found else text).splitlines() if line.strip()]
    return one_line(lines[0] if lines else text)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        raise FileWriteError(f"cannot remove {path}: {_os_reason(error)}") from error


def _make_directory(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FileWriteError(f"cannot create {path}: {_os_reason(error)}") from error


def _write_atomic(path: Path, content: str, mode: int) -> None:
    """Write a file so that readers see the old or the new content, never a part.

    Raises:
        FileWriteError: the file could not be written (the old one, if any, is intact).
    """
    _make_directory(path.parent)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as error:
        raise FileWriteError(f"cannot write {path}: {_os_reason(error)}") from error
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "w") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise FileWriteError(f"cannot write {path}: {_os_reason(error)}") from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
