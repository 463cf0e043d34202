"""The charm's state: validated config and relation data, built once per hook."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from charms.hockeypuck.v0.recon_peering import (
    InvalidReconDataError,
    RemoteReconUnit,
    networks_to_allow,
    parse_host,
)
from parsing import go_cidr, is_valid_host, shown
from parsing import port as parse_port
from relations.binding import is_ip_address
from relations.database import DatabaseCredentials
from relations.peers import PeerUnit
from snap_layout import HKP_PORT, RECON_PORT, WEB_LAYOUTS

LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "FATAL", "PANIC")
RATE_LIMIT_POLICIES = ("deny", "reject", "silent-drop")
MAX_CONNECTIONS_PER_MINUTE = 1_000_000
MAX_BYTES = 2**31 - 1  # max-key-length, max-packet-length: Go ints, kept sane
MAX_CHANNEL_LENGTH = 128
_HEX = re.compile(r"[0-9A-Fa-f]+")
_LIST_SEPARATORS = re.compile(r"[\s,]+")

ConfigData = Mapping[str, bool | int | float | str]


class InvalidConfigError(Exception):
    """A config option has a value the charm cannot use."""

    def __init__(self, option: str, why: str):
        super().__init__(f"{option}: {why}")
        self.option = option
        self.why = why


def normalise_fingerprint(value: str) -> str:
    """Return an OpenPGP v4/v6 fingerprint as bare upper-case hex.

    Raises:
        ValueError: the value is not 40 or 64 hex digits (after an optional 0x prefix).
    """
    text = value.strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    if not _HEX.fullmatch(text):
        raise ValueError(f"{shown(value, 90)} is not a hexadecimal fingerprint")
    if len(text) not in (40, 64):
        raise ValueError(
            f"{shown(value, 90)} has {len(text)} hex digits, a fingerprint has 40 or 64"
        )
    return text.upper()


@dataclass(frozen=True)
class ExternalPeer:
    """A keyserver outside this application to reconcile with."""

    host: str
    http_port: int
    recon_port: int

    @classmethod
    def parse(cls, line: str) -> ExternalPeer:
        """Parse one `address,http_port,recon_port` line (the Kubernetes charm's format)."""
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 3:
            raise ValueError(f"{shown(line)} needs 3 fields address,http_port,recon_port")
        host, http_port, recon_port = fields
        if not is_valid_host(host):
            raise ValueError(f"{shown(line)}: {shown(host)} is not a host name or IP address")
        return cls(host, _port(http_port, line), _port(recon_port, line))

    @property
    def canonical_host(self) -> str:
        """The host in one spelling: lower case, no final dot, IPv6 compressed."""
        if is_ip_address(self.host):
            return str(ipaddress.ip_address(self.host))
        return self.host.lower().removesuffix(".")

    @property
    def name(self) -> str:
        """The recon partner name, `host:recon_port`: one per keyserver.

        No unit node name holds a `:`, and no relation partner name is a host and port, so it
        cannot collide with theirs.
        """
        return _host_port(self.canonical_host, self.recon_port)


def _port(text: str, line: str) -> int:
    number = parse_port(text)
    if number is None:
        raise ValueError(f"{shown(line)}: {shown(text)} is not a port number (1-65535)")
    return number


# Hockeypuck's gossipIntervalSecs: its default, and the range the charm accepts.
DEFAULT_GOSSIP_INTERVAL = 60
MIN_GOSSIP_INTERVAL = 5
MAX_GOSSIP_INTERVAL = 86400


@dataclass(frozen=True)
class CharmConfig:
    """The operator's config, validated and normalised."""

    snap_channel: str
    hostname: str
    contact_fingerprint: str
    admin_keys: tuple[str, ...]
    external_peers: tuple[ExternalPeer, ...]
    log_level: str
    log_request_details: bool
    max_key_length: int
    max_packet_length: int
    allowed_recon_cidrs: tuple[str, ...] = ()
    rate_limit_per_minute: int = 0
    rate_limit_policy: str = "reject"
    gossip_interval: int = DEFAULT_GOSSIP_INTERVAL
    recon_public_address: str = ""
    recon_public_port: int = 0

    @classmethod
    def from_config(cls, config: ConfigData) -> CharmConfig:
        """Validate the charm config.

        Raises:
            InvalidConfigError: naming the first option that is wrong, and why.
        """
        return cls(
            snap_channel=_snap_channel(str(config.get("snap-channel", ""))),
            hostname=_hostname(str(config.get("hostname", ""))),
            contact_fingerprint=_optional_fingerprint(
                "contact-fingerprint", str(config.get("contact-fingerprint", ""))
            ),
            admin_keys=_fingerprint_list("admin-keys", str(config.get("admin-keys", ""))),
            external_peers=_external_peers(str(config.get("external-peers", ""))),
            log_level=_log_level(str(config.get("log-level", "INFO"))),
            log_request_details=bool(config.get("log-request-details", False)),
            max_key_length=_positive_int("max-key-length", config.get("max-key-length", 1048576)),
            max_packet_length=_positive_int(
                "max-packet-length", config.get("max-packet-length", 8192)
            ),
            allowed_recon_cidrs=_cidrs(str(config.get("allowed-recon-cidrs", ""))),
            rate_limit_per_minute=_rate_limit(config.get("rate-limit-connections-per-minute", 0)),
            rate_limit_policy=_choice(
                "rate-limit-policy",
                str(config.get("rate-limit-policy", "reject")),
                RATE_LIMIT_POLICIES,
            ),
            gossip_interval=_gossip_interval(
                config.get("recon-gossip-interval", DEFAULT_GOSSIP_INTERVAL)
            ),
            recon_public_address=_public_address(str(config.get("recon-public-address", ""))),
            recon_public_port=_public_port(config.get("recon-public-port", 0)),
        )


def _snap_channel(value: str) -> str:
    channel = value.strip()
    if (
        not channel
        or len(channel) > MAX_CHANNEL_LENGTH
        or not re.fullmatch(r"[A-Za-z0-9._/-]+", channel)
    ):
        raise InvalidConfigError("snap-channel", f"{shown(value)} is not a snap channel")
    return channel


def _hostname(value: str) -> str:
    """A public DNS name, valid exactly as HAProxy's route validation sees it."""
    hostname = value.strip()
    if not hostname:
        return ""
    if not is_haproxy_domain(hostname):
        raise InvalidConfigError(
            "hostname",
            f"{shown(value)} is not a fully qualified domain name such as keys.example.com"
            " (HAProxy's route validation refuses it)",
        )
    return hostname.lower()


def is_haproxy_domain(name: str) -> bool:
    """Whether the `haproxy` charm accepts the name as a route's `hostname`.

    HAProxy checks it with `validators.domain` (no trailing dot, no underscore, a last label
    of two or more characters ending in a letter; IP addresses and one-label names fail).
    Wildcards, which HAProxy also takes, make no sense as a keyserver's name: refused here.
    """
    from validators import domain  # noqa: PLC0415 - only when a hostname is set

    try:
        return bool(domain(name))
    except UnicodeError:  # no IDNA form: HAProxy's validator fails on it the same way
        return False


def _optional_fingerprint(option: str, value: str) -> str:
    if not value.strip():
        return ""
    try:
        return normalise_fingerprint(value)
    except ValueError as error:
        raise InvalidConfigError(option, str(error)) from None


def _fingerprint_list(option: str, value: str) -> tuple[str, ...]:
    items = [item for item in _LIST_SEPARATORS.split(value) if item]
    try:
        fingerprints = [normalise_fingerprint(item) for item in items]
    except ValueError as error:
        raise InvalidConfigError(option, str(error)) from None
    return tuple(dict.fromkeys(fingerprints))


def _external_peers(value: str) -> tuple[ExternalPeer, ...]:
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    try:
        peers = [ExternalPeer.parse(line) for line in lines]
    except ValueError as error:
        raise InvalidConfigError("external-peers", str(error)) from None
    # One partner per keyserver: the same host and recon port twice (even with different
    # HTTP ports) would be two partner tables of one name.
    names = [peer.name for peer in peers]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidConfigError("external-peers", f"{duplicates[0]} is listed more than once")
    return tuple(peers)


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise InvalidConfigError(
            "log-level", f"{shown(value)} is not one of {', '.join(LOG_LEVELS)}"
        )
    return level


def _cidrs(value: str) -> tuple[str, ...]:
    items = [item for item in _LIST_SEPARATORS.split(value) if item]
    networks = []
    for item in items:
        network = go_cidr(item)
        if network is None:
            raise InvalidConfigError(
                "allowed-recon-cidrs", f"{shown(item)} is not an IP network such as 192.0.2.0/24"
            )
        networks.append(network)
    return tuple(dict.fromkeys(networks))


def _public_address(value: str) -> str:
    text = value.strip()
    if not text:
        return ""
    try:
        return parse_host("recon-public-address", text)
    except InvalidReconDataError:
        raise InvalidConfigError(
            "recon-public-address",
            f"{value!r} is not an IP address or host name other keyservers can reach",
        ) from None


def _public_port(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise InvalidConfigError(
            "recon-public-port", f"{value!r} is not 0 (the units' own port) or a port number"
        )
    return value


def _rate_limit(value: object) -> int:
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not 0 <= value <= MAX_CONNECTIONS_PER_MINUTE
    ):
        raise InvalidConfigError(
            "rate-limit-connections-per-minute",
            f"{shown(value)} is not between 0 (no limit) and {MAX_CONNECTIONS_PER_MINUTE}",
        )
    return value


def _choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    choice = value.strip().lower()
    if choice not in choices:
        raise InvalidConfigError(option, f"{shown(value)} is not one of {', '.join(choices)}")
    return choice


def _gossip_interval(value: object) -> int:
    seconds = _positive_int("recon-gossip-interval", value)
    if not MIN_GOSSIP_INTERVAL <= seconds <= MAX_GOSSIP_INTERVAL:
        raise InvalidConfigError(
            "recon-gossip-interval",
            f"{seconds} is not between {MIN_GOSSIP_INTERVAL} and {MAX_GOSSIP_INTERVAL} seconds",
        )
    return seconds


def _positive_int(option: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_BYTES:
        raise InvalidConfigError(
            option, f"{shown(value)} is not a positive whole number up to {MAX_BYTES}"
        )
    return value


@dataclass(frozen=True)
class ReconPartner:
    """A keyserver this unit reconciles with: another unit, a remote unit, an external peer."""

    name: str
    host: str
    http_port: int
    recon_port: int

    @property
    def http_addr(self) -> str:
        """HKP `host:port`."""
        return _host_port(self.host, self.http_port)

    @property
    def recon_addr(self) -> str:
        """Recon `host:port`."""
        return _host_port(self.host, self.recon_port)


@dataclass(frozen=True)
class CharmState:
    """Everything the workload's config depends on, for one hook."""

    config: CharmConfig
    database: DatabaseCredentials
    nodename: str
    unit_address: str | None = None
    peer_units: tuple[PeerUnit, ...] = ()
    proxy_hostname: str = ""
    machine_hostname: str = ""
    charm_admin_key: str = ""
    blocked_fingerprints: tuple[str, ...] = ()
    # (templates, web root) as the daemon sees them; None: the snap has none, use built-ins.
    web_layout: tuple[PurePosixPath, PurePosixPath] | None = WEB_LAYOUTS[0]
    log_file: str | None = None  # None: standard error, into the systemd journal
    remote_partners: tuple[RemoteReconUnit, ...] = ()  # units of the recon relations

    @property
    def admin_keys(self) -> tuple[str, ...]:
        """The operator's admin keys, then the charm's own (which signs block-keys deletes)."""
        keys = [*self.config.admin_keys, self.charm_admin_key.upper()]
        return tuple(dict.fromkeys(key for key in keys if key))

    @property
    def public_hostname(self) -> str:
        """The name users reach this keyserver by: the config, else HAProxy's, else the machine's.

        Hockeypuck writes it into every key it serves.
        """
        return self.config.hostname or self.proxy_hostname or self.machine_hostname

    @property
    def recon_partners(self) -> tuple[ReconPartner, ...]:
        """Every other unit, every remote unit of the recon relations, every external peer.

        Names are unique by construction: `hockeypuck-1` (units), `hockeypuck-eu/0@recon-peers:7`
        (remote units), `host:port` (external peers). A keyserver at a host and recon port
        listed before, or at this unit's own address, is left out.
        """
        candidates = [
            *(ReconPartner(u.nodename, u.address, HKP_PORT, RECON_PORT) for u in self.peer_units),
            *(
                ReconPartner(
                    unit.partner_name,
                    unit.published.address,
                    unit.published.http_port,
                    unit.published.recon_port,
                )
                for unit in self.remote_partners
            ),
            *(
                ReconPartner(peer.name, peer.canonical_host, peer.http_port, peer.recon_port)
                for peer in self.config.external_peers
            ),
        ]
        own = {self.unit_address, self.config.recon_public_address} - {None, ""}
        listed: set[tuple[str, int]] = set()
        partners = []
        for partner in candidates:
            if partner.host in own or (partner.host, partner.recon_port) in listed:
                continue
            listed.add((partner.host, partner.recon_port))
            partners.append(partner)
        return tuple(partners)

    @property
    def remote_networks(self) -> tuple[str, ...]:
        """Networks the recon relations' units connect from that no partner address covers."""
        hosts = [partner.host for partner in self.recon_partners]
        return tuple(str(network) for network in networks_to_allow(self.remote_partners, hosts))

    @property
    def allowed_cidrs(self) -> tuple[str, ...]:
        """Networks allowed to reconcile with this unit besides its named partners.

        Hockeypuck lets every partner in by its address already, and it matches `allowCIDRs`
        before the partners: a partner inside one of these networks is taken for an anonymous
        peer (its stats never show an incoming recon). So: the operator's networks, and the
        networks peered deployments connect from that no partner address covers (NAT).
        """
        return tuple(dict.fromkeys([*self.config.allowed_recon_cidrs, *self.remote_networks]))


def _host_port(host: str, port: int) -> str:
    """The `host:port` form Hockeypuck expects, with IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
