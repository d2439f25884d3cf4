"""Server-side request forgery guard: which addresses a check may connect to.

A check target is operator input, so a worker must never be steered at cloud metadata or
link-local services, and (unless the service allows it) not at loopback or private networks
either. Addresses are checked after resolution and the engines connect to exactly the checked
address, so a DNS answer that changes between check and connect (rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

__all__ = [
    "AddressRefused",
    "GuardedResolver",
    "check_address",
    "embedded_ipv4",
    "guarded_socket_factory",
    "literal_ip",
    "refusal_reason",
    "resolve_checked",
    "validate_url_target",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_METADATA = frozenset(
    ipaddress.ip_address(ip)
    for ip in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean…
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
_LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
_PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")


class AddressRefused(OSError):
    """A target resolved to an address the guard refuses.

    An `OSError` so that aiohttp and asyncio treat it as a connection failure and keep the
    message, while callers can still tell it apart from a network error.
    """

    def __init__(self, address: str, reason: str, *, host: str = "") -> None:
        self.address = address
        self.reason = reason
        if host and host != address:
            message = f"{host} resolves to refused address {address} ({reason})"
        else:
            message = f"address {address} is refused ({reason})"
        super().__init__(message)


@functools.lru_cache(maxsize=4096)
def refusal_reason(ip: str, *, allow_private: bool) -> str | None:
    """Why a check must not connect to `ip`, or None when it may.

    An IPv6 address that carries an IPv4 address (see `embedded_ipv4`) is judged by what it
    carries: every IPv4 address it may reach must be allowed. Cached: the answer depends on
    the address alone, and judging one costs several microseconds, on every request of an
    IP-literal URL and every connection.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    embedded = embedded_ipv4(address)
    for candidate in embedded or [address]:
        reason = _always_refused(candidate)
        if reason is not None:
            return reason
    if allow_private:
        return None
    if address in _NAT64_LOCAL:
        # Where inside the /48 the IPv4 address sits is the operator's choice (RFC 6052),
        # so it cannot be judged exactly: local-use, like a private range.
        return "special-purpose"
    for candidate in embedded or [address]:
        reason = _special_range(candidate)
        if reason is not None:
            return reason
    return None


def _always_refused(address: IPAddress) -> str | None:
    if address in _METADATA:
        return "cloud metadata"
    if any(address in net for net in _LINK_LOCAL):
        return "link-local"
    return None


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address hands its packets to, which is what it really reaches.

    IPv4-mapped (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d, RFC 2765),
    IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks), NAT64
    (64:ff9b::/96, and every RFC 6052 position in the local-use 64:ff9b:1::/48), 6to4
    (2002:a.b.c.d::/48), Teredo (its server and its client) and ISATAP (an interface
    identifier of [02]00:5efe:a.b.c.d). Empty for an IPv4 address or a plain IPv6 one.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    value = int(address)
    low = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _TRANSLATED or address in _NAT64:
        return [low]
    if address in _COMPATIBLE and value > 1:  # :: and ::1 are themselves, not 0.0.0.x
        return [low]
    if address in _NAT64_LOCAL:
        return [_rfc6052_ipv4(value, length) for length in (48, 56, 64, 96)]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    if (value >> 32) & 0xFCFFFFFF == 0x00005EFE:  # ISATAP, u and g bits ignored
        return [low]
    return []


def _rfc6052_ipv4(value: int, prefix_length: int) -> ipaddress.IPv4Address:
    """The IPv4 address at RFC 6052's place for a NAT64 prefix of this length: right after the
    prefix, skipping bits 64-71 (the "u" octet), which are always zero."""
    if prefix_length == 96:
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    bits = value & ((1 << (128 - prefix_length)) - 1)  # everything after the prefix
    bits >>= 128 - prefix_length - 40  # the 40 bits that hold the address and the u octet
    before_u = 64 - prefix_length  # address bits that come before the u octet
    high = bits >> (40 - before_u)
    after = bits & ((1 << (32 - before_u)) - 1)
    return ipaddress.IPv4Address((high << (32 - before_u)) | after)


def _special_range(address: IPAddress) -> str | None:
    # Order matters: the most specific, most recognisable name wins.
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if any(address in net for net in _PRIVATE):
        return "private"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "CGNAT"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "special-purpose"
    return None


@functools.lru_cache(maxsize=4096)
def literal_ip(host: str) -> str | None:
    """`host` as a canonical IP string when it is an IP literal (legacy IPv4 forms included).
    Cached: it depends on the text alone, and every HTTP check asks it of its URL's host."""
    host = host.strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    # "2130706433", "0x7f.1" and "127.1" all reach 127.0.0.1 through inet_aton.
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_address(address: str, *, allow_private: bool, host: str = "") -> None:
    """Raise `AddressRefused` unless a check may connect to `address`."""
    reason = refusal_reason(address, allow_private=allow_private)
    if reason is not None:
        raise AddressRefused(address, reason, host=host)


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve `host` once and return only the addresses a check may connect to.

    Raises `AddressRefused` when every address is refused and `socket.gaierror` when the name
    does not resolve.
    """
    ip = literal_ip(host)
    if ip is not None:
        check_address(ip, allow_private=allow_private)
        return [ip]
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return _allowed(addresses, host=host, allow_private=allow_private)


def _allowed(addresses: list[str], *, host: str, allow_private: bool) -> list[str]:
    allowed = [a for a in addresses if refusal_reason(a, allow_private=allow_private) is None]
    if not allowed and addresses:
        check_address(addresses[0], allow_private=allow_private, host=host)
    return allowed


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that hands the connector only addresses the guard allows.

    aiohttp resolves every hop of a redirect chain through its connector's resolver, so each
    hop is checked. aiohttp skips the resolver for IP literals: `guarded_socket_factory`
    covers those.
    """

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        ip = literal_ip(host)
        if ip is not None:
            check_address(ip, allow_private=self.allow_private)
        results = await self._resolver.resolve(host, port, family)
        addresses = list(dict.fromkeys(r["host"] for r in results))
        allowed = set(_allowed(addresses, host=host, allow_private=self.allow_private))
        return [r for r in results if r["host"] in allowed]

    async def close(self) -> None:
        await self._resolver.close()


def guarded_socket_factory(*, allow_private: bool) -> Callable[[tuple], socket.socket]:
    """A socket factory for `aiohttp.TCPConnector` that checks the exact address connected to.

    The last line of defence: it sees IP literals that bypass the resolver too.
    """

    def create(addr_info: tuple) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        check_address(str(sockaddr[0]), allow_private=allow_private)
        return socket.socket(family=family, type=type_, proto=proto)

    return create


def validate_url_target(url: str, *, allow_private: bool) -> str | None:
    """Save-time check of a URL: a reason when it cannot be a check target, else None.

    Hostnames are not resolved here (they may legitimately change); they are checked at
    every run instead.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError as exc:
        return f"invalid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "URL scheme must be http or https"
    if not host:
        return "URL has no host"
    ip = literal_ip(host)
    reason = refusal_reason(ip, allow_private=allow_private) if ip else None
    return str(AddressRefused(ip, reason)) if ip and reason else None
