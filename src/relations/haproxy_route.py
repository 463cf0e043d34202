"""The `haproxy-route` requirer (the `haproxy` charm's protocol v2).

Every value in the databags is JSON-encoded. The leader writes the route in the application
databag; every unit writes its address in its unit databag; HAProxy answers with the URLs it
serves the route on.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import ops

from parsing import is_valid_host

logger = logging.getLogger(__name__)

ENDPOINT = "haproxy-route"
MAX_URL_LENGTH = 2048
MAX_ENDPOINTS = 16
# Keys the route has only when configured: removed from the databag when unset again.
OPTIONAL_KEYS = frozenset({"hostname", "rate_limit"})
# HAProxy's validation refuses strings containing any of these.
_FORBIDDEN = re.compile(r"[\n\t#\\'\"$ ]")


@dataclass(frozen=True)
class RateLimit:
    """Connections a client may open per minute, and what HAProxy does beyond that."""

    connections_per_minute: int
    policy: str


@dataclass(frozen=True)
class Route:
    """What this application asks HAProxy for."""

    service: str
    port: int
    hostname: str
    health_path: str
    rate_limit: RateLimit | None

    def app_databag(self) -> dict[str, str]:
        """The requirer application databag, every value JSON-encoded."""
        fields: dict[str, object] = {
            "service": self.service,
            "ports": [self.port],
            "protocol": "http",
            "check": {"interval": 30, "rise": 2, "fall": 3, "path": self.health_path},
            "load_balancing": {"algorithm": "leastconn"},
            # Hockeypuck has no timeouts of its own; /pks/add of a large key and recon's
            # /pks/hashquery can take minutes.
            "timeout": {"server": 300, "connect": 5, "queue": 60},
            "retry": {"count": 2, "redispatch": True},
            "http_server_close": True,
            # Keys are public and HKP clients still use plain hkp:// on port 80: serve it
            # instead of redirecting to HTTPS.
            "allow_http": True,
        }
        if self.hostname:
            fields["hostname"] = self.hostname
        if self.rate_limit is not None:
            fields["rate_limit"] = {
                "connections_per_minute": self.rate_limit.connections_per_minute,
                "policy": self.rate_limit.policy,
            }
        for value in _strings(fields):
            if _FORBIDDEN.search(value):
                raise ValueError(f"{value!r} has a character HAProxy refuses")
        return {key: json.dumps(value) for key, value in fields.items()}


def publish_address(relation: ops.Relation, unit: ops.Unit, address: str | None) -> None:
    """Write this unit's address, if it differs.

    Every unit does so first thing: HAProxy refuses the whole relation while one unit's databag
    has no valid `address`.
    """
    if address:
        _update(relation.data[unit], {"address": json.dumps(address)})


def publish_route(relation: ops.Relation, app: ops.Application, route: Route) -> None:
    """Write the route (the leader), only the keys that differ; drop options now unset."""
    wanted = route.app_databag()
    _update(relation.data[app], wanted)
    for key in OPTIONAL_KEYS - wanted.keys():
        relation.data[app].pop(key, None)


class RouteRefusedError(Exception):
    """HAProxy answered with no endpoints: it found the route invalid."""


def endpoints(relation: ops.Relation | None) -> tuple[str, ...]:
    """The URLs HAProxy serves this route on (empty until it answers)."""
    return _answer(relation) or ()


def route_message(relation: ops.Relation | None, hostname: str, service: str) -> str:
    """What the Active status says about the route: where it is served, or why not yet.

    Raises:
        RouteRefusedError: HAProxy published an empty list of endpoints, which it does for a
            relation it found invalid; the message names the causes that fit and the fix.
    """
    if relation is None:
        return ""
    answer = _answer(relation)
    if answer:
        return f"serving {', '.join(answer)}"
    if answer is None:
        if hostname:
            return "haproxy has not published the route yet (it needs its TLS certificates)"
        return (
            "haproxy has not published the route yet; with no hostname set here it needs"
            " its own external-hostname"
        )
    if not hostname:
        raise RouteRefusedError(
            f"haproxy refused the route: no host name; set one with juju config {service}"
            " hostname=... (or haproxy's external-hostname)"
        )
    raise RouteRefusedError(
        f"haproxy refused the route for {hostname}: another application on it may use the"
        f" service name {service!r}, or a unit has no address yet (see haproxy's debug-log)"
    )


def _answer(relation: ops.Relation | None) -> tuple[str, ...] | None:
    """HAProxy's endpoints; None when it has not answered (no `endpoints` key) or garbled."""
    if relation is None or relation.app is None:
        return None
    raw = relation.data[relation.app].get("endpoints")
    if raw is None:
        return None
    try:
        urls = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        logger.warning("ignoring haproxy's endpoints: not JSON")
        return None
    if not isinstance(urls, list) or len(urls) > MAX_ENDPOINTS:
        logger.warning("ignoring haproxy's endpoints: not a list of URLs")
        return None
    usable = tuple(url for url in urls if _is_url(url))
    if len(usable) != len(urls):
        # Untrusted data: a URL urllib cannot split (`http://[evil]/`) must not end the hook.
        logger.warning("ignoring haproxy's endpoints that are not http(s) URLs: %r", urls)
        if not usable:
            return None
    return usable


def hostname(url: str) -> str:
    """The host name of a URL `endpoints` returned."""
    return urlsplit(url).hostname or ""


def _is_url(value: object) -> bool:
    """An http(s) URL of printable text with a valid host and port."""
    if not (
        isinstance(value, str)
        and len(value) <= MAX_URL_LENGTH
        and value.isprintable()
        and " " not in value
    ):
        return False
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError when malformed or out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and port != 0 and is_valid_host(parts.hostname or "")


def _update(databag: ops.RelationDataContent, wanted: dict[str, str]) -> None:
    for key, value in wanted.items():
        if databag.get(key) != value:
            databag[key] = value


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []
