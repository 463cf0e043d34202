#!/usr/bin/env python3
"""Time the charm: cold start of an update-status dispatch, and update-status in-process.

Cold start runs the charm the way Juju does (a fresh Python process dispatching
`hooks/update-status`), with Juju's hook tools and systemctl replaced by tiny shell scripts on
PATH, against a workload already configured (so the hook is the usual no-op). The charm's
serving check (one HKP lookup) goes to a small HTTP server on a free loopback port, answering
404 as Hockeypuck does for an unknown key. It reports the median wall time of the whole process
and of import-to-end inside it.

In-process runs the same no-op update-status through ops.testing repeatedly, with the machine
faked at the charmlibs seam, and reports the median per dispatch.

Usage: python benchmarks/charm_timing.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RELATION_DATA = {
    "database": "hockeypuck",
    "requested-secrets": json.dumps(
        ["username", "password", "tls", "tls-ca", "uris", "read-only-uris"]
    ),
    "endpoints": "10.0.0.5:5432",
    "version": "16.9",
    "secret-user": "secret:d2f4g0a7n9ck9bn5ubsg",
}
SECRET = {"username": "relation-7", "password": "bench-pw"}
UNIT_ADDRESS = "192.0.2.10"
NETWORK = {
    "bind-addresses": [
        {
            "mac-address": "",
            "interface-name": "eth0",
            "addresses": [{"hostname": "", "value": UNIT_ADDRESS, "cidr": "192.0.2.0/24"}],
        }
    ],
    "egress-subnets": ["192.0.2.10/32"],
    "ingress-addresses": [UNIT_ADDRESS],
}
# This unit's peer data and the application's (the admin key made by the leader long ago).
PEER_DATA = {
    "address": UNIT_ADDRESS,
    "hockeypuck-version": "2.3.3",
    "admin-key-fingerprint": "0123456789ABCDEF0123456789ABCDEF01234567",
    "admin-key-secret-id": "secret:d2f4g0a7n9ck9bn5ubt0",
}
# Answers that depend on the arguments: (tool, shell `case` pattern over "$*", output).
CASES = {
    "relation-ids": [
        ("*database*", json.dumps(["database:7"])),
        ("*hockeypuck-peers*", json.dumps(["hockeypuck-peers:1"])),
        ("*", "[]"),
    ],
    "relation-list": [
        ("*--app*database:7*", json.dumps("postgresql")),
        ("*database:7*", json.dumps(["postgresql/0"])),
        ("*--app*", json.dumps("hockeypuck")),
        ("*", "[]"),
    ],
    "relation-get": [
        ("*hockeypuck-peers:1*", json.dumps(PEER_DATA)),
        ("*", json.dumps(RELATION_DATA)),
    ],
}
HOOK_TOOLS = {
    "is-leader": "true",
    "network-get": json.dumps(NETWORK),
    "secret-get": json.dumps(SECRET),
    "status-get": json.dumps({"status": "active", "message": "", "status-data": {}}),
    "status-set": "",
    "juju-log": "",
    "application-version-set": "",
    "opened-ports": "[]",
    "open-port": "",
    "close-port": "",
}

DRIVER = """
import time
t0 = time.perf_counter()
import sys
from pathlib import Path
sys.path[:0] = [{src!r}, {lib!r}]  # as the packed charm's dispatch (PYTHONPATH=lib)
import ops
import charm
import workload
charm.HockeypuckCharm.workload_root = Path({root!r})
workload.Hockeypuck.hkp_address = ("127.0.0.1", {hkp_port})
ops.main(charm.HockeypuckCharm)
print(f"INPROCESS {{time.perf_counter() - t0:.6f}}", file=sys.stderr)
"""

# The same dispatch of a charm that does nothing: what ops itself costs on this machine.
BARE_DRIVER = """
import time
t0 = time.perf_counter()
import sys
import ops
ops.main(type("Bare", (ops.CharmBase,), {{}}))
print(f"INPROCESS {{time.perf_counter() - t0:.6f}}", file=sys.stderr)
"""


def config_defaults() -> dict[str, object]:
    """What `config-get` answers for a unit deployed with default config."""
    import yaml  # noqa: PLC0415

    options = yaml.safe_load((REPO / "charmcraft.yaml").read_text())["config"]["options"]
    return {name: option["default"] for name, option in options.items()}


def write_packed_metadata(charm_dir: Path) -> None:
    """Split charmcraft.yaml into the files `charmcraft pack` puts in a charm."""
    import yaml  # noqa: PLC0415

    project = yaml.safe_load((REPO / "charmcraft.yaml").read_text())
    config = project.pop("config", {})
    actions = project.pop("actions", {})
    for key in ("parts", "platforms", "base", "type", "links", "title"):
        project.pop(key, None)
    (charm_dir / "metadata.yaml").write_text(yaml.safe_dump(project))
    (charm_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (charm_dir / "actions.yaml").write_text(yaml.safe_dump(actions))


def write_tool(path: Path, body: str) -> None:
    """A fake hook tool: a tiny shell script, about as quick as Juju's own."""
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)


class _NotFound(http.server.BaseHTTPRequestHandler):
    """Hockeypuck's answer to a lookup of a key it does not have."""

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@contextlib.contextmanager
def hkp_port() -> Iterator[int]:
    """A loopback HTTP server standing for Hockeypuck's HKP port, for the serving check."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def make_sandbox(base: Path, port: int) -> dict[str, str]:
    """Hook tools, a charm dir and a workload root; returns the dispatch environment."""
    bin_dir = base / "bin"
    bin_dir.mkdir()
    tools = {**HOOK_TOOLS, "config-get": json.dumps(config_defaults()), "systemctl": ""}
    for tool, output in tools.items():
        record = f'echo "$@" > {base}/last-status\n' if tool == "status-set" else ""
        write_tool(bin_dir / tool, f"{record}cat <<'EOF'\n{output}\nEOF\n")
    for tool, cases in CASES.items():
        branches = "".join(
            f"{pattern}) cat <<'EOF'\n{output}\nEOF\n;;\n" for pattern, output in cases
        )
        write_tool(bin_dir / tool, f'case "$*" in\n{branches}esac\n')
    charm_dir = base / "charm"
    charm_dir.mkdir()
    for name in ("src", "templates"):
        (charm_dir / name).symlink_to(REPO / name)
    write_packed_metadata(charm_dir)
    root = base / "root"
    state_dir = root / "var/lib/hockeypuck-charm"
    state_dir.mkdir(parents=True)
    (state_dir / "snap-revision").write_text("42")
    driver = base / "dispatch.py"
    driver.write_text(
        DRIVER.format(src=str(REPO / "src"), lib=str(REPO / "lib"), root=str(root), hkp_port=port)
    )
    (base / "bare.py").write_text(BARE_DRIVER.format())
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "JUJU_CHARM_DIR": str(charm_dir),
        "JUJU_UNIT_NAME": "hockeypuck/0",
        "JUJU_MODEL_NAME": "bench",
        "JUJU_MODEL_UUID": "00000000-0000-4000-8000-000000000000",
        "JUJU_VERSION": "3.6.8",
        "JUJU_DISPATCH_PATH": "hooks/update-status",
        "JUJU_HOOK_NAME": "update-status",
        "DRIVER": str(driver),
    }


def cold_start(runs: int, bare: bool = False) -> tuple[float, float]:
    """Median wall time of the dispatch process, and of import-to-end inside it."""
    with tempfile.TemporaryDirectory() as tmp, hkp_port() as port:
        env = {**os.environ, **make_sandbox(Path(tmp), port)}
        # A packed charm ships compiled bytecode; let the warm-up run write it.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        driver = Path(env["DRIVER"])
        command = [sys.executable, str(driver.with_name("bare.py") if bare else driver)]
        first = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if first.returncode != 0:
            sys.exit(f"the dispatch failed:\n{first.stdout}\n{first.stderr}")
        if not bare:
            status = (driver.parent / "last-status").read_text()
            if not status.startswith("--application=False active"):
                sys.exit(f"the dispatch did not end active but: {status}")
        walls, inside = [], []
        for _ in range(runs):
            start = time.perf_counter()
            done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            walls.append(time.perf_counter() - start)
            inside.append(float(done.stderr.rsplit("INPROCESS ", 1)[1]))
        return statistics.median(walls), statistics.median(inside)


def in_process(runs: int) -> tuple[float, float]:
    """Median time of one no-op update-status through ops.testing, and of a bare charm's."""
    sys.path[:0] = [str(REPO / "src"), str(REPO / "lib"), str(REPO)]
    import ops  # noqa: PLC0415
    import pytest  # noqa: PLC0415 - only the benchmark needs it

    from tests.unit import conftest  # noqa: PLC0415

    with (
        tempfile.TemporaryDirectory() as tmp,
        pytest.MonkeyPatch.context() as patch,
        hkp_port() as port,
    ):
        patch.setattr(conftest.workload.Hockeypuck, "hkp_address", ("127.0.0.1", port))
        systemd_fake = conftest.FakeSystemd()
        snapd_fake = conftest.FakeSnapd(systemd=systemd_fake)
        for name in ("list_one", "ensure_installed", "hold"):
            patch.setattr(conftest.snap, name, getattr(snapd_fake, name))
        for name in (
            "service_running",
            "service_restart",
            "service_start",
            "daemon_reload",
            "service_enable",
        ):
            patch.setattr(conftest.systemd, name, getattr(systemd_fake, name))
        patch.setattr(conftest.charm.HockeypuckCharm, "workload_root", Path(tmp))
        charm_root = conftest.make_charm_root(Path(tmp) / "charm")
        ctx = conftest.testing.Context(conftest.charm.HockeypuckCharm, charm_root=charm_root)
        state = conftest.ready_state()
        ctx.run(ctx.on.install(), state)
        ctx.run(ctx.on.config_changed(), state)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            ctx.run(ctx.on.update_status(), state)
            times.append(time.perf_counter() - start)
        assert systemd_fake.restarts == 1, "update-status must not restart"
        bare = conftest.testing.Context(
            type("Bare", (ops.CharmBase,), {}),
            meta=dict(ctx.charm_spec.meta),
            config=dict(ctx.charm_spec.config or {}),
            actions=dict(ctx.charm_spec.actions or {}),
        )
        bare_times = []
        for _ in range(runs):
            start = time.perf_counter()
            bare.run(bare.on.update_status(), state)
            bare_times.append(time.perf_counter() - start)
        return statistics.median(times), statistics.median(bare_times)


def main() -> None:
    """Print the figures."""
    warnings.simplefilter("ignore", DeprecationWarning)
    parser = argparse.ArgumentParser(description="Time the charm's hooks.")
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    if shutil.which("sh") is None:
        sys.exit("needs /bin/sh for the fake hook tools")
    runs = args.runs
    wall, inside = cold_start(runs)
    bare_wall, bare_inside = cold_start(runs, bare=True)
    per_hook, bare_hook = in_process(runs * 5)
    print(
        f"cold start, import to end of update-status (median of {runs}): "
        f"{inside * 1000:.1f} ms  [target < 250 ms]"
    )
    print(
        f"  same for a charm that does nothing (ops alone): {bare_inside * 1000:.1f} ms;"
        f" this charm adds {(inside - bare_inside) * 1000:.1f} ms"
    )
    print(
        f"  whole process incl. interpreter start: {wall * 1000:.1f} ms"
        f" (ops alone {bare_wall * 1000:.1f} ms)"
    )
    print(
        f"update-status in-process, charm's own time (median of {runs * 5}): "
        f"{(per_hook - bare_hook) * 1000:.2f} ms  [target < 10 ms]"
    )
    print(
        f"  ops.testing run of it {per_hook * 1000:.2f} ms, of a charm that does nothing"
        f" {bare_hook * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
