"""Host names the charm and the `haproxy` charm must judge alike (unit and contract tests)."""

from __future__ import annotations

ACCEPTED = (
    "keys.example.com",
    "Keys.Example.COM",
    "a.b.co",
    "keyserver-1.example.org",
    "0.keys.example.net",
    "xn--bcher-kva.example",
    f"{'k' * 63}.example.com",
    "ключи.example.com",  # checked in its IDNA form
)
REFUSED = (
    "keys.example.x",  # a last label of one character
    "keys.example.c0",  # a last label ending in a digit
    "keyserver",  # one label
    "10.0.0.1",
    "2001:db8::1",
    "keys.example.com.",  # trailing dot
    "-x.example.com",
    "x-.example.com",
    "keys_1.example.com",
    "keys..example.com",
    f"{'k' * 64}.example.com",  # a label of more than 63 characters
    ".".join(["keys"] * 51) + ".com",  # more than 253 characters
)
# HAProxy takes wildcards; a keyserver's public name is never one: the charm refuses them.
HAPROXY_ONLY = ("*.example.com", "*.keys.example.org")
