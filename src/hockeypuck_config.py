r"""Render hockeypuck.conf from the charm state.

Hockeypuck reads its config in three layers, and every value the charm writes survives all of
them: the whole file is first a Go `text/template` (a literal `{{` must be written as
`{{"{{"}}`), then TOML (basic strings escape `"` and `\\`), and the database DSN is then parsed
as libpq `key=value` pairs (values single-quoted, `'` and `\\` backslash-escaped).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import snap_layout
from config_check import GO_TEMPLATE_OPEN, GO_TEMPLATE_OPEN_ESCAPED
from relations.database import DatabaseCredentials
from state import CharmState

if TYPE_CHECKING:
    import jinja2

logger = logging.getLogger(__name__)

TEMPLATES_DIR = PurePosixPath("templates")  # relative to the charm directory
TEMPLATE_NAME = "hockeypuck.conf.j2"
_TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def toml_value(value: object) -> str:
    """A TOML value, safe through the Go template layer."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Iterable):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_string(text: str) -> str:
    escaped = "".join(_toml_char(char) for char in text)
    return '"' + escaped.replace(GO_TEMPLATE_OPEN, GO_TEMPLATE_OPEN_ESCAPED) + '"'


def _toml_char(char: str) -> str:
    if char in _TOML_ESCAPES:
        return _TOML_ESCAPES[char]
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"\\u{ord(char):04X}"
    return char


def libpq_value(value: str) -> str:
    r"""A libpq connection-string value: single-quoted, `\\` and `'` escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def dsn(database: DatabaseCredentials) -> str:
    """The lib/pq key=value DSN for the database (TCP: the confined snap has no local socket)."""
    fields = {
        "database": database.database,
        "host": database.host,
        "port": str(database.port),
        "user": database.username,
        "password": database.password,
        "sslmode": "require" if database.tls else "disable",
    }
    return " ".join(f"{key}={libpq_value(value)}" for key, value in fields.items())


def render_key(state: CharmState, template_dir: Path) -> str:
    """A digest of everything the rendered file depends on: the state, template and renderer.

    Equal keys render equal files, so a hook can skip rendering (and importing Jinja2).
    """
    inputs = [
        repr(state).encode(),
        (template_dir / TEMPLATE_NAME).read_bytes(),
        Path(__file__).read_bytes(),
        Path(snap_layout.__file__).read_bytes(),
    ]
    return hashlib.sha256(b"\0".join(inputs)).hexdigest()


def _web_paths(layout: tuple[PurePosixPath, PurePosixPath] | None) -> dict[str, str] | None:
    if layout is None:
        return None
    templates, webroot = layout
    return {
        "index_template": str(templates / "index.html.tmpl"),
        "stats_template": str(templates / "stats.html.tmpl"),
        "webroot": str(webroot),
    }


def _template(template_dir: Path, cache_dir: Path | None) -> jinja2.Template:
    import jinja2  # noqa: PLC0415 - only when the config really has to be rendered

    cache = None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache = jinja2.FileSystemBytecodeCache(str(cache_dir))
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        bytecode_cache=cache,
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - TOML, not HTML; values escaped by the toml filter
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["toml"] = toml_value
    return environment.get_template(TEMPLATE_NAME)


def render(state: CharmState, template_dir: Path, cache_dir: Path | None = None) -> str:
    """Render the whole config file for this state.

    Args:
        state: the charm state.
        template_dir: where hockeypuck.conf.j2 is.
        cache_dir: where compiled templates may be kept between hooks (compiling costs more
            than everything else a no-op hook does).
    """
    try:
        template = _template(template_dir, cache_dir)
    except OSError as error:  # the cache cannot be written (a full disk): compile each time
        logger.warning("not caching the compiled template: %s", error)
        template = _template(template_dir, None)
    config = state.config
    return template.render(
        config=config,
        nodename=state.nodename,
        dsn=dsn(state.database),
        hostname=state.public_hostname,
        log_file=state.log_file,
        admin_keys=list(state.admin_keys),
        blacklist=[fingerprint.lower() for fingerprint in state.blocked_fingerprints],
        allowed_cidrs=list(state.allowed_cidrs),
        partners=state.recon_partners,
        web=_web_paths(state.web_layout),
        paths={
            "prefix_tree": str(snap_layout.PREFIX_TREE),
            "metrics_path": snap_layout.METRICS_PATH,
        },
        hkp_bind=f":{snap_layout.HKP_PORT}",
        recon_bind=f":{snap_layout.RECON_PORT}",
        metrics_bind=f":{snap_layout.METRICS_PORT}",
    )
