"""Fixtures for the functional tests: real PostgreSQL, fake snapd/systemctl/snap at their seams.

The workload code runs for real, through the real charmlibs.snap (against a fake snapd on a Unix
socket) and the real charmlibs.systemd (against a fake `systemctl` first on PATH); its own
`snap install --dangerous` goes to a fake `snap` on PATH. The database tests use a real
PostgreSQL server started here, on loopback, with SCRAM password authentication.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from charmlibs.snap import _client as snap_client

import workload
from tests.functional import fake_snap_cli
from tests.functional.fake_snapd import FakeSnapd, StoreRevision
from tests.functional.fake_systemctl import FakeSystemctl
from tests.functional.pg_server import PostgresServer, find_bin_dir

REPO_ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parent / "data"
SERVICE = "snap.hockeypuck.hockeypuck.service"


def config_text(tag: str = "", loglevel: str = "INFO") -> str:
    """A small hockeypuck.conf Hockeypuck could read (the workload writes no other), tagged."""
    dsn = (
        "database='hockeypuck' host='127.0.0.1' port='5432' user='hockeypuck' "
        "password='pw' sslmode='disable'"
    )
    return (
        f'# {tag}\n[hockeypuck]\nloglevel = "{loglevel}"\n\n'
        f'[hockeypuck.openpgp.db]\ndriver = "postgres-jsonb"\ndsn = "{dsn}"\n'
    )


def store_channels() -> dict[str, dict[str, StoreRevision]]:
    """The store as the fake snapd sees it.

    `latest/edge` is the real store snap (a 2.2-era build whose daemon starts on install);
    the 2.3 channels stand for the project's snap (install-mode: disable).
    """
    return {
        "hockeypuck": {
            "latest/edge": StoreRevision("42", "2.2.4+git20250101", install_mode="enable"),
            "2.3/stable": StoreRevision("51", "2.3.3", install_mode="disable"),
            "2.3/edge": StoreRevision("53", "2.3.3+git20260101", install_mode="disable"),
        }
    }


@dataclass
class Machine:
    """This machine as the workload sees it: a file-system root and the fakes around it."""

    root: Path
    snapd: FakeSnapd
    systemctl: FakeSystemctl
    snap_cli_log: Path

    def snap_cli_calls(self) -> list[list[str]]:
        """Every `snap ...` command line the workload ran."""
        if not self.snap_cli_log.exists():
            return []
        return [json.loads(line) for line in self.snap_cli_log.read_text().splitlines()]


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Machine]:
    """Fake snapd, systemctl and snap, wired into the real libraries and PATH."""
    # A Unix socket path must stay under 108 bytes: keep it out of pytest's long tmp_path.
    short = Path(tempfile.mkdtemp(prefix="hkp-fn-"))
    root = tmp_path / "root"
    root.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    systemctl = FakeSystemctl(tmp_path / "systemctl")
    systemctl.write_wrapper(bin_dir)
    socket_path = short / "snapd.socket"
    snapd = FakeSnapd(socket_path, store_channels(), systemctl=systemctl, root=root)
    snap_cli_log = tmp_path / "snap-cli.log"
    snap_wrapper = bin_dir / "snap"
    command = [
        sys.executable,
        "-S",
        "-I",
        fake_snap_cli.__file__,
        str(socket_path),
        str(snap_cli_log),
    ]
    snap_wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n')
    snap_wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}")
    monkeypatch.setattr(snap_client, "_SOCKET_PATH", str(socket_path))
    # The fake systemctl answers at once: no need to wait for a daemon to settle.
    monkeypatch.setattr(workload, "SETTLE_SECONDS", 0.0)
    snapd.start()
    try:
        yield Machine(root=root, snapd=snapd, systemctl=systemctl, snap_cli_log=snap_cli_log)
    finally:
        snapd.stop()
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole session (skips the tests if none is installed)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under "
            "/usr/lib/postgresql/*/bin or on PATH: install the `postgresql` package"
        )
    server = PostgresServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
