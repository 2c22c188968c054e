"""Which addresses exops may send requests to: one pure rule, used twice.

``tools.outbound`` applies it at run time to every address a host resolves to (tools, webhooks,
SMTP, LLM endpoints); pack validation applies it without any I/O to URLs a pack writes literally
(an ``llm.baseUrl`` of ``http://169.254.169.254/``), so a pack that could only ever be refused is
refused when it is uploaded. It lives in ``packs`` because that is the bottom layer both can import.

The rule: only ``http`` and ``https``; an address must be globally routable (not loopback,
link-local, private, shared, multicast, reserved or unspecified, and never the cloud metadata
service) unless it lies in a network the operator allowed (``EXOPS_OUTBOUND_ALLOWED_NETWORKS``).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = ("http", "https")
ALLOW_HINT = "(allow its network in EXOPS_OUTBOUND_ALLOWED_NETWORKS if this is intended)"
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
"""Cloud metadata services (AWS, ECS, AWS IPv6, Alibaba): named as such in refusals."""

_LEGACY_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)
"""The forms ``inet_aton`` reads as IPv4 (``2130706433``, ``0x7f.1``, ``127.1``, ``0177.0.0.1``):
resolvers answer them with that address, so they are addresses, not names."""


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """CIDR strings from settings; a bare address means that address alone."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def literal_address(host: str) -> Address | None:
    """The address ``host`` spells, when it is one (IPv4 in any form a resolver accepts, IPv6 with
    or without brackets and zone), else None: a name that only DNS can answer."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        if not _LEGACY_IPV4.match(bare):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 reaches 127.0.0.1
    return address


def address_refusal(address: str | Address, allowed: Iterable[Network] = ()) -> str | None:
    """Why ``address`` may not be reached, or None when it may."""
    ip = literal_address(address) if isinstance(address, str) else address
    if ip is None:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip.version == network.version and ip in network for network in allowed):
        return None
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata service address"
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return f"{ip} is not a unicast public address"
    if ip.is_private or not ip.is_global:
        return f"{ip} is a private address"
    return None


def static_url_refusal(url: str, allowed: Iterable[Network] = ()) -> str | None:
    """Why ``url`` can be refused without resolving anything (scheme, no host, a literal address
    in a refused range), or None when only a run-time check can tell."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() not in SCHEMES:
        return f"only http and https URLs are allowed, not {parts.scheme or 'no scheme'}"
    if not host:
        return "the URL has no host"
    address = literal_address(host)
    if address is None:
        return None
    reason = address_refusal(address, allowed)
    return f"{reason} {ALLOW_HINT}" if reason else None
