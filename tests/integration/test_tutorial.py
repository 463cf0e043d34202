"""The tutorial (docs/tutorial/getting-started.md), step by step, on a real controller.

Each test is one section of the tutorial, in its order, running the same commands: the Juju
ones through jubilant, the `curl` and `gpg` ones as processes, with the same arguments. Two
differences, both the tutorial's own alternatives: the model is the one pytest-jubilant makes
(instead of `juju add-model keyserver-tutorial`, and it removes it at the end), and the charm is
the packed one with the snap resource (the tutorial's note for a charm you built yourself).

The tutorial adds `keyserver.test` to `/etc/hosts`, and so does this test (as root, or with
passwordless sudo), removing the line afterwards; without either, the `gpg` sections skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jubilant
import pytest

from tests.integration import hkp

APP = "hockeypuck"
HOSTNAME = "keyserver.test"
KEYSERVER = f"hkps://{HOSTNAME}"
USER_ID = "Tutorial User <tutorial@example.com>"
EMAIL = "tutorial@example.com"
COMMENT = "tutorial: testing the block list"
HOSTS = Path("/etc/hosts")
TIMEOUT = 40 * 60

pytestmark = pytest.mark.skipif(shutil.which("gpg") is None, reason="the tutorial needs gpg")


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope="module")
def deployed(juju: jubilant.Juju, charm_path: Path, snap_resource: Path) -> jubilant.Juju:
    """Deploy Hockeypuck and its database."""
    juju.deploy("postgresql", channel="16/stable")
    juju.deploy(charm_path, APP, resources={"hockeypuck-snap": str(snap_resource)})
    juju.integrate(APP, "postgresql")
    juju.wait(jubilant.all_active, timeout=TIMEOUT)
    return juju


@pytest.fixture(scope="module")
def behind_haproxy(deployed: jubilant.Juju) -> jubilant.Juju:
    """Put HAProxy in front of it."""
    juju = deployed
    juju.deploy("haproxy", channel="2.8/stable", base="ubuntu@24.04")
    juju.deploy("self-signed-certificates")
    juju.integrate("haproxy:certificates", "self-signed-certificates")
    juju.config(APP, {"hostname": HOSTNAME})
    juju.integrate(f"{APP}:haproxy-route", "haproxy:haproxy-route")
    juju.wait(jubilant.all_active, timeout=TIMEOUT)
    return juju


@pytest.fixture(scope="module")
def ca_file(behind_haproxy: jubilant.Juju, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`juju run self-signed-certificates/0 get-ca-certificate` saved as tutorial-ca.pem."""
    task = behind_haproxy.run("self-signed-certificates/0", "get-ca-certificate")
    path = tmp_path_factory.mktemp("tutorial") / "tutorial-ca.pem"
    path.write_text(task.results["ca-certificate"] + "\n")
    return path


def _as_root(command: list[str], stdin: str | None = None) -> bool:
    if os.geteuid() != 0:
        if shutil.which("sudo") is None or run("sudo", "-n", "true").returncode != 0:
            return False
        command = ["sudo", "-n", *command]
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    return done.returncode == 0


@pytest.fixture(scope="module")
def hosts_entry(behind_haproxy: jubilant.Juju) -> Iterator[None]:
    """`echo "$HAPROXY_IP keyserver.test" | sudo tee -a /etc/hosts`, undone afterwards."""
    address = behind_haproxy.status().apps["haproxy"].units["haproxy/0"].public_address
    line = f"{address} {HOSTNAME}"
    if not _as_root(["tee", "-a", str(HOSTS)], stdin=line + "\n"):
        pytest.skip(f"the tutorial adds {HOSTNAME} to {HOSTS}: needs root or passwordless sudo")
    yield
    _as_root(["sed", "-i", f"/ {HOSTNAME}$/d", str(HOSTS)])


@pytest.fixture(scope="module")
def gnupg(ca_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A GnuPG home of its own, whose dirmngr trusts the tutorial's CA (the environment)."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    (home / "dirmngr.conf").write_text(f"hkp-cacert {ca_file}\nstandard-resolver\n")
    env = {**os.environ, "GNUPGHOME": str(home)}
    yield env
    run("gpgconf", "--kill", "all", env=env)


@pytest.fixture(scope="module")
def fingerprint(gnupg: dict[str, str]) -> str:
    """Make a key without passphrase and note its fingerprint."""
    made = run(
        "gpg",
        "--batch",
        "--passphrase",
        "",
        "--quick-generate-key",
        USER_ID,
        "ed25519",
        "sign",
        "never",
        env=gnupg,
    )
    assert made.returncode == 0, made.stderr
    listed = run("gpg", "--list-keys", "--with-colons", EMAIL, env=gnupg)
    # As the tutorial's awk does: field 10 of the first record whose type starts with "fp".
    return next(line.split(":")[9] for line in listed.stdout.splitlines() if line.startswith("fp"))


def test_deploy_hockeypuck_and_its_database(deployed: jubilant.Juju):
    status = deployed.status()

    assert status.apps[APP].units[f"{APP}/0"].workload_status.current == "active"
    assert status.apps["postgresql"].units["postgresql/0"].workload_status.current == "active"


def test_hockeypuck_is_healthy_on_its_machine(deployed: jubilant.Juju):
    address = hkp.unit_address(deployed.status(), APP)

    done = run("curl", "--fail", "--silent", f"http://{address}:{hkp.HKP_PORT}/pks/health")

    assert done.returncode == 0
    assert done.stdout.strip() == "OK"


def test_haproxy_serves_it_under_its_name(behind_haproxy: jubilant.Juju):
    status = behind_haproxy.status()

    message = status.apps[APP].units[f"{APP}/0"].workload_status.message
    assert message.startswith(f"serving https://{HOSTNAME}"), message


def test_health_through_haproxy_over_tls(ca_file: Path, hosts_entry: None):
    done = run(
        "curl", "--fail", "--silent", "--cacert", str(ca_file), f"https://{HOSTNAME}/pks/health"
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "OK"


def test_send_the_key(gnupg: dict[str, str], hosts_entry: None, fingerprint: str):
    sent = run("gpg", "--keyserver", KEYSERVER, "--send-keys", fingerprint, env=gnupg)

    assert sent.returncode == 0, sent.stderr
    assert f"to {KEYSERVER}" in sent.stderr


def test_look_it_up(
    behind_haproxy: jubilant.Juju, gnupg: dict[str, str], hosts_entry: None, fingerprint: str
):
    deleted = run(
        "gpg", "--batch", "--yes", "--delete-secret-and-public-key", fingerprint, env=gnupg
    )
    assert deleted.returncode == 0, deleted.stderr

    received = run("gpg", "--keyserver", KEYSERVER, "--recv-keys", fingerprint, env=gnupg)

    assert received.returncode == 0, received.stderr
    assert f'public key "{USER_ID}" imported' in received.stderr
    found = behind_haproxy.run(f"{APP}/0", "lookup-key", {"keyword": EMAIL})
    assert found.results["count"] == "1"
    assert fingerprint.lower() in found.results["keys"]


def test_block_it(
    behind_haproxy: jubilant.Juju, gnupg: dict[str, str], hosts_entry: None, fingerprint: str
):
    juju = behind_haproxy
    blocked = juju.run(f"{APP}/0", "block-keys", {"fingerprints": fingerprint, "comment": COMMENT})
    assert blocked.results["keys"] == {fingerprint.lower(): "blocked+deleted"}
    juju.wait(jubilant.all_active, timeout=TIMEOUT)

    received = run("gpg", "--keyserver", KEYSERVER, "--recv-keys", fingerprint, env=gnupg)
    assert received.returncode != 0
    assert "No data" in received.stderr

    sent = run("gpg", "--keyserver", KEYSERVER, "--send-keys", fingerprint, env=gnupg)
    assert sent.returncode == 0, sent.stderr
    found = juju.run(f"{APP}/0", "lookup-key", {"keyword": fingerprint})
    assert found.results["result"] == "no key found"

    listed = juju.run(f"{APP}/0", "list-blocked-keys")
    assert listed.results["keys"][fingerprint.lower()]["comment"] == COMMENT
