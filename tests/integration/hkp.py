"""Small HKP helpers for talking to a deployed unit from the test runner."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import jubilant

HKP_PORT = 11371


def unit_address(status: jubilant.Status, app: str, index: int = 0) -> str:
    """The public address of one unit of an application."""
    return status.apps[app].units[f"{app}/{index}"].public_address


def add_key(address: str, armored: str) -> int:
    """POST /pks/add; returns the HTTP status."""
    body = urllib.parse.urlencode({"keytext": armored}).encode()
    request = urllib.request.Request(f"http://{address}:{HKP_PORT}/pks/add", data=body)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - test URL
        return response.status


def get_key(address: str, fingerprint: str) -> tuple[int, str]:
    """GET /pks/lookup?op=get; returns the HTTP status and body."""
    query = urllib.parse.urlencode({"op": "get", "search": f"0x{fingerprint}", "options": "mr"})
    url = f"http://{address}:{HKP_PORT}/pks/lookup?{query}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""
