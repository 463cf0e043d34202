"""The snap recipe in `snap/`, checked without snapcraft: complete, consistent, tied to the charm.

The charm's idea of the snap (src/snap_layout.py) and the recipe must agree on names and paths;
the wrappers in snap/local/bin are run here against fake Hockeypuck binaries to show that they
pass every argument on and use the config file the charm writes.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

import snap_layout

REPO_ROOT = Path(__file__).parents[2]
SNAP_DIR = REPO_ROOT / "snap"
RECIPE = SNAP_DIR / "snapcraft.yaml"
README = SNAP_DIR / "README.md"

HOCKEYPUCK_VERSION = "2.3.3"
UPSTREAM_REPO = "https://github.com/hockeypuck/hockeypuck"
# go.mod of Hockeypuck 2.3.1 and later: `go 1.24.12`.
GO_REQUIRED = (1, 24, 12)
# What the upstream Makefile's `build` target builds and `install` copies to $(prefix)/bin.
UPSTREAM_COMMANDS = (
    "hockeypuck",
    "hockeypuck-dump",
    "hockeypuck-load",
    "hockeypuck-pbuild",
    "hockeypuck-reload",
)
# The snap's tool apps, and the upstream binary each one runs.
TOOLS = {
    "load": "hockeypuck-load",
    "dump": "hockeypuck-dump",
    "pbuild": "hockeypuck-pbuild",
    "reload": "hockeypuck-reload",
}

# Arguments a wrapper must hand on exactly: spaces, a quoted glob, an empty string, a quote.
AWKWARD_ARGS = ["-log", "DEBUG", "/var/snap/hockeypuck/common/my dumps/*.pgp", "", "it's"]


def _recipe() -> dict[str, Any]:
    data = yaml.safe_load(RECIPE.read_text())
    assert isinstance(data, dict), "snap/snapcraft.yaml is not a mapping"
    return data


def _part_with_source(recipe: dict[str, Any], source: str) -> dict[str, Any]:
    parts = [
        part
        for part in recipe["parts"].values()
        if str(part.get("source", "")).removesuffix(".git") == source
    ]
    assert len(parts) == 1, f"expected one part with source {source}, found {len(parts)}"
    return parts[0]


def _build_part(recipe: dict[str, Any]) -> dict[str, Any]:
    return _part_with_source(recipe, UPSTREAM_REPO)


def _make_variable(script: str, target: str, name: str) -> str:
    """The value given to NAME on the `make TARGET` line of an override script."""
    for line in script.splitlines():
        words = shlex.split(line, comments=True)
        if words[:2] == ["make", target]:
            for word in words[2:]:
                if word.startswith(f"{name}="):
                    return word.split("=", 1)[1]
    raise AssertionError(f"no `make {target} ... {name}=...` line in override-build")


def _installed_by_build(recipe: dict[str, Any]) -> set[PurePosixPath]:
    """Paths, relative to $SNAP, of the upstream binaries the build part installs."""
    script = _build_part(recipe)["override-build"]
    prefix = PurePosixPath(_make_variable(script, "install", "prefix"))
    return {prefix.relative_to("/") / "bin" / command for command in UPSTREAM_COMMANDS}


def _shipped_from_snap_dir(recipe: dict[str, Any]) -> dict[PurePosixPath, Path]:
    """Paths, relative to $SNAP, of the files that local parts dump from snap/."""
    shipped: dict[PurePosixPath, Path] = {}
    for part in recipe["parts"].values():
        source = str(part.get("source", ""))
        if part.get("plugin") != "dump" or not source.startswith("snap/"):
            continue
        assert "organize" not in part, "organize is not modelled by this test: extend it"
        root = REPO_ROOT / source
        for path in root.rglob("*"):
            if path.is_file():
                shipped[PurePosixPath(path.relative_to(root).as_posix())] = path
    return shipped


def _wrapper(recipe: dict[str, Any], app: str) -> Path:
    command = PurePosixPath(shlex.split(recipe["apps"][app]["command"])[0])
    shipped = _shipped_from_snap_dir(recipe)
    assert command in shipped, f"app {app}: {command} is not a file shipped from snap/"
    return shipped[command]


def _fake_snap(tmp_path: Path) -> dict[str, str]:
    """A $SNAP whose Hockeypuck binaries record their working directory and arguments."""
    snap = tmp_path / "snap"
    common = tmp_path / "common"
    common.mkdir()
    recorder = '#!/bin/sh\npwd > "$RECORD.cwd"\nprintf "%s\\0" "$0" "$@" > "$RECORD"\n'
    # Only what the build installs: a wrapper that execs anything else fails to run.
    for installed in _installed_by_build(_recipe()):
        binary = snap / installed
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text(recorder)
        binary.chmod(0o755)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SNAP": str(snap),
        "SNAP_COMMON": str(common),
        "RECORD": str(tmp_path / "record"),
    }


def _run(wrapper: Path, args: list[str], env: dict[str, str], cwd: Path) -> tuple[str, list[str]]:
    """Run a wrapper; return the working directory and argv its binary was started with."""
    result = subprocess.run(
        [str(wrapper), *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    record = Path(env["RECORD"])
    argv = record.read_bytes().decode().split("\0")[:-1]
    return Path(f"{record}.cwd").read_text().strip(), argv


def _config(env: dict[str, str]) -> str:
    """The config file the charm writes, as the fake snap's $SNAP_COMMON holds it."""
    return str(
        Path(env["SNAP_COMMON"]) / snap_layout.CONFIG_FILE.relative_to(snap_layout.SNAP_COMMON)
    )


# The recipe itself


def test_recipe_is_complete():
    recipe = _recipe()

    assert recipe["name"] == snap_layout.SNAP_NAME
    assert recipe["version"] == HOCKEYPUCK_VERSION
    assert recipe["base"] == "core24"
    assert recipe["confinement"] == "strict"
    assert recipe["grade"] == "stable"
    assert recipe["summary"]
    assert recipe["description"]
    assert set(recipe["platforms"]) == {"amd64", "arm64"}
    for name, platform in recipe["platforms"].items():
        # Shorthand (build on and for the platform's architecture), or said in full.
        assert platform is None or platform == {"build-on": [name], "build-for": [name]}
    assert set(recipe["apps"]) == {snap_layout.DAEMON_APP, *TOOLS}
    assert "hooks" not in recipe


def test_builds_the_upstream_release_tag():
    part = _build_part(_recipe())

    assert part["source-type"] == "git"
    assert str(part["source-tag"]) == HOCKEYPUCK_VERSION
    script = part["override-build"]
    assert _make_variable(script, "build", "VERSION") == "${SNAPCRAFT_PROJECT_VERSION}"
    assert _make_variable(script, "install", "DESTDIR") == "${CRAFT_PART_INSTALL}"


def test_builds_with_the_go_the_release_asks_for_and_its_vendored_modules():
    part = _build_part(_recipe())
    go_snaps = [snap for snap in part["build-snaps"] if snap.split("/")[0] == "go"]
    environment = {k: v for entry in part["build-environment"] for k, v in entry.items()}

    assert len(go_snaps) == 1, part["build-snaps"]
    match = re.fullmatch(r"go/(\d+)\.(\d+)/(stable|candidate)", go_snaps[0])
    assert match, f"pin the go snap to a release track, not {go_snaps[0]}"
    # A track of the same minor release: its newest patch release is at least 1.24.12.
    assert (int(match[1]), int(match[2])) == GO_REQUIRED[:2]
    # Never fetch a toolchain or modules behind the recipe's back.
    assert environment["GOTOOLCHAIN"] == "local"
    assert "-mod=vendor" in environment["GOFLAGS"].split()


def test_daemon_app():
    app = _recipe()["apps"][snap_layout.DAEMON_APP]

    assert app["daemon"] == "simple"
    assert app["restart-condition"] == "on-failure"
    assert {"network", "network-bind"} <= set(app["plugs"])
    # Not started before the charm has written the config: the charm enables and starts it.
    assert app["install-mode"] == "disable"
    # snapd names the unit snap.<snap>.<app>.service: what the charm manages with systemctl.
    assert f"snap.{_recipe()['name']}.{snap_layout.DAEMON_APP}.service" == snap_layout.SERVICE


@pytest.mark.parametrize("app", sorted(TOOLS))
def test_tool_apps_reach_the_database(app: str):
    app_spec = _recipe()["apps"][app]

    assert "daemon" not in app_spec
    assert "network" in app_spec["plugs"]


@pytest.mark.parametrize("app", sorted({snap_layout.DAEMON_APP, *TOOLS}))
def test_app_command_is_a_file_shipped_from_snap_dir(app: str):
    recipe = _recipe()
    wrapper = _wrapper(recipe, app)

    assert wrapper.stat().st_mode & stat.S_IXUSR, f"{wrapper} is not executable"
    assert wrapper.read_text().startswith("#!/bin/sh\n")


@pytest.mark.parametrize("app", sorted({snap_layout.DAEMON_APP, *TOOLS}))
def test_wrapper_execs_a_binary_the_build_installs(app: str, tmp_path: Path):
    recipe = _recipe()
    env = _fake_snap(tmp_path)

    _, argv = _run(_wrapper(recipe, app), [], env, tmp_path)

    binary = PurePosixPath(Path(argv[0]).relative_to(env["SNAP"]).as_posix())
    assert binary in _installed_by_build(recipe)
    assert binary.name == TOOLS.get(app, "hockeypuck")


def test_no_hook_can_overwrite_the_config():
    hooks = SNAP_DIR / "hooks"
    present = sorted(path.name for path in hooks.iterdir()) if hooks.is_dir() else []

    # The charm owns hockeypuck.conf; an install or configure hook writing one would clobber it.
    assert not {"install", "configure", "post-refresh"} & set(present), present


# The charm and the recipe agree


def test_templates_and_webroot_are_where_the_charm_points_the_daemon():
    script = _build_part(_recipe())["override-build"]
    statedir = PurePosixPath(_make_variable(script, "install", "statedir"))
    prefix = PurePosixPath(_make_variable(script, "install", "prefix"))

    assert PurePosixPath("/snap") / snap_layout.SNAP_NAME / "current" == snap_layout.SNAP_CURRENT
    installed = snap_layout.SNAP_CURRENT / statedir.relative_to("/")
    assert installed / "templates" == snap_layout.TEMPLATES_DIR
    assert installed / "www" == snap_layout.WEBROOT_DIR
    assert prefix == PurePosixPath("/usr")
    # The build fails unless `make install` put there the templates the charm's config names.
    checked = re.findall(r"for template in ([^;]+);", script)
    assert checked, "override-build must check the installed templates"
    assert {"index.html.tmpl", "stats.html.tmpl"} <= set(checked[0].split())
    assert f"{statedir}/templates/${{template}}" in script


def test_config_file_and_prefix_tree_survive_refreshes():
    assert PurePosixPath("/var/snap") / snap_layout.SNAP_NAME / "common" == snap_layout.SNAP_COMMON
    assert snap_layout.CONFIG_FILE.parent == snap_layout.SNAP_COMMON
    assert snap_layout.PREFIX_TREE.is_relative_to(snap_layout.SNAP_COMMON)


# The wrappers, run


@pytest.mark.parametrize("app", sorted({"load", "pbuild", "reload"}))
def test_tool_wrapper_passes_every_argument_through(app: str, tmp_path: Path):
    env = _fake_snap(tmp_path)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()

    ran_in, argv = _run(_wrapper(_recipe(), app), AWKWARD_ARGS, env, cwd)

    assert argv == [
        f"{env['SNAP']}/usr/bin/{TOOLS[app]}",
        "-config",
        _config(env),
        *AWKWARD_ARGS,
    ]
    # The caller's directory is kept, so relative file arguments mean what the caller meant.
    assert Path(ran_in) == cwd


def test_daemon_wrapper_runs_in_snap_common_with_the_config(tmp_path: Path):
    env = _fake_snap(tmp_path)

    ran_in, argv = _run(_wrapper(_recipe(), snap_layout.DAEMON_APP), [], env, tmp_path)

    assert argv == [
        f"{env['SNAP']}/usr/bin/hockeypuck",
        "-config",
        _config(env),
    ]
    assert Path(ran_in) == Path(env["SNAP_COMMON"])


@pytest.mark.parametrize("path_args", [["-path", "/x y"], ["-path=/x y"], ["--path", "/x y"]])
def test_dump_wrapper_with_a_path_passes_arguments_through(path_args: list[str], tmp_path: Path):
    env = _fake_snap(tmp_path)
    args = ["-count", "100", *path_args]

    _, argv = _run(_wrapper(_recipe(), "dump"), args, env, tmp_path)

    assert argv == [
        f"{env['SNAP']}/usr/bin/hockeypuck-dump",
        "-config",
        _config(env),
        *args,
    ]
    assert not (Path(env["SNAP_COMMON"]) / "dump").exists()


def test_dump_wrapper_without_a_path_dumps_to_a_new_dated_directory(tmp_path: Path):
    env = _fake_snap(tmp_path)

    _, argv = _run(_wrapper(_recipe(), "dump"), ["-count", "5", "-log", "a b"], env, tmp_path)

    dumps = list((Path(env["SNAP_COMMON"]) / "dump").iterdir())
    assert len(dumps) == 1
    assert dumps[0].is_dir()
    assert re.fullmatch(r"\d{8}T\d{6}Z", dumps[0].name), dumps[0].name
    assert argv == [
        f"{env['SNAP']}/usr/bin/hockeypuck-dump",
        "-config",
        _config(env),
        "-path",
        str(dumps[0]),
        "-count",
        "5",
        "-log",
        "a b",
    ]


def test_dump_wrapper_help_creates_nothing(tmp_path: Path):
    env = _fake_snap(tmp_path)

    _, argv = _run(_wrapper(_recipe(), "dump"), ["-h"], env, tmp_path)

    assert argv[1:] == ["-config", _config(env), "-h"]
    assert not (Path(env["SNAP_COMMON"]) / "dump").exists()


def test_wrappers_are_shellcheck_clean():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck); CI installs it")
    wrappers = sorted(
        path
        for path in _shipped_from_snap_dir(_recipe()).values()
        if re.match(r"#!\S*/(ba|da)?sh\b", path.read_text())
    )

    result = subprocess.run(
        [shellcheck, *map(str, wrappers)], capture_output=True, text=True, check=False
    )

    assert wrappers
    assert result.returncode == 0, result.stdout + result.stderr


# The README


def test_readme_builds_and_attaches_the_snap_the_recipe_makes():
    recipe = _recipe()
    text = README.read_text()
    charm = yaml.safe_load((REPO_ROOT / "charmcraft.yaml").read_text())
    (resource,) = [name for name, spec in charm["resources"].items() if spec["type"] == "file"]
    snap_file = f"{recipe['name']}_{recipe['version']}_amd64.snap"

    assert "snapcraft pack" in text
    assert f"juju deploy hockeypuck --resource {resource}=./{snap_file}" in text
    assert f"juju attach-resource hockeypuck {resource}=./{snap_file}" in text
    assert "air-gapped" in text.lower()


def test_log_slot_shares_the_directory_the_charm_logs_to():
    recipe = yaml.safe_load((SNAP_DIR / "snapcraft.yaml").read_text())

    slot = recipe["slots"][snap_layout.LOG_SLOT]

    assert slot["interface"] == "content"
    common = str(snap_layout.SNAP_COMMON)
    shared = [path.replace("$SNAP_COMMON", common) for path in slot["source"]["read"]]
    assert shared == [str(snap_layout.LOG_DIR)]
    assert snap_layout.LOG_FILE.parent == snap_layout.LOG_DIR
