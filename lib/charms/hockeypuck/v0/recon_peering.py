"""Recon peering between Hockeypuck deployments: the `hockeypuck-recon` interface.

Two Hockeypuck applications integrated over this interface reconcile keys with each other
(SKS "recon"): every unit of one side becomes a recon partner of every unit of the other, in
either direction, in one model or across models (`juju offer` / `juju consume`).

The protocol is symmetric. Every unit writes, in its own unit databag, where it can be reached
and what it calls itself (all values plain strings, ports in ASCII decimal):

    nodename    Hockeypuck's node name of the unit, e.g. "hockeypuck-eu-0"
    address     IP address or DNS name at which the unit serves HKP and recon: the unit's
                ingress address on the relation by default (Juju gives the public address to
                a cross-model relation), an operator-set public address behind NAT or a TCP
                load balancer
    http-port   HKP port at that address, the one the daemon announces in recon ("11371")
    recon-port  recon port at that address ("11370")

and reads the same keys of every remote unit, plus `egress-subnets`, which Juju writes for each
unit: the networks its connections come from, which may differ from `address` (NAT).
Nothing is written in the application databags. A remote unit that has written none of the
keys is not ready yet and is skipped; one whose data is invalid is refused, with the reason,
and never reaches the configuration file.

Hockeypuck 2.3 matches an incoming recon connection against `allowCIDRs` *before* its named
partners (conflux/recon/settings.go, `ipMatcher.Match`): a partner whose address is inside an
allowed network is served as an anonymous peer and its partner entry never records the recon.
So a remote unit's `address` makes it a partner, and only the parts of its `egress-subnets`
that its partner addresses do not cover belong in `allowCIDRs`; `networks_to_allow` computes
them.

A charm declares one endpoint of each role with the interface, so that two deployments of the
same charm can be integrated (`juju integrate a:recon-partners b:recon-peers`, or the other way
round), and observes one event:

```yaml
provides:
  recon-peers:
    interface: hockeypuck-recon
requires:
  recon-partners:
    interface: hockeypuck-recon
```

```python
from charms.hockeypuck.v0.recon_peering import ReconPeering, networks_to_allow

class HockeypuckCharm(ops.CharmBase):
    def __init__(self, framework):
        super().__init__(framework)
        self.recon = ReconPeering(self, endpoints=("recon-peers", "recon-partners"))
        framework.observe(self.recon.on.partners_changed, self._reconcile)

    def _reconcile(self, _):
        # A Kubernetes charm passes public_address: its Service's external address.
        self.recon.publish(nodename="hockeypuck-eu-0", http_port=11371, recon_port=11370)
        remote = self.recon.partners()
        partners = {  # one [hockeypuck.conflux.recon.partner."<name>"] table each
            unit.partner_name: (unit.published.http_addr, unit.published.recon_addr)
            for unit in remote.units
        }
        # Pass the addresses of all the charm's partners, its own ones too.
        allow = networks_to_allow(remote.units, [u.published.address for u in remote.units])
        write_config(partners, allow_cidrs=[str(network) for network in allow])
        if remote.refused:  # the other units are in use meanwhile
            self.unit.status = ops.BlockedStatus(f"refused recon data of {remote.refused[0]}")
```

Fetch it with `charmcraft fetch-lib charms.hockeypuck.v0.recon_peering`.
The library needs only `ops` (no PYDEPS).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import ops

# The unique identifier of this library on Charmhub.
LIBID = "d3a50a0d761f49dbbe5695e0fbb68489"
# Incremented on changes that break the interface for its users.
LIBAPI = 0
# Incremented on every other published change.
LIBPATCH = 1

logger = logging.getLogger(__name__)

INTERFACE = "hockeypuck-recon"
NODENAME_KEY = "nodename"
ADDRESS_KEY = "address"
HTTP_PORT_KEY = "http-port"
RECON_PORT_KEY = "recon-port"
PUBLISHED_KEYS = (NODENAME_KEY, ADDRESS_KEY, HTTP_PORT_KEY, RECON_PORT_KEY)
EGRESS_SUBNETS_KEY = "egress-subnets"  # written by Juju, read only
# Networks wider than these are refused from remote data: an allow-list entry for a whole
# address space is not "where a peer connects from".
MIN_PREFIX_LENGTH = {4: 16, 6: 48}
MAX_NODENAME_LENGTH = 64
_QUOTED_LENGTH = 40
_PORT = re.compile(r"[0-9]{1,5}")
_NODENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class InvalidReconDataError(ValueError):
    """A value of the protocol is not valid; the message says which and why."""


def _quoted(value: str) -> str:
    """The value for a message: repr'd and bounded, since it may come from anywhere."""
    text = repr(value)
    return text if len(text) <= _QUOTED_LENGTH else text[: _QUOTED_LENGTH - 4] + "...'"


def parse_port(key: str, text: str) -> int:
    """A TCP port written in ASCII decimal digits (1-65535).

    Raises:
        InvalidReconDataError: the text is not such a port.
    """
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise InvalidReconDataError(f"{key} {_quoted(text)} is not a port number (1-65535)")
    return int(text)


def parse_host(key: str, text: str) -> str:
    """An IP address or a DNS host name a peer can connect to, normalised.

    IPv6 zone indexes, loopback, unspecified, link-local and multicast addresses are refused:
    Hockeypuck cannot use them to reach another keyserver.

    Raises:
        InvalidReconDataError: the text is not such an address or name.
    """
    why = f"{key} {_quoted(text)} is not an IP address or DNS host name"
    if not text.isascii() or "%" in text:
        raise InvalidReconDataError(why)
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return _host_name(text, why)
    if address.is_loopback or address.is_unspecified or address.is_link_local:
        raise InvalidReconDataError(f"{key} {_quoted(text)} cannot be reached from elsewhere")
    if address.is_multicast:
        raise InvalidReconDataError(f"{key} {_quoted(text)} is a multicast address")
    return str(address)


def _host_name(text: str, why: str) -> str:
    name = text.removesuffix(".").lower()
    labels = name.split(".")
    if (
        not name
        or len(name) > 253
        or all(label.isdigit() for label in labels)
        or not all(_DNS_LABEL.fullmatch(label) for label in labels)
    ):
        raise InvalidReconDataError(why)
    return name


def parse_nodename(text: str) -> str:
    """A Hockeypuck node name: ASCII letters, digits, `.`, `_`, `-`, at most 64 characters.

    Raises:
        InvalidReconDataError: the text is not such a name.
    """
    if not text.isascii() or len(text) > MAX_NODENAME_LENGTH or not _NODENAME.fullmatch(text):
        raise InvalidReconDataError(f"{NODENAME_KEY} {_quoted(text)} is not a node name")
    return text


def parse_networks(text: str) -> tuple[Network, ...]:
    """Juju's `egress-subnets`: networks separated by commas (a bare address is one host).

    Raises:
        InvalidReconDataError: an item is not a network Hockeypuck's allowCIDRs can hold.
    """
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        why = f"{EGRESS_SUBNETS_KEY} {_quoted(item)} is not an IP network"
        if not item.isascii() or "%" in item:
            raise InvalidReconDataError(why)
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise InvalidReconDataError(why) from None
        if network.prefixlen < MIN_PREFIX_LENGTH[network.version]:
            raise InvalidReconDataError(
                f"{EGRESS_SUBNETS_KEY} {_quoted(item)} is wider than "
                f"/{MIN_PREFIX_LENGTH[network.version]}"
            )
        if network.is_loopback or network.is_unspecified or network.is_multicast:
            raise InvalidReconDataError(f"{EGRESS_SUBNETS_KEY} {_quoted(item)} is not routable")
        networks.append(network)
    return tuple(dict.fromkeys(networks))


def host_port(host: str, port: int) -> str:
    """`host:port` as Hockeypuck reads it, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class ReconAddress:
    """What one unit publishes: its node name, and where it serves HKP and recon."""

    nodename: str
    address: str
    http_port: int
    recon_port: int

    def __post_init__(self) -> None:
        """Refuse values the wire format cannot carry.

        Raises:
            InvalidReconDataError: naming the first invalid field.
        """
        parse_nodename(self.nodename)
        if parse_host(ADDRESS_KEY, self.address) != self.address:
            raise InvalidReconDataError(f"{ADDRESS_KEY} {_quoted(self.address)} is not normalised")
        for key, port in ((HTTP_PORT_KEY, self.http_port), (RECON_PORT_KEY, self.recon_port)):
            parse_port(key, str(port))

    @classmethod
    def from_databag(cls, data: Mapping[str, str]) -> ReconAddress:
        """Read a unit databag.

        Raises:
            InvalidReconDataError: a key is missing or its value is invalid.
        """
        missing = [key for key in PUBLISHED_KEYS if key not in data]
        if missing:
            raise InvalidReconDataError(f"{', '.join(missing)} missing")
        return cls(
            nodename=parse_nodename(data[NODENAME_KEY]),
            address=parse_host(ADDRESS_KEY, data[ADDRESS_KEY]),
            http_port=parse_port(HTTP_PORT_KEY, data[HTTP_PORT_KEY]),
            recon_port=parse_port(RECON_PORT_KEY, data[RECON_PORT_KEY]),
        )

    def to_databag(self) -> dict[str, str]:
        """The unit databag content, every value a plain string."""
        return {
            NODENAME_KEY: self.nodename,
            ADDRESS_KEY: self.address,
            HTTP_PORT_KEY: str(self.http_port),
            RECON_PORT_KEY: str(self.recon_port),
        }

    @property
    def http_addr(self) -> str:
        """HKP `host:port`."""
        return host_port(self.address, self.http_port)

    @property
    def recon_addr(self) -> str:
        """Recon `host:port`."""
        return host_port(self.address, self.recon_port)


@dataclass(frozen=True)
class RemoteReconUnit:
    """A unit of the other side, with the data it published."""

    relation_name: str
    relation_id: int
    unit_name: str
    published: ReconAddress
    egress_subnets: tuple[Network, ...]

    @property
    def partner_name(self) -> str:
        """A partner name unique among all relations: `<unit>@<endpoint>:<relation id>`.

        Juju's unit names are unique within a relation and relation ids within a model, and
        `/` and `@` never occur in node names or host names, so these names cannot collide
        with the partner names a charm builds from those.
        """
        return f"{self.unit_name}@{self.relation_name}:{self.relation_id}"


@dataclass(frozen=True)
class RefusedReconData:
    """A remote unit whose data was refused, and why."""

    relation_name: str
    relation_id: int
    unit_name: str
    reason: str

    def __str__(self) -> str:
        """One line for a status or a log."""
        return f"{self.unit_name} ({self.relation_name}:{self.relation_id}): {self.reason}"


@dataclass(frozen=True)
class ReconPartners:
    """The remote units of every relation of the interface: usable, and refused."""

    units: tuple[RemoteReconUnit, ...] = ()
    refused: tuple[RefusedReconData, ...] = ()


def parse_remote_unit(
    relation_name: str, relation_id: int, unit_name: str, data: Mapping[str, str]
) -> RemoteReconUnit | None:
    """Read one remote unit's databag; None when it has not published anything yet.

    Raises:
        InvalidReconDataError: a key is missing or a value is invalid.
    """
    if not any(key in data for key in PUBLISHED_KEYS):
        return None
    published = ReconAddress.from_databag(data)
    subnets = parse_networks(data.get(EGRESS_SUBNETS_KEY, ""))
    return RemoteReconUnit(relation_name, relation_id, unit_name, published, subnets)


def read_partners(relations: Iterable[ops.Relation]) -> ReconPartners:
    """Read the remote units of these relations, in relation id and unit name order."""
    units: list[RemoteReconUnit] = []
    refused: list[RefusedReconData] = []
    for relation in sorted(relations, key=lambda relation: relation.id):
        for unit in sorted(relation.units, key=lambda unit: unit.name):
            try:
                remote = parse_remote_unit(
                    relation.name, relation.id, unit.name, relation.data[unit]
                )
            except InvalidReconDataError as error:
                refused.append(RefusedReconData(relation.name, relation.id, unit.name, str(error)))
                continue
            if remote is not None:
                units.append(remote)
    return ReconPartners(tuple(units), tuple(refused))


def networks_to_allow(
    units: Iterable[RemoteReconUnit], partner_addresses: Iterable[str]
) -> tuple[Network, ...]:
    """The remote units' egress networks, less the addresses that are named partners.

    Hockeypuck matches `allowCIDRs` before its partners, so an allowed network must not hold
    a partner's address: each such address is cut out of the networks (a `/32` egress subnet
    of a unit that publishes that same address disappears; a NAT pool stays whole). Partner
    addresses that are DNS names cannot be cut out: Hockeypuck resolves them when it starts.
    """
    hosts = set()
    for text in partner_addresses:
        try:
            hosts.add(ipaddress.ip_address(text))
        except ValueError:
            continue  # a DNS name
    remaining: list[Network] = []
    for network in dict.fromkeys(net for unit in units for net in unit.egress_subnets):
        pieces: list[Network] = [network]
        for host in hosts:
            pieces = [piece for part in pieces for piece in _without(part, host)]
        remaining += pieces
    v4 = ipaddress.collapse_addresses(n for n in remaining if isinstance(n, ipaddress.IPv4Network))
    v6 = ipaddress.collapse_addresses(n for n in remaining if isinstance(n, ipaddress.IPv6Network))
    return (*v4, *v6)


def _without(
    network: Network, host: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> list[Network]:
    """The network less one address: itself if the address is not in it."""
    if host not in network:  # also when their IP versions differ
        return [network]
    if isinstance(network, ipaddress.IPv4Network):
        return list(network.address_exclude(ipaddress.IPv4Network(host)))
    return list(network.address_exclude(ipaddress.IPv6Network(host)))


class ReconPartnersChangedEvent(ops.EventBase):
    """A relation of the interface was created, joined, changed, departed or broken."""


class ReconPeeringEvents(ops.ObjectEvents):
    """Events of `ReconPeering`."""

    partners_changed = ops.EventSource(ReconPartnersChangedEvent)


class ReconPeering(ops.Object):
    """Both ends of the `hockeypuck-recon` interface for one charm."""

    on = ReconPeeringEvents()

    def __init__(self, charm: ops.CharmBase, endpoints: Sequence[str]):
        super().__init__(charm, "recon-peering")
        self.endpoints = tuple(endpoints)
        for endpoint in self.endpoints:
            events = charm.on[endpoint]
            for event in (
                events.relation_created,
                events.relation_joined,
                events.relation_changed,
                events.relation_departed,
                events.relation_broken,
            ):
                self.framework.observe(event, self._on_relation_event)

    def _on_relation_event(self, _: ops.RelationEvent) -> None:
        self.on.partners_changed.emit()

    @property
    def relations(self) -> list[ops.Relation]:
        """Every relation of the endpoints (a broken one is already gone)."""
        return [relation for name in self.endpoints for relation in self.model.relations[name]]

    def publish(
        self,
        nodename: str,
        http_port: int,
        recon_port: int,
        public_address: str | None = None,
    ) -> None:
        """Write this unit's data in every relation, only the keys that differ.

        Args:
            nodename: the unit's Hockeypuck node name.
            http_port: the HKP port at the published address; Hockeypuck fetches keys from the
                recon host at the HTTP port its daemon announces, so keep the two equal.
            recon_port: the recon port at the published address.
            public_address: where peers reach this unit; None: the ingress address of each
                relation's binding (relations whose binding has none yet are left for later).

        Raises:
            InvalidReconDataError: a value the wire format cannot carry.
        """
        for relation in self.relations:
            address = public_address or self._ingress_address(relation)
            if address is None:
                logger.debug("no ingress address on %s:%d yet", relation.name, relation.id)
                continue
            published = ReconAddress(nodename, address, http_port, recon_port)
            databag = relation.data[self.model.unit]
            for key, value in published.to_databag().items():
                if databag.get(key) != value:
                    databag[key] = value

    def _ingress_address(self, relation: ops.Relation) -> str | None:
        """The relation's ingress address, or None while Juju cannot tell it (retried later)."""
        binding = self.model.get_binding(relation)
        if binding is None:
            return None
        try:
            address = binding.network.ingress_address
        except ops.ModelError as error:
            logger.debug("no network for %s:%d yet: %s", relation.name, relation.id, error)
            return None
        return str(address) if address is not None else None

    def partners(self) -> ReconPartners:
        """The remote units of every relation of the endpoints."""
        return read_partners(self.relations)
