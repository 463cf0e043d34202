"""Recon peering with other Hockeypuck deployments, through the charm library.

The wire format and its checks live in `charms.hockeypuck.v0.recon_peering` (top-level `lib/`),
which other Hockeypuck charms fetch to peer with this one; this module is the charm's side of it.
"""

from __future__ import annotations

from charms.hockeypuck.v0.recon_peering import ReconPartners, ReconPeering
from snap_layout import HKP_PORT, RECON_PORT

# One endpoint of each role with the same interface: `juju integrate a:recon-partners
# b:recon-peers` works whichever application is `a`.
PROVIDES = "recon-peers"
REQUIRES = "recon-partners"
ENDPOINTS = (PROVIDES, REQUIRES)


class RefusedReconDataError(Exception):
    """A remote unit of a recon relation published data this charm refuses."""


def publish(peering: ReconPeering, nodename: str, public_address: str, public_port: int) -> None:
    """Tell the other side where this unit serves HKP and recon, and its node name.

    Args:
        peering: the library object of the charm.
        nodename: the unit's Hockeypuck node name.
        public_address: the operator's `recon-public-address` ("" for the ingress address).
        public_port: the operator's `recon-public-port` (0 for the port the unit listens on).
    """
    peering.publish(
        nodename,
        http_port=HKP_PORT,  # what the daemon announces: peers fetch keys there
        recon_port=public_port or RECON_PORT,
        public_address=public_address or None,
    )


def check_refused(partners: ReconPartners) -> None:
    """Raise when a remote unit's data was refused (the others are in use meanwhile).

    Raises:
        RefusedReconDataError: naming the first refused unit, and how many more there are.
    """
    if not partners.refused:
        return
    first, *others = partners.refused
    more = f" (and {len(others)} more)" if others else ""
    raise RefusedReconDataError(f"refused recon data of {first}{more}")
