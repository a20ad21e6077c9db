"""Which server an inference URL names, however it is spelled: ``grpc://localhost:8001``, ``127.0.0.1:8001``,
``[::1]:8001`` and this host's own name at 8001 are all this machine's port 8001; ``GPU-Node.:8001`` is
``gpu-node:8001``. Names other than this host's are not resolved (no DNS on the way)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

THIS_HOST = "this-host"  # every address that reaches this machine (loopback, any, its own name)
LOCAL_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})


def _canonical_host(host: str) -> str:
    name = host.strip().lower().rstrip(".")
    if name in LOCAL_NAMES or name.endswith(".localhost") or name == socket.gethostname().lower():
        return THIS_HOST
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return THIS_HOST if ip.is_loopback or ip.is_unspecified else ip.compressed


@dataclass(frozen=True)
class EndpointAddress:
    """A server's identity: its canonical host and its port."""

    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> EndpointAddress | None:
        """``[scheme://]host:port[/...]`` (IPv6 in brackets); None without a port or a host."""
        rest = url.strip()
        if "://" in rest:
            rest = rest.split("://", 1)[1].lstrip("/")
        rest = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        if rest.startswith("["):
            host, _, tail = rest[1:].partition("]")
            port = tail.removeprefix(":")
        else:
            host, _, port = rest.rpartition(":")
            if ":" in host:  # an IPv6 address without brackets: where its port starts is anyone's guess
                return None
        if not host or not port.isdigit():
            return None
        return cls(_canonical_host(host), int(port))
