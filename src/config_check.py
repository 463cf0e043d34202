r"""The invariant where hockeypuck.conf is written: only a file Hockeypuck can read replaces it.

Hockeypuck reads the file in three layers (see `hockeypuck_config`): a Go `text/template`, then
TOML, then the lib/pq DSN. `problem()` checks the rendered text through all three, cheaply and
with the standard library only: the only template actions the charm writes are its escapes of
`{{` (`{{"{{"}}`); the TOML must parse, with every integer a Go int64; the DSN must be
`key=value` pairs naming the host, a port, the user, password, database and sslmode.
"""

from __future__ import annotations

import re

GO_TEMPLATE_OPEN = "{{"
GO_TEMPLATE_OPEN_ESCAPED = '{{"{{"}}'
DSN_KEYS = frozenset({"database", "host", "port", "user", "password", "sslmode"})
SSL_MODES = frozenset({"disable", "require", "verify-ca", "verify-full"})
_INT64 = (-(2**63), 2**63 - 1)
_DSN_KEY = re.compile(r"\s*([A-Za-z_]+)\s*=\s*")


def problem(text: str) -> str | None:
    """Why Hockeypuck could not read this config file, or None when it can."""
    import tomllib  # noqa: PLC0415 - only when a new file is about to be written

    toml_text = _go_template_output(text)
    if toml_text is None:
        return "it has a Go template action other than an escaped {{"
    try:
        document = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as error:
        return f"it is not valid TOML: {error}"
    large = _integer_out_of_range(document)
    if large is not None:
        return f"{large} does not fit a Go int64"
    try:
        dsn = document["hockeypuck"]["openpgp"]["db"]["dsn"]
    except (KeyError, TypeError):
        return "it has no [hockeypuck.openpgp.db] dsn"
    if not isinstance(dsn, str):
        return "its dsn is not a string"
    return _dsn_problem(dsn)


def _go_template_output(text: str) -> str | None:
    """What Go's text/template makes of the text, if its only actions are escaped `{{`."""
    parts = []
    position = 0
    while (found := text.find(GO_TEMPLATE_OPEN, position)) >= 0:
        if not text.startswith(GO_TEMPLATE_OPEN_ESCAPED, found):
            return None
        parts.append(text[position:found] + GO_TEMPLATE_OPEN)
        position = found + len(GO_TEMPLATE_OPEN_ESCAPED)
    parts.append(text[position:])
    return "".join(parts)


def _integer_out_of_range(value: object) -> int | None:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _integer_out_of_range(item)
            if found is not None:
                return found
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if not _INT64[0] <= value <= _INT64[1] else None
    return None


def parse_dsn(dsn: str) -> dict[str, str]:
    r"""lib/pq's `key=value` connection string: values bare or single-quoted, `\` escapes.

    Raises:
        ValueError: not such a string.
    """
    options: dict[str, str] = {}
    position = 0
    while position < len(dsn):
        if dsn[position:].strip() == "":
            break
        key = _DSN_KEY.match(dsn, position)
        if key is None:
            raise ValueError(f"no key=value at character {position}")
        value, position = _dsn_value(dsn, key.end())
        options[key.group(1)] = value
    return options


def _dsn_value(dsn: str, position: int) -> tuple[str, int]:
    quoted = position < len(dsn) and dsn[position] == "'"
    position += quoted
    value = []
    while position < len(dsn):
        char = dsn[position]
        if char == "\\":
            if position + 1 >= len(dsn):
                raise ValueError("a backslash ends the string")
            value.append(dsn[position + 1])
            position += 2
            continue
        if (quoted and char == "'") or (not quoted and char.isspace()):
            return "".join(value), position + 1
        value.append(char)
        position += 1
    if quoted:
        raise ValueError("a quoted value is not closed")
    return "".join(value), position


def _dsn_problem(dsn: str) -> str | None:
    try:
        options = parse_dsn(dsn)
    except ValueError as error:
        return f"its dsn is not a lib/pq connection string: {error}"
    if set(options) != DSN_KEYS:
        return f"its dsn has the keys {', '.join(sorted(options))}"
    port = options["port"]
    if not (len(port) <= 5 and port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        return "its dsn port is not a port number"
    if options["sslmode"] not in SSL_MODES:
        return "its dsn sslmode is not one lib/pq knows"
    if not all(options[key] for key in ("host", "user", "database")):
        return "its dsn has an empty host, user or database"
    return None
