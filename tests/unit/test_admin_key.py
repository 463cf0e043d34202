"""How admin_key drives gpg: private home, batch/loopback, agent killed, nothing echoed.

gpg itself is faked here at subprocess.run; tests/functional/test_admin_key_gpg.py runs the
real one.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import admin_key
from admin_key import AdminKey, AdminKeySigner, GpgError

FINGERPRINT = "9A673DE573FC80F71E3A168EB09FFFACB441A6F1"
SUBKEY = "58A91A6291D72A37C25CD9C6D4EBA906ED5EFE0D"
SECRET = "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nc2VjcmV0\n-----END PGP PRIVATE KEY BLOCK-----\n"
PUBLIC = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\ncHVibGlj\n-----END PGP PUBLIC KEY BLOCK-----\n"
COLONS = (
    f"sec:u:255:22:B09FFFACB441A6F1:1795661064:::u:::scSC:::+:::ed25519:::0:\n"
    f"fpr:::::::::{FINGERPRINT}:\n"  # codespell:ignore fpr
    "grp:::::::::0123:\n"
    "uid:u::::1795661064::HASH::Hockeypuck admin for a in m::::::::::0:\n"
    "ssb:u:255:18:D4EBA906ED5EFE0D:1795661067::::::e:::+:::cv25519::\n"
    f"fpr:::::::::{SUBKEY}:\n"  # codespell:ignore fpr
)


@dataclass
class FakeGpg:
    """Answers gpg command lines like gpg would, recording them."""

    calls: list[tuple[list[str], dict[str, Any]]] = field(default_factory=list)
    fail: str | None = None
    listing: str = COLONS
    homes: list[Path] = field(default_factory=list)

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        self.calls.append((command, kwargs))
        home = Path(command[command.index("--homedir") + 1])
        assert home.is_dir()
        self.homes.append(home)
        if command[0] == admin_key.GPGCONF:
            return subprocess.CompletedProcess(command, 0, b"", b"")
        args = command[command.index("loopback") + 1 :]
        if self.fail and self.fail in args:
            stderr = (
                b"gpg: keybox created\n"
                b"-----BEGIN PGP PRIVATE KEY BLOCK-----\nc2VjcmV0\n"
                b"gpg: signing failed: No secret key\n"
                b"gpg: Total number processed: 0\n"
                b"gpg:       secret keys read: 0\n"
            )
            return subprocess.CompletedProcess(command, 2, b"", stderr)
        if "--list-secret-keys" in args or "show-only" in args:
            output = self.listing.encode()
        elif "--export-secret-keys" in args:
            output = SECRET.encode()
        elif "--export" in args:
            output = PUBLIC.encode()
        elif "--detach-sign" in args:
            output = b"-----BEGIN PGP SIGNATURE-----\n\nc2ln\n-----END PGP SIGNATURE-----\n"
        else:
            output = b""
        return subprocess.CompletedProcess(command, 0, output, b"")

    def gpg_args(self) -> list[list[str]]:
        return [
            command[command.index("loopback") + 1 :]
            for command, _ in self.calls
            if command[0] == admin_key.GPG
        ]


@pytest.fixture
def gpg(monkeypatch: pytest.MonkeyPatch) -> FakeGpg:
    fake = FakeGpg()
    monkeypatch.setattr(admin_key.subprocess, "run", fake)
    monkeypatch.setenv("HOME", "/root")
    monkeypatch.setenv("GNUPGHOME", "/root/.gnupg")
    return fake


def assert_private_and_cleaned(gpg: FakeGpg) -> None:
    homes = set(gpg.homes)
    assert len(homes) >= 1
    for command, kwargs in gpg.calls:
        home = command[command.index("--homedir") + 1]
        assert kwargs["env"]["GNUPGHOME"] == home
        assert "HOME" not in kwargs["env"]
        if command[0] == admin_key.GPG:
            assert command[:8] == [
                admin_key.GPG,
                "--homedir",
                home,
                "--batch",
                "--no-tty",
                "--no-options",
                "--pinentry-mode",
                "loopback",
            ]
    for home in homes:
        assert not home.exists()
        kills = [command for command, _ in gpg.calls if command[0] == admin_key.GPGCONF]
        assert [admin_key.GPGCONF, "--homedir", str(home), "--kill", "all"] in kills
        assert [admin_key.GPGCONF, "--homedir", str(home), "--remove-socketdir"] in kills


def test_generate(gpg: FakeGpg, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    key = admin_key.generate_admin_key("hockeypuck", "prod")
    assert key == AdminKey(FINGERPRINT, PUBLIC, SECRET)
    assert gpg.gpg_args() == [
        [
            "--passphrase",
            "",
            "--quick-generate-key",
            "Hockeypuck admin for hockeypuck in prod",
            "ed25519",
            "sign",
            "never",
        ],
        ["--with-colons", "--list-secret-keys"],
        ["--armor", "--export", FINGERPRINT],
        ["--passphrase", "", "--armor", "--export-secret-keys", FINGERPRINT],
    ]
    assert_private_and_cleaned(gpg)
    assert "c2VjcmV0" not in caplog.text
    assert FINGERPRINT in caplog.text
    assert "c2VjcmV0" not in repr(key)


def test_sign_detached(gpg: FakeGpg):
    signature = admin_key.sign_detached(SECRET, "/pks/delete\nkey")
    assert signature.startswith("-----BEGIN PGP SIGNATURE-----")
    assert gpg.gpg_args() == [
        ["--import"],
        ["--with-colons", "--list-secret-keys"],
        [
            "--passphrase",
            "",
            "--local-user",
            FINGERPRINT,
            "--digest-algo",
            "SHA256",
            "--armor",
            "--detach-sign",
        ],
    ]
    stdins = [kwargs["input"] for command, kwargs in gpg.calls if command[0] == admin_key.GPG]
    assert stdins == [SECRET.encode(), b"", b"/pks/delete\nkey"]
    assert len(set(gpg.homes)) == 1
    assert_private_and_cleaned(gpg)


def test_signer_signs_with_its_key(gpg: FakeGpg):
    signer = AdminKeySigner(AdminKey(FINGERPRINT, PUBLIC, SECRET))
    assert (signer.fingerprint, signer.public_key) == (FINGERPRINT, PUBLIC)
    assert signer.sign("data").startswith("-----BEGIN PGP SIGNATURE-----")


def test_fingerprint_of(gpg: FakeGpg):
    assert admin_key.fingerprint_of(PUBLIC) == FINGERPRINT
    gpg.listing = COLONS + COLONS.replace("sec:", "pub:")
    with pytest.raises(GpgError, match="expected one OpenPGP key, found 2"):
        admin_key.fingerprint_of(PUBLIC + PUBLIC)


def test_failure_says_why_without_echoing_input(gpg: FakeGpg):
    gpg.fail = "--detach-sign"
    with pytest.raises(GpgError) as caught:
        admin_key.sign_detached(SECRET, "data")
    assert str(caught.value) == "cannot sign: gpg exited 2: gpg: signing failed: No secret key"
    assert_private_and_cleaned(gpg)


def test_failure_without_a_reason(gpg: FakeGpg, monkeypatch: pytest.MonkeyPatch):
    def silent(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        gpg(command, **kwargs)
        return subprocess.CompletedProcess(command, 2, b"", b"")

    monkeypatch.setattr(admin_key.subprocess, "run", silent)
    with pytest.raises(GpgError, match="gpg exited 2: no reason given"):
        admin_key.generate_admin_key("a", "m")


def test_more_than_one_secret_key_is_refused(gpg: FakeGpg):
    gpg.listing = COLONS + COLONS
    with pytest.raises(GpgError, match="expected one key, found 2"):
        admin_key.sign_detached(SECRET + SECRET, "data")


def test_timeout_and_missing_gpg(monkeypatch: pytest.MonkeyPatch):
    def timeout(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        if command[0] == admin_key.GPGCONF:
            raise OSError("no gpgconf either")
        raise subprocess.TimeoutExpired(command, 120)

    monkeypatch.setattr(admin_key.subprocess, "run", timeout)
    with pytest.raises(GpgError, match="did not finish within 120s"):
        admin_key.sign_detached(SECRET, "data")

    def missing(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        if command[0] == admin_key.GPGCONF:
            return subprocess.CompletedProcess(command, 0, b"", b"")
        raise FileNotFoundError(command[0])

    monkeypatch.setattr(admin_key.subprocess, "run", missing)
    with pytest.raises(GpgError, match="gpg is not installed"):
        admin_key.fingerprint_of(PUBLIC)


def test_user_id():
    user_id = admin_key.admin_user_id("hockeypuck", "keys-1")
    assert user_id == "Hockeypuck admin for hockeypuck in keys-1"
    for app, model in (("App", "m"), ("a", "m m"), ("a", ""), ("-a", "m")):
        with pytest.raises(ValueError, match="is not a Juju name"):
            admin_key.admin_user_id(app, model)
