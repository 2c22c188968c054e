"""Where exops may send requests: public addresses only, unless the operator allows a network.

Tool endpoints and webhook URLs come from packs and settings, but a pack author (or a compromised
pack upload) must not be able to aim exops at the cloud metadata service, the database next door
or the process itself. Before every request the host is resolved and each address it resolves to
must be globally routable, or inside a network the operator listed in settings
(``EXOPS_OUTBOUND_ALLOWED_NETWORKS``, e.g. ``["127.0.0.0/8"]`` for a local stand-in system).

What is left open: the address is checked when the request is prepared, and the HTTP client
resolves the name again when it connects, so a DNS server that answers differently within
milliseconds (DNS rebinding) is not caught here. Deployments that fear it add an egress proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; injectable so tests never use DNS."""


class OutboundRefused(Exception):
    """A request exops will not send; the message says why, for the audit trail."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings from settings; a bare address means that address alone."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


@dataclass(frozen=True)
class OutboundPolicy:
    allowed_networks: tuple[Network, ...] = ()
    resolver: Resolver = system_resolver

    def address_refusal(self, address: str) -> str | None:
        """Why ``address`` may not be reached, or None when it may."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip in network for network in self.allowed_networks):
            return None
        if ip.is_loopback:
            return f"{address} is a loopback address"
        if ip.is_link_local:
            return f"{address} is a link-local address"
        if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            return f"{address} is not a unicast public address"
        if ip.is_private or not ip.is_global:
            return f"{address} is a private address"
        return None

    async def check(self, url: str) -> list[str]:
        """Raise ``OutboundRefused`` unless every address ``url``'s host resolves to may be reached;
        return those addresses (for the audit trail)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise OutboundRefused(f"{url}: only http and https are allowed")
        host = parts.hostname
        if not host:
            raise OutboundRefused(f"{url}: no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            try:
                addresses = await self.resolver(host, port)
            except OSError as exc:
                raise OutboundRefused(f"{host}: cannot resolve ({exc})") from None
        if not addresses:
            raise OutboundRefused(f"{host}: resolves to no address")
        for address in addresses:
            reason = self.address_refusal(address)
            if reason is not None:
                raise OutboundRefused(
                    f"{host} resolves to {address}, refused: {reason} "
                    "(allow its network in EXOPS_OUTBOUND_ALLOWED_NETWORKS if this is intended)"
                )
        return addresses
