"""The LogQL line-filter reader the Loki rule tests rely on."""

from __future__ import annotations

import pytest

from tests.logql_filters import line_filters, passes

EXPR = '{%%juju_topology%%} |= "level=error" |~ "msg=\\"recon with .* failed\\"" != "debug" [30m]'


def test_filters_are_read_in_order_and_unquoted():
    assert line_filters(EXPR) == [
        ("|=", "level=error"),
        ("|~", 'msg="recon with .* failed"'),
        ("!=", "debug"),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('level=error msg="recon with recon=10.0.0.1:11370 failed" error="refused"', True),
        ('level=info msg="recon with recon=10.0.0.1:11370 failed"', False),
        ('level=error msg="recon with x failed" debug', False),
        ('level=error msg="accepted recon from [recon=...]"', False),
    ],
)
def test_a_line_passes_only_every_filter(line: str, expected: bool):
    assert passes(line, EXPR) is expected
