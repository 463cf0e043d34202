"""The real counterpart libraries, loaded from `../shared/upstream-libs` (never copied here).

Without that folder the contract tests skip, saying why; under CI (env `CI` set) they fail.
`UPSTREAM_LIBS` names another folder.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.unit.conftest import REPO_ROOT

UPSTREAM_LIBS = Path(os.environ.get("UPSTREAM_LIBS", REPO_ROOT.parent / "shared/upstream-libs"))


def upstream(module: str) -> ModuleType:
    """Import one of the counterpart libraries (e.g. `charms.haproxy.v2.haproxy_route`)."""
    if not (UPSTREAM_LIBS / "charms").is_dir():
        reason = f"the counterpart libraries are not in {UPSTREAM_LIBS} (set UPSTREAM_LIBS)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the contract tests")
        pytest.skip(reason)
    if str(UPSTREAM_LIBS) not in sys.path:
        sys.path.insert(0, str(UPSTREAM_LIBS))
    return importlib.import_module(module)
