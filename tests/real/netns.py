"""Network namespaces for the real-Hockeypuck tests: one small LAN of test hosts.

A bridge in this namespace (the "host", where PostgreSQL and the tests run) and one network
namespace per test host, joined by veth pairs, with IPv4 and IPv6 addresses of a private
subnet that exists only on this machine while the tests run. Needs root.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsUnavailableError(Exception):
    """Network namespaces cannot be made here (not root, or no `ip`)."""


@dataclass(frozen=True)
class LanHost:
    """One test host: a network namespace with an address on the LAN."""

    name: str
    netns: str
    ipv4: str
    ipv6: str


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *(("-n", netns) if netns else ()), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetnsUnavailableError(f"{' '.join(command)}: {done.stderr.strip()}")


class Lan:
    """A bridge with a /24 and a /64, and the test hosts on it."""

    def __init__(self, tag: int):
        self.tag = tag % 200 + 20
        self.prefix = f"hkp{os.getpid() % 100000}"
        self.bridge = f"{self.prefix}br"
        self.gateway_ipv4 = f"10.231.{self.tag}.1"
        self.gateway_ipv6 = f"fd42:4b50:{self.tag:x}::1"
        self.hosts: list[LanHost] = []

    def start(self) -> None:
        """Create the bridge and give this namespace its address on it."""
        if os.geteuid() != 0:
            raise NetnsUnavailableError("creating network namespaces needs root")
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway_ipv4}/24", "dev", self.bridge)
        _ip("addr", "add", f"{self.gateway_ipv6}/64", "dev", self.bridge, "nodad")
        _ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> LanHost:
        """A new namespace with loopback up and an address on the LAN."""
        index = len(self.hosts) + 10
        netns = f"{self.prefix}-{name}"
        outside, inside = f"{self.prefix}v{index}", "eth0"
        _ip("netns", "add", netns)
        _ip("link", "set", "lo", "up", netns=netns)
        _ip("link", "add", outside, "type", "veth", "peer", "name", f"{outside}p")
        _ip("link", "set", f"{outside}p", "netns", netns)
        _ip("link", "set", f"{outside}p", "name", inside, netns=netns)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        host = LanHost(
            name, netns, f"10.231.{self.tag}.{index}", f"fd42:4b50:{self.tag:x}::{index:x}"
        )
        _ip("addr", "add", f"{host.ipv4}/24", "dev", inside, netns=netns)
        _ip("addr", "add", f"{host.ipv6}/64", "dev", inside, "nodad", netns=netns)
        _ip("link", "set", inside, "up", netns=netns)
        _ip("route", "add", "default", "via", self.gateway_ipv4, netns=netns)
        self.hosts.append(host)
        return host

    def stop(self) -> None:
        """Delete every namespace and the bridge (their veth pairs go with them)."""
        for host in self.hosts:
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
        self.hosts.clear()


@contextlib.contextmanager
def entered(netns: str) -> Iterator[None]:
    """Run this thread (and the processes it starts) in the namespace, then come back."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(Path("/run/netns") / netns, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {netns}")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)
