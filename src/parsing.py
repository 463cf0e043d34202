"""Untrusted text to typed values: the checks every input boundary of the charm shares.

Config, relation data, action parameters, state files, database rows and HKP answers all pass
through these before anything trusts them. Numbers are ASCII digits only (`'²'.isdigit()` is
true but `int()` refuses it); addresses and networks are what Go's `net.ParseIP` and
`net.ParseCIDR` accept (no IPv6 zone such as `%eth0`, no netmask form), written back in their
canonical form; text shown to the operator is one line and bounded.
"""

from __future__ import annotations

import ipaddress
import re

MAX_PORT = 65535
MAX_SHOWN = 48  # characters of an untrusted value quoted in a message
MAX_REASON = 200  # characters of an error text from outside (systemctl, snapd, the OS)
ELLIPSIS = "…"
_ASCII_DIGITS = re.compile(r"[0-9]+")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def ascii_int(text: str, low: int, high: int) -> int | None:
    """The whole number `text` spells in ASCII digits, if within [low, high]; else None."""
    if not _ASCII_DIGITS.fullmatch(text) or len(text) > len(str(high)) + 8:
        return None
    value = int(text)
    return value if low <= value <= high else None


def port(text: str) -> int | None:
    """A TCP port 1-65535 written in ASCII digits, else None."""
    return ascii_int(text, 1, MAX_PORT)


def go_ip(text: str) -> str | None:
    """The canonical form of an IP address Go's `net.ParseIP` accepts, else None."""
    if "%" in text or not text.isascii():
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def go_cidr(text: str) -> str | None:
    """The network of a `net.ParseCIDR` input (address/prefix, or a bare address), else None.

    Host bits are cleared (`10.0.0.1/24` -> `10.0.0.0/24`), as Go's ParseCIDR returns them.
    """
    address, slash, prefix = text.partition("/")
    if go_ip(address) is None or (slash and not _ASCII_DIGITS.fullmatch(prefix)):
        return None
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return None


def is_valid_host(value: str) -> bool:
    """Whether the value is an IP address (as Go reads it) or a DNS host name (RFC 1123)."""
    if go_ip(value) is not None:
        return True
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    # A name made only of digits and dots is a malformed IP address, not a host name.
    if all(label.isdigit() for label in labels):
        return False
    return all(_DNS_LABEL.fullmatch(label) for label in labels)


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """`repr` of an untrusted value for a message, with at most `limit` characters of it."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return repr(text) if isinstance(value, str) else text


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """Text on one line (white space and control characters collapsed), at most `limit` long."""
    flat = _SPACE.sub(" ", _CONTROL.sub(" ", text)).strip()
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + ELLIPSIS
    return flat


def printable(text: str, limit: int) -> bool:
    """Whether the text is at most `limit` characters and free of control characters."""
    return len(text) <= limit and _CONTROL.search(text) is None
