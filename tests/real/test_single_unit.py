"""One unit on the real Hockeypuck: the charm's config starts it and it serves."""

from __future__ import annotations

from collections.abc import Callable

from ops import testing

from tests.real.deployment import Deployment


def test_one_unit_serves(make_deployment: Callable[[str], Deployment]):
    deployment = make_deployment("solo")
    deployment.deploy(1)
    unit = deployment.units[0]
    print(unit.config_file.read_text())
    print(unit.log_text()[-3000:])
    assert deployment.statuses()[unit.name] == testing.ActiveStatus(""), deployment.statuses()
    assert unit.running()
    unit.client().health()
