"""The `postgresql_client` requirer, protocol v0 (the one `postgresql` 16 speaks).

The leader asks for the database in the application databag; the provider answers with
endpoints in its application databag and the credentials in Juju secrets (or, for providers
that ignore `requested-secrets`, in plain databag fields).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import ops

from parsing import is_valid_host, printable, shown
from parsing import port as parse_port
from relations.remote_data import RemoteDataError

ENDPOINT = "database"
DATABASE_NAME = "hockeypuck"
REQUESTED_SECRETS = ("username", "password", "tls", "tls-ca", "uris", "read-only-uris")
MAX_NAME_LENGTH = 255  # database and user names (PostgreSQL keeps 63 bytes of them)
MAX_PASSWORD_LENGTH = 4096


class DatabaseRelationMissingError(Exception):
    """There is no database relation."""


class DatabaseNotReadyError(Exception):
    """The relation exists but the provider has not handed over everything yet."""


@dataclass(frozen=True)
class DatabaseCredentials:
    """Where and how Hockeypuck connects to PostgreSQL."""

    host: str
    port: int
    database: str
    username: str
    password: str
    tls: bool


def request_database(relation: ops.Relation, app: ops.Application) -> None:
    """Ask the provider for our database (leader only); writes only what differs."""
    wanted = {
        "database": DATABASE_NAME,
        "requested-secrets": json.dumps(list(REQUESTED_SECRETS)),
    }
    databag = relation.data[app]
    for key, value in wanted.items():
        if databag.get(key) != value:
            databag[key] = value


def read_credentials(
    model: ops.Model, relation: ops.Relation, refresh: bool = True
) -> DatabaseCredentials:
    """Read the provider's answer.

    Args:
        model: the charm's model.
        relation: the database relation.
        refresh: move to the secrets' latest revisions (a rotated password); routine hooks
            read the revision already tracked, which costs one hook tool call less.

    Raises:
        DatabaseNotReadyError: endpoints or credentials are not there (yet).
        RemoteDataError: the provider wrote an endpoint or credentials nothing can use.
    """
    if relation.app is None:
        raise DatabaseNotReadyError("the database application is not known yet")
    provided = relation.data[relation.app]
    endpoints = provided.get("endpoints", "")
    if not endpoints:
        raise DatabaseNotReadyError("no database endpoints yet")
    host, port = _split_endpoint(endpoints.split(",")[0].strip())
    user = _secret_fields(model, relation, provided, "user", refresh)
    tls = _secret_fields(model, relation, provided, "tls", refresh)
    username = user.get("username") or provided.get("username")
    password = user.get("password") or provided.get("password")
    if not username or not password:
        raise DatabaseNotReadyError("no database credentials yet")
    tls_flag = tls.get("tls") or provided.get("tls") or "False"
    return DatabaseCredentials(
        host=host,
        port=port,
        database=_checked("database name", provided.get("database") or DATABASE_NAME),
        username=_checked("user name", username),
        password=_checked("password", password, MAX_PASSWORD_LENGTH, allow_control=True),
        tls=tls_flag.strip().lower() == "true",
    )


def _checked(
    what: str, value: str, limit: int = MAX_NAME_LENGTH, allow_control: bool = False
) -> str:
    """A name or password libpq can carry: bounded, no NUL (nor control characters in names)."""
    if len(value) > limit:
        raise RemoteDataError(f"the database {what} is longer than {limit} characters")
    if "\x00" in value or not (allow_control or printable(value, limit)):
        raise RemoteDataError(f"the database {what} contains a control character")
    return value


def secret_label(relation: ops.Relation, group: str) -> str:
    """The label the Charmhub library gives the provider's secrets, kept for compatibility."""
    return f"{relation.name}.{relation.id}.{group}.secret"


def _secret_fields(
    model: ops.Model,
    relation: ops.Relation,
    provided: ops.RelationDataContent,
    group: str,
    refresh: bool,
) -> dict[str, str]:
    uri = provided.get(f"secret-{group}")
    if not uri:
        return {}
    try:
        secret = model.get_secret(id=uri, label=secret_label(relation, group))
        return secret.get_content(refresh=refresh)
    except ops.ModelError as error:
        raise DatabaseNotReadyError(f"cannot read the database {group} secret: {error}") from None


def _split_endpoint(endpoint: str) -> tuple[str, int]:
    host, _, port_text = endpoint.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = parse_port(port_text)
    if port is None or not is_valid_host(host):
        raise RemoteDataError(f"database endpoint {shown(endpoint)} is not host:port")
    return host, port
