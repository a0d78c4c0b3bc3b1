"""Where a webhook may send: the URL checked, its host resolved, and every address
judged (SSRF).

A target is refused when any address its name resolves to is private, loopback,
link-local, multicast, reserved, shared (CGNAT) or unspecified, IPv4 or IPv6, with
the IPv4 inside an IPv6 address (mapped, 6to4, Teredo, NAT64) judged as IPv4. The
check runs at creation and again at every attempt, and the attempt connects to the
very address it checked (``sender``): a name that resolves to a public address when
checked and to 127.0.0.1 a moment later (DNS rebinding) reaches nothing inside.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class BadTarget(ValueError):
    """The URL is malformed, not allowed, or points inside."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # a name, or an address without brackets
    port: int
    path: str  # with its query


def parse(url: object, allow_http: bool) -> Target:
    if not isinstance(url, str):
        raise BadTarget("url: expected a string")
    if len(url) > MAX_URL:
        raise BadTarget(f"url: at most {MAX_URL} characters")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise BadTarget("url: printable ASCII without spaces (percent-encode the rest)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadTarget("url: not a valid URL") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes:
        raise BadTarget(f"url: the scheme must be {' or '.join(schemes)}")
    if parts.username is not None or parts.password is not None:
        raise BadTarget("url: no user or password in the URL")
    if not parts.hostname:
        raise BadTarget("url: a host is required")
    if parts.fragment:
        raise BadTarget("url: no fragment (#...)")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname, port or default, path)


def refused(address: IPAddress) -> bool:
    """Whether an address is one a webhook may not reach."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour or (
            address.teredo[1] if address.teredo else None)
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return refused(inner)
    return (address.is_private or address.is_loopback or address.is_link_local
            or address.is_multicast or address.is_reserved or address.is_unspecified
            or not address.is_global)


def resolve(target: Target, allow_private: bool) -> list[IPAddress]:
    """Every address the host has, each allowed; BadTarget if it has none or if any
    is refused (one inside address is enough to reach inside, by retrying)."""
    try:
        found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise BadTarget("url: the host name does not resolve") from None
    addresses: list[IPAddress] = []
    for *_rest, sockaddr in found:
        # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"): the address is before it.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not allow_private and any(refused(a) for a in addresses):
        raise BadTarget("url: the host resolves to a private, loopback, link-local or"
                        " otherwise internal address")
    return addresses
