"""Safety checks for result URLs before anything connects to them (pure, no I/O).

A result URL comes from the API, so it is treated as untrusted input: downloading it must
not reach this machine, the local network or a cloud metadata service (SSRF). Only
``https`` URLs on public addresses pass. The one exception is for tests against the
emulator: when the client's own base URL is loopback, loopback result URLs (``http`` or
``https``) are allowed too. Hostnames are checked again after DNS resolution by
:func:`check_address`, on every redirect hop.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ._errors import UnsafeURLError
from ._rules import is_loopback_host

__all__ = ["MAX_URL_LENGTH", "check_address", "check_result_url", "is_blocked_address"]

MAX_URL_LENGTH = 8192

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in an IPv6 one (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_blocked_address(address: IPAddress | str, *, allow_loopback: bool = False) -> bool:
    """Whether a download must not connect to ``address``.

    Blocked: loopback (unless ``allow_loopback``), private, link-local (cloud metadata),
    shared, reserved, multicast and unspecified addresses, including when an IPv4
    address hides inside an IPv6 one.
    """
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return True
    inner = _embedded_ipv4(ip)
    if inner is not None:
        return is_blocked_address(inner, allow_loopback=allow_loopback)
    if ip.is_loopback:
        return not allow_loopback
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_link_local
        or ip.is_private
        or ip.is_unspecified
    )


def check_address(
    address: str, *, host: str, url: str | None = None, allow_loopback: bool = False
) -> None:
    """Raise ``UnsafeURLError`` when ``host`` resolved to a blocked ``address``."""
    if is_blocked_address(address.split("%", 1)[0], allow_loopback=allow_loopback):
        raise UnsafeURLError(
            f"Refused to download from {host}: it resolves to {address}, which is not a "
            "public address.",
            url=url,
        )


def check_result_url(url: object, *, allow_loopback: bool = False) -> str:
    """Return ``url`` when it is safe to fetch, else raise ``UnsafeURLError``.

    Args:
        url: the result URL from the API (or a redirect's target).
        allow_loopback: accept http(s) URLs on loopback hosts (the emulator case).
    """
    if not isinstance(url, str) or not url:
        raise UnsafeURLError(f"A result URL must be a non-empty string (got {url!r}).")
    shown = url if len(url) <= 200 else url[:197] + "..."
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeURLError(f"The result URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UnsafeURLError(
            f"The result URL contains spaces or control characters: {shown!r}", url=url
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError as exc:
        raise UnsafeURLError(f"The result URL is not a valid URL: {shown!r}", url=url) from exc
    if parts.scheme not in ("http", "https"):
        raise UnsafeURLError(
            f"Refused result URL {shown!r}: only https URLs are downloaded.", url=url
        )
    if not host:
        raise UnsafeURLError(f"Refused result URL {shown!r}: it has no host.", url=url)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURLError(
            "Refused a result URL that carries credentials (user:password@host).", url=None
        )
    loopback = is_loopback_host(host)
    if loopback and allow_loopback:
        return url
    if parts.scheme != "https":
        raise UnsafeURLError(
            f"Refused result URL {shown!r}: only https URLs are downloaded.", url=url
        )
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if is_blocked_address(literal, allow_loopback=allow_loopback):
            raise UnsafeURLError(
                f"Refused result URL {shown!r}: {host} is not a public address.", url=url
            )
        return url
    lowered = host.lower().rstrip(".")
    if loopback or lowered.endswith((".local", ".internal", ".localdomain")) or "." not in lowered:
        raise UnsafeURLError(
            f"Refused result URL {shown!r}: {host} is not a public host name.", url=url
        )
    return url
