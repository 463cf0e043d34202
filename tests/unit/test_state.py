"""Validation and normalisation of the operator's config."""

from __future__ import annotations

import pytest

from state import (
    CharmConfig,
    ExternalPeer,
    InvalidConfigError,
    is_valid_host,
    normalise_fingerprint,
)
from tests import hostnames

V4 = "4E6955676366F4F25D46BBD77722ECD1CF6E3EEA"
V6 = "AB" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (V4, V4),
        (V4.lower(), V4),
        ("0x" + V4.lower(), V4),
        ("0X" + V4, V4),
        (f"  {V4}  ", V4),
        (V6.lower(), V6),
    ],
)
def test_fingerprints_are_normalised(text: str, expected: str):
    assert normalise_fingerprint(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("7722ECD1CF6E3EEA", "has 16 hex digits"),
        (V4 + "00", "has 42 hex digits"),
        ("Z" * 40, "is not a hexadecimal fingerprint"),
        ("", "is not a hexadecimal fingerprint"),
        ("0x", "is not a hexadecimal fingerprint"),
    ],
)
def test_bad_fingerprints_say_why(text: str, why: str):
    with pytest.raises(ValueError, match=why):
        normalise_fingerprint(text)


def test_admin_keys_accept_commas_spaces_and_lines_and_drop_duplicates():
    config = CharmConfig.from_config(
        {"snap-channel": "latest/edge", "admin-keys": f"{V4}, 0x{V4.lower()}\n{V6}"}
    )

    assert config.admin_keys == (V4, V6)


@pytest.mark.parametrize(
    "host", ["keyserver.ubuntu.com", "pgp.mit.edu.", "10.1.2.3", "2001:db8::1", "localhost"]
)
def test_valid_hosts(host: str):
    assert is_valid_host(host)


@pytest.mark.parametrize(
    "host", ["", "-bad.example.com", "bad_host", "a..b", "300.1.1.1", "x" * 64 + ".com", "a b"]
)
def test_invalid_hosts(host: str):
    assert not is_valid_host(host)


def test_external_peer_in_the_kubernetes_charm_format():
    peer = ExternalPeer.parse(" keyserver.example.net , 11371 , 11370 ")

    assert peer == ExternalPeer("keyserver.example.net", 11371, 11370)
    assert peer.name == "keyserver.example.net:11370"


def test_ipv6_peer_addresses_are_bracketed():
    peer = ExternalPeer.parse("2001:db8::7,11371,11370")

    assert peer.name == "[2001:db8::7]:11370"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("a.example.com", "needs 3 fields"),
        ("a.example.com,1,2,3", "needs 3 fields"),
        ("a.example.com,0,11370", "'0' is not a port number"),
        ("a.example.com,11371,-1", "'-1' is not a port number"),
        ("a.example.com,http,11370", "'http' is not a port number"),
        (",11371,11370", "'' is not a host name"),
    ],
)
def test_malformed_peer_lines(line: str, why: str):
    with pytest.raises(ValueError, match=why):
        ExternalPeer.parse(line)


def test_duplicate_peers_are_rejected():
    peers = "a.example.com,11371,11370\nb.example.com,11371,11370\na.example.com,11371,11370"

    with pytest.raises(InvalidConfigError, match="a.example.com:11370 is listed more than once"):
        CharmConfig.from_config({"snap-channel": "latest/edge", "external-peers": peers})


def test_blank_lines_between_peers_are_ignored():
    config = CharmConfig.from_config(
        {"snap-channel": "latest/edge", "external-peers": "\na.example.com,11371,11370\n\n"}
    )

    assert len(config.external_peers) == 1


@pytest.mark.parametrize("level", ["info", "Debug", "WARN", "warning", "trace"])
def test_log_levels_are_case_insensitive(level: str):
    config = CharmConfig.from_config({"snap-channel": "latest/edge", "log-level": level})

    assert config.log_level == level.upper()


@pytest.mark.parametrize("channel", ["", "latest edge", "latest/edge;rm"])
def test_bad_snap_channel(channel: str):
    with pytest.raises(InvalidConfigError, match="snap-channel"):
        CharmConfig.from_config({"snap-channel": channel})


def test_error_names_option_and_reason():
    error = InvalidConfigError("log-level", "'x' is not one of INFO")

    assert str(error) == "log-level: 'x' is not one of INFO"
    assert (error.option, error.why) == ("log-level", "'x' is not one of INFO")


@pytest.mark.parametrize("hostname", hostnames.REFUSED)
def test_hostname_must_be_a_domain_name_haproxy_accepts(hostname: str):
    with pytest.raises(InvalidConfigError, match="HAProxy's route validation refuses it"):
        CharmConfig.from_config({"snap-channel": "latest/edge", "hostname": hostname})


@pytest.mark.parametrize("hostname", hostnames.ACCEPTED)
def test_hostname_haproxy_accepts_is_taken(hostname: str):
    config = CharmConfig.from_config({"snap-channel": "latest/edge", "hostname": hostname})

    assert config.hostname == hostname.lower()


def test_hostname_is_lower_cased():
    config = CharmConfig.from_config(
        {"snap-channel": "latest/edge", "hostname": "Keys.Example.COM"}
    )

    assert config.hostname == "keys.example.com"


@pytest.mark.parametrize(
    ("value", "valid"),
    [(5, True), (60, True), (86400, True), (4, False), (86401, False), (0, False), (True, False)],
)
def test_recon_gossip_interval_bounds(value: object, valid: bool):
    config = {"snap-channel": "latest/edge", "recon-gossip-interval": value}
    if valid:
        assert CharmConfig.from_config(config).gossip_interval == value
    else:
        with pytest.raises(InvalidConfigError, match="recon-gossip-interval"):
            CharmConfig.from_config(config)
