"""The packed charm ships every file the charm reads at run time."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

import yaml

import hockeypuck_config
from relations import cos_agent

REPO = Path(__file__).resolve().parents[2]
# charmcraft's Python charm plugins (charm, poetry, python, uv) copy these into the charm.
PYTHON_PLUGINS = {"charm", "poetry", "python", "uv"}
PYTHON_PLUGIN_DIRS = ("src", "lib")


def shipped_patterns() -> list[str]:
    """Glob patterns, relative to the repository, of what the charm's parts put in the charm."""
    parts = yaml.safe_load((REPO / "charmcraft.yaml").read_text())["parts"]
    patterns: list[str] = []
    for part in parts.values():
        if part.get("plugin") in PYTHON_PLUGINS:
            patterns += [f"{directory}/*" for directory in PYTHON_PLUGIN_DIRS]
        elif part.get("plugin") == "dump":
            source = PurePosixPath(part.get("source", "."))
            for entry in part.get("stage") or part.get("prime") or ["*"]:
                patterns += [str(source / entry), str(source / entry / "*")]
    return [pattern.removeprefix("./") for pattern in patterns]


def runtime_files() -> list[str]:
    """Every file, relative to the repository, that the charm opens from its directory."""
    directories = [
        hockeypuck_config.TEMPLATES_DIR,
        cos_agent.METRICS_ALERT_RULES_DIR,
        cos_agent.LOG_ALERT_RULES_DIR,
        cos_agent.DASHBOARDS_DIR,
    ]
    files = [hockeypuck_config.TEMPLATES_DIR / hockeypuck_config.TEMPLATE_NAME]
    for directory in directories:
        files += [
            PurePosixPath(path.relative_to(REPO))
            for path in (REPO / directory).rglob("*")
            if path.is_file()
        ]
    return sorted({str(file) for file in files})


def test_every_runtime_file_exists():
    for file in runtime_files():
        assert (REPO / file).is_file(), file


def test_every_runtime_file_is_shipped_by_a_part():
    patterns = shipped_patterns()

    missing = [file for file in runtime_files() if not any(fnmatch(file, p) for p in patterns)]

    assert missing == []


def test_the_check_notices_an_unshipped_file():
    assert not any(fnmatch("docs/unshipped.md", p) for p in shipped_patterns())
