"""A throwaway PostgreSQL server for the functional tests: loopback only, SCRAM passwords."""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

SUPERUSER = "postgres"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _version(bin_dir: str) -> tuple[int, ...]:
    """The server version of a bin directory (`postgres --version`), (0,) if it does not run."""
    try:
        output = subprocess.run(
            [os.path.join(bin_dir, "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return (0,)
    match = re.search(r"\) ([0-9]+(?:\.[0-9]+)*)", output)
    return tuple(int(part) for part in match.group(1).split(".")) if match else (0,)


def pgserver_bin_dir() -> str | None:
    """PostgreSQL 16 from the `pgserver` wheel (a test dependency), found without importing it."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(next(iter(spec.submodule_search_locations)), "pginstall", "bin")


def find_bin_dir() -> Path | None:
    """The bin directory of the newest PostgreSQL with initdb, pg_ctl and postgres, or None.

    The postgresql charm runs PostgreSQL 16: the `pgserver` wheel brings it where the machine's
    packages are older (Debian 12 has 15).
    """
    candidates = [os.path.dirname(path) for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    bundled = pgserver_bin_dir()
    if bundled:
        candidates.append(bundled)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(os.path.dirname(os.path.realpath(on_path)))
    candidates.sort(key=_version, reverse=True)
    for candidate in candidates:
        directory = Path(candidate)
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, run as a non-root OS user."""

    def __init__(self, bin_dir: Path, host: str = "127.0.0.1", clients: str = "127.0.0.1/32"):
        self.bin_dir = bin_dir
        self.host = host
        self.clients = clients
        self.port = 0
        self.superuser_password = secrets.token_urlsafe(24)
        self._base = Path(tempfile.mkdtemp(prefix="hockeypuck-functional-pg-"))
        self.data_dir = self._base / "data"
        self.log_file = self._base / "postgresql.log"
        self._run_as: str | None = None
        self._admin: psycopg.Connection | None = None
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root.
            self._run_as = "postgres" if _user_exists("postgres") else "nobody"
            owner = pwd.getpwnam(self._run_as)
            os.chown(self._base, owner.pw_uid, owner.pw_gid)
            self.bin_dir = self._reachable_bin_dir(bin_dir)
        self._base.chmod(0o700)

    def _reachable_bin_dir(self, bin_dir: Path) -> Path:
        """The binaries where the server's user can run them.

        A wheel's copy lives in a virtual environment that may sit in a directory only root
        can enter (a CI checkout in a private temporary directory): copy its installation tree
        (bin, lib, share) into the cluster's own directory then.
        """
        probe = self._command("test", "-x", str(bin_dir / "postgres"))
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return bin_dir
        install = bin_dir.parent  # <site>/pgserver/pginstall
        site = install.parent.parent
        copied_site = self._base / "site"
        target = copied_site / install.relative_to(site)
        shutil.copytree(install, target, symlinks=True)
        # The wheel's shared libraries, found through RPATH $ORIGIN/../../../pgserver.libs.
        for libs in site.glob(f"{install.parent.name}.libs"):
            shutil.copytree(libs, copied_site / libs.name, symlinks=True)
        return target / bin_dir.name

    def _command(self, *args: str) -> list[str]:
        if self._run_as is None:
            return list(args)
        return ["runuser", "-u", self._run_as, "--", *args]

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            self._command(*args), cwd=self._base, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{log[-3000:]}"
            )

    def start(self) -> None:
        """Create the cluster and start it on a free port of its host address."""
        password_file = self._base / "superuser-password"
        password_file.write_text(self.superuser_password + "\n")
        if self._run_as is not None:
            owner = pwd.getpwnam(self._run_as)
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        password_file.chmod(0o600)
        self._run(
            str(self.bin_dir / "initdb"),
            "--pgdata",
            str(self.data_dir),
            "--username",
            SUPERUSER,
            "--pwfile",
            str(password_file),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        password_file.unlink()
        (self.data_dir / "pg_hba.conf").write_text(
            "# Written by the tests: passwords over TCP from the test hosts, nothing else.\n"
            f"host all all {self.clients} scram-sha-256\n"
        )
        for attempt in range(3):
            self.port = free_port()
            with (self.data_dir / "postgresql.auto.conf").open("w") as conf:
                conf.write(
                    f"listen_addresses = '{self.host}'\n"
                    f"port = {self.port}\n"
                    "unix_socket_directories = ''\n"
                    "password_encryption = 'scram-sha-256'\n"
                    "fsync = off\n"
                    "synchronous_commit = off\n"
                    "full_page_writes = off\n"
                    "max_connections = 200\n"
                    "shared_buffers = '16MB'\n"
                )
            try:
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "--pgdata",
                    str(self.data_dir),
                    "--log",
                    str(self.log_file),
                    "--wait",
                    "--timeout",
                    "30",
                    "start",
                )
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def stop(self) -> None:
        """Stop the server and delete its files."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "--pgdata",
                    str(self.data_dir),
                    "--mode",
                    "fast",
                    "--wait",
                    "stop",
                )
        finally:
            shutil.rmtree(self._base, ignore_errors=True)

    def connect_admin(self, dbname: str = "postgres") -> psycopg.Connection:
        """A new superuser connection in autocommit mode."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=SUPERUSER,
            password=self.superuser_password,
            dbname=dbname,
            sslmode="disable",
            autocommit=True,
        )

    @property
    def admin(self) -> psycopg.Connection:
        """The server's own superuser connection, kept open for the helpers."""
        if self._admin is None or self._admin.closed:
            self._admin = self.connect_admin()
        return self._admin

    def create_role(self, name: str, password: str) -> None:
        """Create (or reset) a login role with exactly this password, however odd."""
        exists = self.admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone()
        verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
        # CREATE/ALTER ROLE take no bind parameters: the password goes in as a literal quoted
        # by psycopg, never by string formatting.
        self.admin.execute(
            sql.SQL("{} ROLE {} WITH LOGIN PASSWORD {}").format(
                verb, sql.Identifier(name), sql.Literal(password)
            )
        )

    def create_database(self, name: str, owner: str | None = None) -> None:
        """Create a database (if missing), owned by `owner` or the superuser."""
        if self.admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner is not None:
            statement = sql.SQL("{} OWNER {}").format(statement, sql.Identifier(owner))
        self.admin.execute(statement)

    def password_hash(self, name: str) -> str:
        """How the server stored the role's password (to check it is a SCRAM verifier)."""
        row = self.admin.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [name]
        ).fetchone()
        return row[0] if row else ""


def _user_exists(name: str) -> bool:
    with contextlib.suppress(KeyError):
        pwd.getpwnam(name)
        return True
    return False
