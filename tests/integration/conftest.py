"""Integration tests: deploy the packed charm on a real Juju controller (LXD).

They are skipped, with the reason, when no controller is reachable or no packed charm is
found. Run them with `tox -e integration` after `charmcraft pack`; `CHARM_PATH` may name the
.charm file and `SNAP_PATH` a locally built Hockeypuck snap to attach as the resource.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _no_controller_reason() -> str | None:
    if shutil.which("juju") is None:
        return "no juju CLI on this machine"
    try:
        done = subprocess.run(
            ["juju", "show-controller", "--format=json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"no Juju controller reachable ({error})"
    if done.returncode != 0:
        return f"no Juju controller reachable: {done.stderr.strip() or done.stdout.strip()}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every integration test, with the reason, when there is no controller."""
    reason = _no_controller_reason()
    if reason is None:
        return
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def charm_path() -> Path:
    """The packed charm: $CHARM_PATH, or the one `charmcraft pack` left in the repo."""
    if path := os.environ.get("CHARM_PATH"):
        return Path(path).resolve()
    packed = sorted(REPO.glob("hockeypuck_*.charm"))
    if not packed:
        pytest.skip("no packed charm: run `charmcraft pack` or set CHARM_PATH")
    return packed[-1]


@pytest.fixture(scope="session")
def snap_resource(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """$SNAP_PATH (a locally built snap), else an empty file: the store channel is used."""
    if path := os.environ.get("SNAP_PATH"):
        return Path(path).resolve()
    empty = tmp_path_factory.mktemp("resource") / "hockeypuck.snap"
    empty.write_bytes(b"")
    return empty
