"""The admin key with the real gpg: generation, signatures, and a clean keyring afterwards."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

import admin_key
from admin_key import AdminKey, AdminKeySigner, GpgError
from tests.functional import hockeypuck_db

pytestmark = pytest.mark.functional

TEST_ADMIN = "4E6955676366F4F25D46BBD77722ECD1CF6E3EEA"


def list_key(armored: str) -> list[list[str]]:
    """Gpg's --with-colons view of a key, in a home of its own."""
    with tempfile.TemporaryDirectory() as home:
        result = subprocess.run(
            [
                "gpg",
                "--homedir",
                home,
                "--batch",
                "--with-colons",
                "--import-options",
                "show-only",
                "--import",
            ],
            input=armored.encode(),
            capture_output=True,
            check=True,
        )
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)
    return [line.split(":") for line in result.stdout.decode().splitlines()]


def verify(public_key: str, data: bytes, signature: str) -> str | None:
    """The primary fingerprint of a good signature over data, or None."""
    with tempfile.TemporaryDirectory() as home:
        run = ["gpg", "--homedir", home, "--batch"]
        subprocess.run(
            [*run, "--import"], input=public_key.encode(), capture_output=True, check=True
        )
        (Path(home) / "data").write_bytes(data)
        (Path(home) / "data.sig").write_text(signature)
        result = subprocess.run(
            [*run, "--status-fd", "1", "--verify", f"{home}/data.sig", f"{home}/data"],
            capture_output=True,
            check=False,
        )
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)
    for line in result.stdout.decode().splitlines():
        if line.startswith("[GNUPG:] VALIDSIG"):
            return line.split()[-1]
    return None


def leftover_homes() -> set[str]:
    return {
        name for name in os.listdir(tempfile.gettempdir()) if name.startswith("hockeypuck-gnupg-")
    }


def agents_for(prefix: str) -> list[str]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "gpg-agent" in cmdline and prefix in cmdline:
            found.append(cmdline)
    return found


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and GNUPGHOME somewhere watched: the code must not use either."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GNUPGHOME", str(tmp_path / "root-gnupg"))
    return tmp_path


def test_generate_admin_key(isolated_home: Path, caplog: pytest.LogCaptureFixture):
    before = leftover_homes()
    caplog.set_level(logging.DEBUG)

    key = admin_key.generate_admin_key("hockeypuck", "prod-keys")

    assert len(key.fingerprint) == 40
    assert key.fingerprint == key.fingerprint.upper()
    assert key.public_key.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert key.secret_key.startswith("-----BEGIN PGP PRIVATE KEY BLOCK-----")
    assert "PRIVATE" not in key.public_key
    assert key.secret_key not in repr(key)
    listing = list_key(key.public_key)
    [pub] = [fields for fields in listing if fields[0] == "pub"]
    assert pub[3] == "22"  # EdDSA (ed25519)
    assert pub[6] == ""  # no expiry
    assert "s" in pub[11]
    [uid] = [fields for fields in listing if fields[0] == "uid"]
    assert uid[9] == "Hockeypuck admin for hockeypuck in prod-keys"
    assert admin_key.fingerprint_of(key.secret_key) == key.fingerprint
    # No passphrase: the key signs as is, and its signature verifies against the public key.
    signature = AdminKeySigner(key).sign("/pks/delete\nx")
    assert verify(key.public_key, b"/pks/delete\nx", signature) == key.fingerprint
    # Nothing of the key in the logs; nothing left behind.
    assert key.secret_key.splitlines()[3] not in caplog.text
    assert "PRIVATE KEY" not in caplog.text
    assert leftover_homes() == before
    assert agents_for("hockeypuck-gnupg-") == []
    assert not (isolated_home / "home").exists()
    assert not (isolated_home / "root-gnupg").exists()


def test_two_generations_give_two_keys():
    first = admin_key.generate_admin_key("a", "m")
    second = admin_key.generate_admin_key("a", "m")
    assert first.fingerprint != second.fingerprint


def test_sign_detached_with_the_recorded_admin_key(isolated_home: Path):
    secret = hockeypuck_db.key("admin-TEST-ONLY.sec.asc")
    public = hockeypuck_db.key("admin-TEST-ONLY.pub.asc")
    keytext = "/pks/delete\n" + hockeypuck_db.key("carol.pub.asc")

    signature = admin_key.sign_detached(secret, keytext)

    assert signature.startswith("-----BEGIN PGP SIGNATURE-----")
    assert verify(public, keytext.encode(), signature) == TEST_ADMIN
    assert verify(public, keytext.encode() + b" ", signature) is None
    assert not (isolated_home / "root-gnupg").exists()


def test_signer_exposes_the_public_half():
    key = AdminKey(TEST_ADMIN, hockeypuck_db.key("admin-TEST-ONLY.pub.asc"), "secret")
    signer = AdminKeySigner(key)
    assert signer.fingerprint == TEST_ADMIN
    assert signer.public_key == key.public_key


def test_gnupg_home_is_private_and_removed():
    with admin_key.gnupg_home() as home:
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        (home / "file").write_text("x")
    assert not home.exists()


def test_bad_key_material_is_not_echoed(caplog: pytest.LogCaptureFixture):
    garbage = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nc2VjcmV0LW1hdGVyaWFs\n-----END PGP"
    with pytest.raises(GpgError, match="cannot import the secret key") as caught:
        admin_key.sign_detached(garbage, "data")
    assert "c2VjcmV0" not in str(caught.value)
    assert "c2VjcmV0" not in caplog.text
    with pytest.raises(GpgError, match="cannot read the key: .*no valid OpenPGP data found"):
        admin_key.fingerprint_of("not a key")
    two = hockeypuck_db.key("alice.pub.asc") + hockeypuck_db.key("bob.pub.asc")
    with pytest.raises(GpgError, match="expected one OpenPGP key, found 2"):
        admin_key.fingerprint_of(two)


def test_missing_gpg_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(admin_key, "GPG", "/nonexistent/gpg")
    with pytest.raises(GpgError, match="gpg is not installed"):
        admin_key.generate_admin_key("hockeypuck", "prod")


@pytest.mark.parametrize(("app", "model"), [("Hockeypuck", "m"), ("a", "m;rm -rf /"), ("", "m")])
def test_user_id_needs_juju_names(app: str, model: str):
    with pytest.raises(ValueError, match="is not a Juju name"):
        admin_key.admin_user_id(app, model)
