"""What Hockeypuck itself reads from a config file (its own parser, built from its source)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.real import hockeypuck_build


def read_settings(config: Path) -> tuple[dict[str, Any], list[str]]:
    """Hockeypuck's settings from the file, and the keys it left unused (it ignores them)."""
    checker = hockeypuck_build.build().binary(hockeypuck_build.SETTINGS_CHECK)
    done = subprocess.run(
        [str(checker), str(config)], capture_output=True, text=True, check=False, timeout=30
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    return report["settings"], report["undecoded"]
