"""Hostile values for the property-based tests, and what every hook outcome must satisfy."""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from ops import testing

from tests.functional import go_template, lib_pq
from tests.unit.conftest import config_file

MAX_STATUS_LENGTH = 256
RESULT_KEY = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")

# Values that broke, or could break, one of the three layers or a parser on the way.
NASTY = [
    "",
    " ",
    "²",
    "5432²",
    "٣",
    "fe80::1%eth0",
    "10.0.0.0/255.255.255.0",
    "::ffff:10.0.0.1",
    "http://[evil]/",
    "{{",
    "{{ .Env }}",
    "}}",
    '"',
    "\\",
    "'",
    "\x00",
    "\n",
    "\r\n",
    "\t",
    "\x7f",
    "\u2028",
    "ß",
    "ﬀ",
    "İ",
    "0x" + "ﬀ" * 40,
    "a" * 300,
    "é" * 70,
    "[x]",
    "[[x]]",
    "#",
    "a=b",
    "x\ny = 1",
    "null",
    "[]",
    "{}",
    "[1, 2]",
    '["http://ok.example.com/"]',
    "9" * 30,
    "-1",
    "0",
    "65536",
]


def hostile_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Any text, the nasty values, and mixtures of both."""
    pieces = st.one_of(st.sampled_from(NASTY), st.text(max_size=max_size))
    return st.one_of(
        st.sampled_from(NASTY),
        st.text(max_size=max_size),
        st.lists(pieces, min_size=2, max_size=4).map("".join),
    )


def check_status(status: testing.UnknownStatus | Any) -> None:
    """A status message is one line of printable text, and bounded."""
    message = status.message
    assert len(message) <= MAX_STATUS_LENGTH, len(message)
    assert "\n" not in message and "\r" not in message
    assert message == message.strip()


def check_config_file(root: Path) -> dict[str, Any] | None:
    """The config file, if any, is what Hockeypuck reads: mode 0600, template, TOML, DSN."""
    path = config_file(root)
    if not path.exists():
        return None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = tomllib.loads(go_template.render(path.read_text()))
    dsn = document["hockeypuck"]["openpgp"]["db"]["dsn"]
    lib_pq.parse(dsn)
    for cidr in document["hockeypuck"]["conflux"]["recon"]["allowCIDRs"]:
        assert cidr.isascii() and "%" not in cidr, cidr
    return document


def check_outcome(out: testing.State, root: Path, allowed: tuple[str, ...]) -> None:
    """No traceback happened (ops.testing raises); the status is clear; any file is valid."""
    check_status(out.unit_status)
    check_config_file(root)
    if out.unit_status.name != "active":
        assert out.unit_status.message.startswith(allowed), out.unit_status


def check_result_keys(results: dict[str, Any]) -> None:
    """Every key, at every level, is one Juju accepts."""
    for key, value in results.items():
        assert RESULT_KEY.fullmatch(key), key
        if isinstance(value, dict):
            check_result_keys(value)
        else:
            assert isinstance(value, str)
