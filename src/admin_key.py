"""The charm's Hockeypuck admin key: generate it once, sign admin requests with it.

Hockeypuck accepts `/pks/delete` and `/pks/replace` only with a detached OpenPGP signature by a
key whose fingerprint is in `adminKeys` and whose public key is in its database. The charm
makes its own key for that (ed25519, no passphrase: it lives in a Juju secret).

Every GnuPG call runs in a private, temporary home directory (mode 0700) that is removed
afterwards, with the agent it started killed; root's own keyring is never touched. No key
material, passphrase or signed data reaches a log line or an exception message.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

GPG = "gpg"
GPGCONF = "gpgconf"
KEY_ALGORITHM = "ed25519"
DIGEST_ALGORITHM = "SHA256"
_TIMEOUT = 120
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ")


class GpgError(Exception):
    """GnuPG failed. The message never contains key material."""


@dataclass(frozen=True)
class AdminKey:
    """The charm's admin key pair, armored; `secret_key` is hidden from repr()."""

    fingerprint: str
    public_key: str
    secret_key: str = field(repr=False)


def admin_user_id(app: str, model: str) -> str:
    """The user id that says what the key is for.

    Raises:
        ValueError: app or model is not a Juju name (lower-case letters, digits, hyphens).
    """
    for what, name in (("application", app), ("model", model)):
        if not _NAME.fullmatch(name):
            raise ValueError(f"{what} name {name!r} is not a Juju name")
    return f"Hockeypuck admin for {app} in {model}"


def generate_admin_key(app: str, model: str) -> AdminKey:
    """Generate a new ed25519 signing key without passphrase, never expiring.

    Raises:
        ValueError: app or model is not a Juju name.
        GpgError: GnuPG failed.
    """
    user_id = admin_user_id(app, model)
    with gnupg_home() as home:
        _gpg(
            home,
            ["--passphrase", "", "--quick-generate-key", user_id, KEY_ALGORITHM, "sign", "never"],
            what="generate the admin key",
        )
        fingerprint = _only_fingerprint(home, secret=True)
        public = _gpg(home, ["--armor", "--export", fingerprint], what="export the public key")
        secret = _gpg(
            home,
            ["--passphrase", "", "--armor", "--export-secret-keys", fingerprint],
            what="export the secret key",
        )
    logger.info("generated the Hockeypuck admin key %s (%s)", fingerprint, user_id)
    return AdminKey(
        fingerprint=fingerprint, public_key=public.decode(), secret_key=secret.decode()
    )


def fingerprint_of(armored_key: str) -> str:
    """The primary fingerprint (upper-case hex) of one armored public or secret key.

    Raises:
        GpgError: not exactly one OpenPGP key in the text.
    """
    with gnupg_home() as home:
        output = _gpg(
            home,
            ["--with-colons", "--import-options", "show-only", "--import"],
            stdin=armored_key.encode(),
            what="read the key",
        )
    fingerprints = _primary_fingerprints(output.decode())
    if len(fingerprints) != 1:
        raise GpgError(f"expected one OpenPGP key, found {len(fingerprints)}")
    return fingerprints[0]


def sign_detached(secret_key: str, data: str) -> str:
    """An armored detached signature over the UTF-8 bytes of `data`, by the given secret key.

    Raises:
        GpgError: the key cannot be imported or used, or signing failed.
    """
    with gnupg_home() as home:
        _gpg(home, ["--import"], stdin=secret_key.encode(), what="import the secret key")
        fingerprint = _only_fingerprint(home, secret=True)
        signature = _gpg(
            home,
            [
                "--passphrase",
                "",
                "--local-user",
                fingerprint,
                "--digest-algo",
                DIGEST_ALGORITHM,
                "--armor",
                "--detach-sign",
            ],
            stdin=data.encode(),
            what="sign",
        )
    return signature.decode()


class AdminKeySigner:
    """Signs Hockeypuck admin requests with the charm's admin key (the `Signer` of key_actions)."""

    def __init__(self, key: AdminKey):
        self._key = key

    @property
    def fingerprint(self) -> str:
        """The admin key's fingerprint, upper-case hex."""
        return self._key.fingerprint

    @property
    def public_key(self) -> str:
        """The armored public key (to upload to Hockeypuck)."""
        return self._key.public_key

    def sign(self, data: str) -> str:
        """An armored detached signature over `data`."""
        return sign_detached(self._key.secret_key, data)


@contextmanager
def gnupg_home() -> Iterator[Path]:
    """A private GnuPG home directory, removed with its agent afterwards."""
    home = Path(tempfile.mkdtemp(prefix="hockeypuck-gnupg-"))
    try:
        home.chmod(0o700)
        # GnuPG 2.4 (Ubuntu 24.04) may default a new home to keyboxd, a separate package;
        # an existing common.conf without `use-keyboxd` keeps the plain keyring file.
        (home / "common.conf").write_text("")
        yield home
    finally:
        _stop_agent(home)
        shutil.rmtree(home, ignore_errors=True)


def _env(home: Path) -> dict[str, str]:
    env = {name: os.environ[name] for name in _ENV_KEEP if name in os.environ}
    env["GNUPGHOME"] = str(home)
    return env


def _gpg(home: Path, args: Sequence[str], *, what: str, stdin: bytes | None = None) -> bytes:
    command = [
        GPG,
        "--homedir",
        str(home),
        "--batch",
        "--no-tty",
        "--no-options",
        "--pinentry-mode",
        "loopback",
        *args,
    ]
    try:
        result = subprocess.run(
            command,
            input=stdin if stdin is not None else b"",
            capture_output=True,
            env=_env(home),
            timeout=_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise GpgError(f"cannot {what}: {GPG} is not installed") from None
    except subprocess.TimeoutExpired:
        raise GpgError(f"cannot {what}: gpg did not finish within {_TIMEOUT}s") from None
    if result.returncode != 0:
        raise GpgError(f"cannot {what}: gpg exited {result.returncode}: {_reason(result.stderr)}")
    return result.stdout


def _reason(stderr: bytes) -> str:
    """The last line gpg printed about itself; never echoes input (no armor, no data)."""
    lines = [
        line.strip()
        for line in stderr.decode(errors="replace").splitlines()
        if line.startswith("gpg: ")
        and "-----" not in line
        and not line.startswith(("gpg:  ", "gpg: Total number"))
    ]
    return lines[-1][:200] if lines else "no reason given"


def _only_fingerprint(home: Path, *, secret: bool) -> str:
    listing = "--list-secret-keys" if secret else "--list-keys"
    output = _gpg(home, ["--with-colons", listing], what="list the keys")
    fingerprints = _primary_fingerprints(output.decode())
    if len(fingerprints) != 1:
        raise GpgError(f"expected one key, found {len(fingerprints)}")
    return fingerprints[0]


def _primary_fingerprints(colons: str) -> list[str]:
    """Primary-key fingerprints in `--with-colons` output (the record after pub or sec)."""
    fingerprints: list[str] = []
    after_primary = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sec"):
            after_primary = True
        elif fields[0] == "fpr" and after_primary and len(fields) > 9:  # codespell:ignore fpr
            fingerprints.append(fields[9].upper())
            after_primary = False
        elif fields[0] in ("sub", "ssb", "uid"):
            after_primary = False
    return fingerprints


def _stop_agent(home: Path) -> None:
    for args in (["--kill", "all"], ["--remove-socketdir"]):
        try:
            subprocess.run(
                [GPGCONF, "--homedir", str(home), *args],
                capture_output=True,
                env=_env(home),
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            logger.warning("could not stop the gpg agent of a temporary GnuPG home")
