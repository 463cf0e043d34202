"""This unit's address on the network of one endpoint."""

from __future__ import annotations

import ops

from parsing import go_ip


def ingress_address(model: ops.Model, endpoint: str) -> str | None:
    """The address other units reach this unit by on the endpoint, or None if unknown yet."""
    binding = model.get_binding(endpoint)
    if binding is None:
        return None
    try:
        address = binding.network.ingress_address
    except ops.ModelError:
        return None
    return go_ip(str(address)) if address is not None else None


def is_ip_address(text: str) -> bool:
    """Whether the text is an IPv4 or IPv6 address as Go reads them (no zone)."""
    return go_ip(text) is not None
