"""The third layer Hockeypuck reads its DSN through: lib/pq's key=value parser, emulated.

Hockeypuck's `postgres-jsonb` driver is Go's lib/pq. Its `parseOpts` (conn.go, "based on
conninfo_parse from libpq's fe-connect.c") splits `key=value` pairs on Unicode white space;
a value is either bare (a backslash escapes the next character) or single-quoted (a backslash
escapes the next character, `'` ends it). lib/pq then applies its defaults: an absent or empty
`sslmode` means `require` (libpq's would be `prefer`), `host` localhost, `port` 5432.

`connect_kwargs` turns the parsed options into psycopg/libpq keyword arguments with lib/pq's
meaning, so that the real PostgreSQL server judges the credentials exactly as it would judge
Hockeypuck's.
"""

from __future__ import annotations

import psycopg.conninfo

# Go's unicode.IsSpace: the Latin-1 spaces plus the Unicode White_Space property.
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Keys this emulator maps to libpq; lib/pq would send any other key to the server as a
# run-time parameter, which the charm never writes.
_KNOWN_KEYS = frozenset(
    {
        "dbname",
        "database",
        "host",
        "port",
        "user",
        "password",
        "sslmode",
        "connect_timeout",
    }
)
_SSL_MODES = frozenset({"disable", "require", "verify-ca", "verify-full"})


class DsnError(ValueError):
    """lib/pq refuses the connection string (Hockeypuck exits 1 on it)."""


def _go_quote(text: str) -> str:
    """Go's %q for the plain text that appears in keys (enough for error messages)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'


def parse(dsn: str) -> dict[str, str]:
    """Parse a key=value connection string as lib/pq's parseOpts does.

    Raises:
        DsnError: with lib/pq's message.
    """
    options: dict[str, str] = {}
    position = 0
    length = len(dsn)

    def skip_spaces(index: int) -> int:
        while index < length and dsn[index] in _GO_SPACE:
            index += 1
        return index

    while True:
        position = skip_spaces(position)
        if position >= length:
            return options
        key_start = position
        while position < length and dsn[position] not in _GO_SPACE and dsn[position] != "=":
            position += 1
        key = dsn[key_start:position]
        position = skip_spaces(position)
        if position >= length or dsn[position] != "=":
            # lib/pq's message really has that stray closing quote.
            raise DsnError(f'missing "=" after {_go_quote(key)} in connection info string"')
        position = skip_spaces(position + 1)
        if position >= length:
            options[key] = ""
            return options
        value, position = _value(dsn, position)
        options[key] = value


def _value(dsn: str, position: int) -> tuple[str, int]:
    runes: list[str] = []
    length = len(dsn)
    if dsn[position] != "'":
        while position < length and dsn[position] not in _GO_SPACE:
            if dsn[position] == "\\":
                position += 1
                if position >= length:
                    raise DsnError("missing character after backslash")
            runes.append(dsn[position])
            position += 1
        return "".join(runes), position
    position += 1
    while True:
        if position >= length:
            raise DsnError("unterminated quoted string literal in connection string")
        char = dsn[position]
        position += 1
        if char == "'":
            return "".join(runes), position
        if char == "\\":
            if position >= length:
                raise DsnError("unterminated quoted string literal in connection string")
            char = dsn[position]
            position += 1
        runes.append(char)


def connect_kwargs(options: dict[str, str]) -> dict[str, str]:
    """Keyword arguments for psycopg.connect that mean what lib/pq makes of `options`.

    Raises:
        DsnError: an sslmode lib/pq rejects, or a key beyond this emulator.
    """
    unknown = sorted(set(options) - _KNOWN_KEYS)
    if unknown:
        raise DsnError(f"keys beyond this emulator: {unknown}")
    sslmode = options.get("sslmode") or "require"
    if sslmode not in _SSL_MODES:
        raise DsnError(
            f'unsupported sslmode "{sslmode}"; only "require" (default), "verify-full", '
            '"verify-ca", and "disable" supported'
        )
    kwargs = {
        "host": options.get("host") or "localhost",
        "port": options.get("port") or "5432",
        "sslmode": sslmode,
    }
    # lib/pq sends "dbname" to the server as the startup parameter "database", and passes a
    # "database" key through as that same parameter.
    dbname = options.get("dbname") or options.get("database")
    if dbname:
        kwargs["dbname"] = dbname
    for key in ("user", "password", "connect_timeout"):
        if key in options:
            kwargs[key] = options[key]
    return kwargs


def libpq_conninfo(options: dict[str, str]) -> str:
    """A libpq connection string meaning what lib/pq makes of `options` (quoted by psycopg)."""
    return psycopg.conninfo.make_conninfo("", **connect_kwargs(options))
