"""Where exops may send requests: public addresses only, unless the operator allows a network.

Tool endpoints and webhook URLs come from packs and settings, LLM endpoints from settings and
tenant policies, the SMTP host from settings; a pack author (or a compromised pack upload) must not
be able to aim exops at the cloud metadata service, the database next door or the process itself.
Before every request the host is resolved and each address it resolves to must pass
``packs.addresses.address_refusal``: globally routable, or inside a network the operator listed in
settings (``EXOPS_OUTBOUND_ALLOWED_NETWORKS``, e.g. ``["127.0.0.0/8"]`` for a local stand-in system).
The same rule refuses literal addresses when a pack is validated, before anything runs.

``PolicedTransport`` applies the check to every request an ``httpx`` client sends (redirect hops
included), for clients exops does not drive request by request, such as the openai SDK's.

What is left open: the address is checked when the request is prepared, and the HTTP client
resolves the name again when it connects, so a DNS server that answers differently within
milliseconds (DNS rebinding) is not caught here. Deployments that fear it add an egress proxy.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from packs.addresses import (
    ALLOW_HINT,
    SCHEMES,
    Network,
    address_refusal,
    literal_address,
    parse_networks,
)

__all__ = ["Network", "OutboundPolicy", "OutboundRefused", "PolicedTransport", "parse_networks"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``; injectable so tests never use DNS."""


class OutboundRefused(Exception):
    """A request exops will not send; the message says why, for the audit trail."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class OutboundPolicy:
    allowed_networks: tuple[Network, ...] = ()
    resolver: Resolver = system_resolver

    def address_refusal(self, address: str) -> str | None:
        """Why ``address`` may not be reached, or None when it may."""
        return address_refusal(address, self.allowed_networks)

    async def check(self, url: str) -> list[str]:
        """Raise ``OutboundRefused`` unless ``url`` is http(s) and every address its host resolves
        to may be reached; return those addresses (for the audit trail)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise OutboundRefused(f"not a valid URL ({exc})") from None
        if parts.scheme not in SCHEMES:
            raise OutboundRefused(f"only http and https URLs are allowed, not {parts.scheme or 'no scheme'}")
        host = parts.hostname
        if not host:
            raise OutboundRefused("the URL has no host")
        return await self.check_host(host, port or (443 if parts.scheme == "https" else 80))

    async def check_host(self, host: str, port: int) -> list[str]:
        """Raise ``OutboundRefused`` unless every address ``host`` resolves to may be reached (for
        connections that are not HTTP, such as SMTP); return the addresses."""
        literal = literal_address(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await self.resolver(host, port)
            except OSError as exc:
                raise OutboundRefused(f"{host}: cannot resolve ({exc})") from None
        if not addresses:
            raise OutboundRefused(f"{host}: resolves to no address")
        for address in addresses:
            reason = self.address_refusal(address)
            if reason is not None:
                raise OutboundRefused(f"{host} resolves to {address}, refused: {reason} {ALLOW_HINT}")
        return addresses


class PolicedTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport that lets a request through only when ``policy`` allows its URL.

    A refusal raises ``OutboundRefused`` before any byte is sent; clients that wrap transport
    errors (the openai SDK raises ``APIConnectionError``) keep it as the ``__cause__``."""

    def __init__(self, policy: OutboundPolicy, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._policy.check(str(request.url))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
