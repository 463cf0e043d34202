"""Fixtures of the real-Hockeypuck tier: the built daemon, a LAN of test hosts, PostgreSQL.

Set HOCKEYPUCK_REAL_KEEP=1 to keep the units' files (config, logs, trees) after the tests.
Without the source or without root these tests skip, with the reason; under `CI` they fail
instead, so CI can never be green without them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.functional.pg_server import PostgresServer, find_bin_dir
from tests.real import hockeypuck_build
from tests.real.deployment import Deployment
from tests.real.netns import Lan, NetnsUnavailableError

# Where the snap's files appear inside each unit's private mount namespace.
MOUNT_POINTS = (Path("/snap/hockeypuck"), Path("/var/snap/hockeypuck"))


def unavailable(reason: str) -> None:
    """Skip, or fail under CI: the real tier must run there."""
    if os.environ.get("CI"):
        pytest.fail(f"the real-Hockeypuck tier cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def hockeypuck() -> hockeypuck_build.Build:
    """Hockeypuck 2.3.3 built from source (cached by the source's checksum)."""
    try:
        return hockeypuck_build.build()
    except hockeypuck_build.SourceMissingError as error:
        unavailable(str(error))
        raise


@pytest.fixture(scope="session")
def mount_points() -> Iterator[None]:
    """Empty directories where the units' snap files are bound (made here if missing)."""
    if os.geteuid() != 0:
        unavailable("the real-Hockeypuck tier needs root (network and mount namespaces)")
    made = [path for path in MOUNT_POINTS if not path.exists()]
    for path in made:
        path.mkdir(parents=True)
    yield
    for path in made:
        path.rmdir()
        if path.parent != Path("/") and not any(path.parent.iterdir()):
            path.parent.rmdir()


@pytest.fixture(scope="session")
def lan(mount_points: None) -> Iterator[Lan]:
    """A bridge and its subnet; each unit gets a network namespace on it."""
    network = Lan(os.getpid())
    try:
        network.start()
    except NetnsUnavailableError as error:
        network.stop()
        unavailable(str(error))
    yield network
    network.stop()


@pytest.fixture(scope="session")
def real_postgres(lan: Lan) -> Iterator[PostgresServer]:
    """PostgreSQL on the LAN's gateway address, reachable from every test host."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable("no PostgreSQL server binaries: install the `postgresql` package")
        raise AssertionError
    server = PostgresServer(
        bin_dir, host=lan.gateway_ipv4, clients=f"{lan.gateway_ipv4.rsplit('.', 1)[0]}.0/24"
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def make_deployment(
    hockeypuck: hockeypuck_build.Build, lan: Lan, real_postgres: PostgresServer
) -> Iterator[Callable[..., Deployment]]:
    """Deployments of the charm (stopped at the end of the test)."""
    made: list[Deployment] = []
    base = Path(tempfile.mkdtemp(prefix="hkp-real-"))

    def make(name: str, bare: bool = False) -> Deployment:
        workdir = base / name
        workdir.mkdir()
        deployment = Deployment(name, lan, real_postgres, workdir, bare=bare)
        made.append(deployment)
        return deployment

    yield make
    for deployment in made:
        deployment.stop()
    if os.environ.get("HOCKEYPUCK_REAL_KEEP"):
        print(f"kept the units' files in {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
