"""Hockeypuck 2.3 config keys: which exist, in which section, with which TOML type.

Hockeypuck silently ignores keys it does not know (a misspelt key is lost without a word) and
exits on a key of the wrong type (`loglevel=5`), matching key names case-insensitively. So a
test must pin every key the charm writes to this list. Sources, both recorded from a real
Hockeypuck 2.3.3: the spec's "Config file" section (docs: spec/hockeypuck.md) and the
"Effective defaults" settings dump in the reference config observations
(tests/functional/data/README.md says where they come from).

A key whose TOML type was never observed is typed `ANY`: the charm must not write it before
someone records its type.
"""

from __future__ import annotations

from typing import Any, Final

STRING: Final = "string"
INTEGER: Final = "integer"
BOOLEAN: Final = "boolean"
STRINGS: Final = "array of strings"
ANY: Final = "any (type not recorded)"

PARTNER_SECTION: Final = "hockeypuck.conflux.recon.partner"

SECTIONS: Final[dict[str, dict[str, str]]] = {
    "hockeypuck": {
        "loglevel": STRING,
        "logfile": STRING,
        "hostname": STRING,
        "nodename": STRING,
        "contact": STRING,
        "adminKeys": STRINGS,
        "enableVHosts": BOOLEAN,
        "indexTemplate": STRING,
        "vindexTemplate": STRING,
        "statsTemplate": STRING,
        "webroot": STRING,
        "reconStaleSecs": INTEGER,
        "maxResponseLen": INTEGER,
    },
    "hockeypuck.hkp": {
        "bind": STRING,
        "advertisedBind": STRING,
        "logRequestDetails": BOOLEAN,
    },
    "hockeypuck.hkp.queries": {
        "selfSignedOnly": BOOLEAN,
        "keywordSearchDisabled": BOOLEAN,
        "enableInexact": BOOLEAN,
    },
    "hockeypuck.hkps": {
        "bind": STRING,
        "cert": STRING,
        "key": STRING,
    },
    "hockeypuck.metrics": {
        "metricsAddr": STRING,
        "metricsPath": STRING,
    },
    "hockeypuck.openpgp": {
        "nworkers": INTEGER,
        "maxKeyLength": INTEGER,
        "maxPacketLength": INTEGER,
        "blacklist": STRINGS,
        "enumerableDomains": STRINGS,
    },
    "hockeypuck.openpgp.db": {
        "driver": STRING,
        "dsn": STRING,
        "requestQueryLimit": INTEGER,
        "reindexOnStartup": BOOLEAN,
    },
    "hockeypuck.conflux": {},
    "hockeypuck.conflux.recon": {
        "httpAddr": STRING,
        "reconAddr": STRING,
        "allowCIDRs": STRINGS,
        "filters": STRINGS,
        "seenCacheSize": INTEGER,
        "gossipIntervalSecs": INTEGER,
        "maxOutstandingReconRequests": INTEGER,
        # These exist but must match every peer's: the charm must never write them.
        "threshMult": INTEGER,
        "bitQuantum": INTEGER,
        "mBar": INTEGER,
        "version": STRING,
    },
    "hockeypuck.conflux.recon.leveldb": {
        "path": STRING,
    },
    PARTNER_SECTION: {},
    "hockeypuck.pks": {
        "from": STRING,
        "to": STRING,
    },
}

# Keys of each [hockeypuck.conflux.recon.partner.<name>] section.
PARTNER_KEYS: Final[dict[str, str]] = {
    "httpAddr": STRING,
    "reconAddr": STRING,
    "webAddr": STRING,
    "weight": ANY,
    "mask": ANY,
    "pksFailover": ANY,
}

# Keys that exist but that the charm must not write (they must match the peers' values).
FORBIDDEN: Final[frozenset[tuple[str, str]]] = frozenset(
    ("hockeypuck.conflux.recon", key) for key in ("threshMult", "bitQuantum", "mBar", "version")
)


def _type_matches(expected: str, value: object) -> bool:
    """Whether Go's TOML decoder would put `value` into a field of the expected type."""
    if expected == ANY:
        return True
    if expected == STRING:
        return isinstance(value, str)
    if expected == BOOLEAN:
        return isinstance(value, bool)
    if expected == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == STRINGS:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    raise AssertionError(f"unknown schema type {expected!r}")


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, str):
        return STRING
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _section_keys(path: tuple[str, ...]) -> dict[str, str] | None:
    """The keys of the section at `path` (matched case-insensitively), or None if unknown."""
    dotted = ".".join(path).lower()
    for name, keys in SECTIONS.items():
        if name.lower() == dotted:
            return keys
    partner_path = PARTNER_SECTION.lower().split(".")
    if len(path) == len(partner_path) + 1 and [p.lower() for p in path[:-1]] == partner_path:
        return PARTNER_KEYS
    return None


def violations(document: dict[str, Any]) -> list[str]:
    """Everything in a parsed config that Hockeypuck 2.3 would ignore, or die on.

    Returns:
        One line per problem; empty when every key is known and well typed.
    """
    problems: list[str] = []
    _check_table(document, (), problems)
    return problems


def _check_table(table: dict[str, Any], path: tuple[str, ...], problems: list[str]) -> None:
    keys = _section_keys(path) if path else {}
    where = f"[{'.'.join(path)}]" if path else "the top level"
    if keys is None:
        problems.append(f"unknown section {where}")
        return
    seen: dict[str, str] = {}
    by_lower = {name.lower(): (name, kind) for name, kind in keys.items()}
    for key, value in table.items():
        if key.lower() in seen:
            problems.append(f"{where}: {key!r} and {seen[key.lower()]!r} are the same key")
        seen[key.lower()] = key
        if isinstance(value, dict):
            _check_table(value, (*path, key), problems)
            continue
        if key.lower() not in by_lower:
            problems.append(f"{where}: unknown key {key!r} (Hockeypuck ignores it)")
            continue
        name, kind = by_lower[key.lower()]
        if not _type_matches(kind, value):
            problems.append(
                f"{where}: {key!r} has TOML type {_toml_type(value)}, Hockeypuck's is {kind}"
            )
        section = ".".join(path)
        if any(f.lower() == section.lower() and k == name for f, k in FORBIDDEN):
            problems.append(f"{where}: {key!r} must match every peer: never write it")
