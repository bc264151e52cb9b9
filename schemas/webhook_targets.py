"""Where a person's webhook may point (pure: standard library only).

Checked twice: when the URL is saved (its shape, and no literal non-public address) and at
every delivery (the name is resolved once, every address must be public, and the request
connects to the address that was checked: a second lookup could answer differently, which is
how DNS rebinding aims a webhook inside the network).
"""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import SplitResult, urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_LABEL_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class TargetError(ValueError):
    """Why a webhook URL or address is refused (safe to show)."""


def is_public(ip: IP) -> bool:
    """A globally routable unicast address: not private, loopback, link-local, shared
    (100.64/10, where cloud metadata lives), multicast, reserved or unspecified, and no IPv6
    form that embeds or tunnels to an IPv4 address (mapped, 6to4, Teredo, NAT64) unless that
    address is public itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False  # a zoned address is link-local by definition
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if ip.sixtofour is not None or ip.teredo is not None:
            return False
        if ip in _NAT64:
            return is_public(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return bool(
        ip.is_global
        and not ip.is_multicast
        and not ip.is_reserved
        and not ip.is_unspecified
        and not ip.is_loopback
    )


def literal_ip(host: str) -> IP | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url(url: str, *, require_https: bool, allow_private: bool) -> SplitResult:
    """The URL split, or a `TargetError` saying what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise TargetError(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("https", "http"):
        raise TargetError("the URL must start with https://")
    if require_https and parts.scheme != "https":
        raise TargetError("webhooks must use https")
    if parts.username is not None or parts.password is not None:
        raise TargetError("the URL may not carry credentials")
    host = parts.hostname or ""
    if not host:
        raise TargetError("the URL has no host")
    if port == 0:
        raise TargetError("port 0 is not a valid port")
    ip = literal_ip(host)
    if ip is None:
        _check_name(host, allow_private)
    elif not allow_private and not is_public(ip):
        raise TargetError(f"{host} is not a public address")
    return parts


def _check_name(host: str, allow_private: bool) -> None:
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise TargetError("not a valid host name") from exc
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > 253 or not all(
        0 < len(label) <= 63
        and set(label) <= _LABEL_CHARS
        and not label.startswith("-")
        and not label.endswith("-")
        for label in labels
    ):
        raise TargetError("not a valid host name")
    if not allow_private and labels[-1] in ("localhost", "local", "internal"):
        raise TargetError(f"{host} is not a public name")
