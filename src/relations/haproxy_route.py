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

from parsing import is_valid_host, shown

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


def publish(
    relation: ops.Relation,
    app: ops.Application,
    unit: ops.Unit,
    route: Route | None,
    address: str | None,
) -> None:
    """Write the route (when given: the leader) and this unit's address, where they differ."""
    if route is not None:
        wanted = route.app_databag()
        _update(relation.data[app], wanted)
        for key in OPTIONAL_KEYS - wanted.keys():
            relation.data[app].pop(key, None)
    if address:
        _update(relation.data[unit], {"address": json.dumps(address)})


@dataclass(frozen=True)
class Answer:
    """What HAProxy answered: the usable URLs it serves the route on, and what was not usable."""

    urls: tuple[str, ...] = ()
    problem: str = ""


def endpoints(relation: ops.Relation | None) -> Answer:
    """The URLs HAProxy serves this route on (none until it answers).

    HAProxy's data is not trusted: anything but a JSON list of http(s) URLs with a valid host
    is left out, and said in `problem`.
    """
    if relation is None or relation.app is None:
        return Answer()
    raw = relation.data[relation.app].get("endpoints")
    if not raw:
        return Answer()
    try:
        urls = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return Answer(problem=f"haproxy's endpoints {shown(raw)} are not JSON")
    if not isinstance(urls, list) or len(urls) > MAX_ENDPOINTS:
        return Answer(problem=f"haproxy's endpoints {shown(raw)} are not a list of URLs")
    usable = tuple(url for url in urls if _is_url(url))
    unusable = [url for url in urls if url not in usable]
    if unusable:
        logger.warning("ignoring haproxy's endpoints that are not URLs: %r", unusable)
        return Answer(usable, f"haproxy's endpoint {shown(unusable[0])} is not an http(s) URL")
    return Answer(usable)


def hostname(url: str) -> str:
    """The host name of a URL `endpoints` returned."""
    return urlsplit(url).hostname or ""


def _is_url(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= MAX_URL_LENGTH
        and value.isprintable()
        and " " not in value
        and _is_http_url(value)
    )


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
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
