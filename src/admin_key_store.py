"""The charm's admin key in Juju: generated once by the leader, kept in an application secret.

The peer relation's application databag carries the fingerprint (rendered into `adminKeys` on
every unit without reading the secret) and the secret's ID (for the units that sign deletes).
"""

from __future__ import annotations

import logging

import ops

import admin_key
from admin_key import AdminKey, AdminKeySigner, GpgError
from state import normalise_fingerprint

logger = logging.getLogger(__name__)

SECRET_LABEL = "hockeypuck-admin-key"  # noqa: S105 - a label, not a secret
FINGERPRINT_KEY = "admin-key-fingerprint"
SECRET_ID_KEY = "admin-key-secret-id"  # noqa: S105 - a databag key


def fingerprint(peer_relation: ops.Relation | None, app: ops.Application) -> str:
    """The admin key's fingerprint, or "" before the leader has made it (or if unusable)."""
    if peer_relation is None:
        return ""
    value = peer_relation.data[app].get(FINGERPRINT_KEY, "")
    if not value:
        return ""
    try:
        return normalise_fingerprint(value)
    except ValueError as error:
        logger.warning("ignoring the published admin key fingerprint: %s", error)
        return ""


def ensure(model: ops.Model, peer_relation: ops.Relation | None) -> None:
    """Leader only: generate the admin key once and publish it. GnuPG failures are logged."""
    if peer_relation is None or fingerprint(peer_relation, model.app):
        return
    try:
        # Made by an earlier hook that failed before publishing it: publish that one.
        secret = model.get_secret(label=SECRET_LABEL)
        key_fingerprint = secret.get_content(refresh=True)["fingerprint"]
    except ops.SecretNotFoundError:
        try:
            key = admin_key.generate_admin_key(model.app.name, model.name)
        except (GpgError, ValueError) as error:
            logger.warning("cannot generate the admin key yet: %s", error)
            return
        secret = model.app.add_secret(
            {
                "fingerprint": key.fingerprint,
                "public-key": key.public_key,
                "secret-key": key.secret_key,
            },
            label=SECRET_LABEL,
            description="Hockeypuck admin key of this application (signs /pks/delete)",
        )
        key_fingerprint = key.fingerprint
    databag = peer_relation.data[model.app]
    databag[SECRET_ID_KEY] = secret.id or secret.get_info().id
    databag[FINGERPRINT_KEY] = key_fingerprint


def load(model: ops.Model, peer_relation: ops.Relation | None) -> AdminKeySigner | None:
    """The admin key's signer, or None before the leader has made it."""
    if peer_relation is None:
        return None
    secret_id = peer_relation.data[model.app].get(SECRET_ID_KEY)
    if not secret_id:
        return None
    try:
        content = model.get_secret(id=secret_id).get_content(refresh=True)
        return AdminKeySigner(
            AdminKey(
                fingerprint=content["fingerprint"],
                public_key=content["public-key"],
                secret_key=content["secret-key"],
            )
        )
    except (ops.ModelError, KeyError) as error:
        logger.warning("cannot read the admin key secret %s: %s", secret_id, error)
        return None
