"""The peer relation: each unit publishes its address so every unit reconciles with the others."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import ops

from parsing import go_ip, printable

ENDPOINT = "hockeypuck-peers"
ADDRESS_KEY = "address"
VERSION_KEY = "hockeypuck-version"
BLOCKLIST_REVISION_KEY = "blocklist-revision"
MAX_VERSION_LENGTH = 64


@dataclass(frozen=True)
class PeerUnit:
    """Another unit of this application, seen through the peer relation."""

    nodename: str
    address: str
    version: str


def nodename(unit: ops.Unit) -> str:
    """The unit's name as Hockeypuck shows it (`hockeypuck/1` -> `hockeypuck-1`)."""
    return unit.name.replace("/", "-")


def publish(relation: ops.Relation, unit: ops.Unit, address: str, version: str) -> None:
    """Write this unit's address and Hockeypuck version, only where they differ."""
    databag = relation.data[unit]
    for key, value in ((ADDRESS_KEY, address), (VERSION_KEY, version)):
        if value and databag.get(key) != value:
            databag[key] = value


def published_address(relation: ops.Relation, unit: ops.Unit) -> str:
    """The address this unit published last ("" if none yet, or not an IP address)."""
    return go_ip(relation.data[unit].get(ADDRESS_KEY, "")) or ""


def other_units(relation: ops.Relation | None) -> tuple[PeerUnit, ...]:
    """The other units that have published a usable address, sorted by name.

    An address is used in its canonical form; a version that is not a short printable text
    counts as unknown.
    """
    if relation is None:
        return ()
    peers = []
    for unit in relation.units:
        databag = relation.data[unit]
        address = go_ip(databag.get(ADDRESS_KEY, ""))
        if address is None:
            continue
        version = databag.get(VERSION_KEY, "")
        if not printable(version, MAX_VERSION_LENGTH):
            version = ""
        peers.append(PeerUnit(nodename(unit), address, version))
    return tuple(sorted(peers, key=lambda peer: peer.nodename))


def announce_blocklist_change(relation: ops.Relation, unit: ops.Unit) -> None:
    """Make every other unit re-read the block list (they get a relation-changed event)."""
    relation.data[unit][BLOCKLIST_REVISION_KEY] = str(time.time_ns())


class VersionMismatchError(Exception):
    """Units of this application run different Hockeypuck minor versions."""


def minor_version(version: str) -> str:
    """`2.3.3+rev42` or `2.3.3-debian-go1.24.4` -> `2.3`; the part recon peers must share."""
    release = re.split(r"[+-]", version, maxsplit=1)[0]
    return ".".join(release.split(".")[:2])


def check_same_minor_version(own_version: str, units: tuple[PeerUnit, ...]) -> None:
    """Raise when another unit runs a different Hockeypuck minor version than this one.

    Peers with different recon filters refuse each other, so a half-finished upgrade must be
    visible, not silent.
    """
    if not own_version:
        return
    own = minor_version(own_version)
    others = [unit for unit in units if unit.version and minor_version(unit.version) != own]
    if others:
        listed = ", ".join(f"{unit.nodename} runs {unit.version}" for unit in others)
        raise VersionMismatchError(
            f"{listed}, this unit {own_version}: recon peers must run the same minor version"
        )
