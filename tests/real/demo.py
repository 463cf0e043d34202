"""A demo, not a deployment: one unit of the charm on a real Hockeypuck, on this machine.

`tox -e demo` (as root) builds Hockeypuck 2.3.3 from source (tests/real/hockeypuck_build.py),
starts PostgreSQL 16, and runs the charm's own hooks for one unit in a network namespace, so
the keyserver runs with the configuration the charm renders, through the project's snap
wrappers. It prints the web address and how to publish a key, and stops everything on Ctrl-C.
Without a Juju controller this is the quickest way to see what the charm runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from tests.functional.pg_server import PostgresServer, find_bin_dir
from tests.real import hockeypuck_build
from tests.real.conftest import MOUNT_POINTS
from tests.real.deployment import Deployment
from tests.real.netns import Lan


def main() -> int:
    """Run the demo until Ctrl-C; the exit code."""
    if os.geteuid() != 0:
        print("the demo needs root: it makes a network namespace for the unit", file=sys.stderr)
        return 1
    bin_dir = find_bin_dir()
    if bin_dir is None:
        print("no PostgreSQL server binaries: install the postgresql package", file=sys.stderr)
        return 1
    print("building Hockeypuck 2.3.3 from source (cached after the first time)...")
    try:
        hockeypuck_build.build()
    except hockeypuck_build.SourceMissingError as error:
        print(error, file=sys.stderr)
        return 1
    made = [path for path in MOUNT_POINTS if not path.exists()]
    for path in made:
        path.mkdir(parents=True)
    lan = Lan(os.getpid())
    workdir = Path(tempfile.mkdtemp(prefix="hockeypuck-demo-"))
    deployment = None
    lan.start()
    postgres = PostgresServer(bin_dir, host=lan.gateway_ipv4, clients=f"{lan.gateway_ipv4}/24")
    try:
        postgres.start()
        print("starting one unit of the charm (install, config-changed, database relation)...")
        deployment = Deployment("demo", lan, postgres, workdir)
        deployment.deploy(1)
        unit = deployment.units[0]
        status = deployment.statuses()[unit.name]
        address = unit.host.ipv4
        print(
            f"""
This is a DEMO of the hockeypuck charm: real Hockeypuck, configured by the charm's code.
Unit status: {status.name} {status.message!r}

  web page:        http://{address}:11371/
  statistics:      http://{address}:11371/pks/lookup?op=stats
  metrics:         http://{address}:9626/metrics
  publish a key:   gpg --keyserver hkp://{address}:11371 --send-keys <fingerprint>
                   (or: curl --data-urlencode keytext@key.asc http://{address}:11371/pks/add)
  look one up:     gpg --keyserver hkp://{address}:11371 --search-keys <e-mail>
  config file:     {unit.config_file}
  daemon log:      {unit.root / "var/snap/hockeypuck/common/logs/hockeypuck.log"}

Press Ctrl-C to stop.""",
            flush=True,
        )
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping...", flush=True)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        # A terminal's Ctrl-C reaches every process of the group, tox and uv forward theirs:
        # clean up whatever else arrives.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if deployment is not None:
            deployment.stop()
        postgres.stop()
        lan.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        for path in made:
            path.rmdir()


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
