"""Host and address policy: the one place that decides which hosts this client may reach.

Every check runs on the host *as the transport will use it*: a host is folded the way
yarl folds it before aiohttp connects (IDNA/UTS 46 mapping, so full-width ``１２７``,
circled ``①②⑦`` and ideographic full stops ``。`` all become ``127.0.0.1``), and legacy
numeric forms that the system resolver accepts (``127.1``, ``0x7f.1``, ``2130706433``)
are read as the address they mean. Nothing here does I/O: the download resolver and
connect hook (``_download``) call :func:`check_address` on the address actually
connected to, and the URL checks (``_urls``, ``_rules``) call :func:`host_problem`.

Policy (one list for every caller):

- *loopback*: ``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1`` and IPv4-mapped forms;
  allowed only where the caller says so (the emulator on this machine);
- *blocked addresses*: private, shared (100.64/10), link-local (the cloud metadata
  service at 169.254.169.254), reserved, multicast and unspecified addresses, also when an
  IPv4 address hides inside an IPv6 one (mapped, compatible, 6to4, Teredo, NAT64): the
  rule is written out in :func:`is_blocked_address`, not left to ``is_global``;
- *internal names*: single-label names and ``.local``, ``.internal``, ``.localdomain``,
  ``.home.arpa`` suffixes (``metadata.google.internal``), which only a local resolver
  answers.
"""

from __future__ import annotations

import ipaddress
import socket

from yarl import URL

from ._errors import UnsafeURLError

__all__ = [
    "IPAddress",
    "check_address",
    "host_problem",
    "is_blocked_address",
    "is_loopback_host",
    "normalise_host",
    "url_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_INTERNAL_SUFFIXES = (".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ``::a.b.c.d`` (RFC 4291)
# IANA's IPv4 special-purpose registry, every block not "globally reachable" (and some that
# are but that no video host uses: stricter is safe here), plus multicast and the reserved
# 240/4. Loopback 127/8 is handled on its own (the emulator may be allowed).
_BLOCKED_V4 = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared (carrier-grade NAT)
        "169.254.0.0/16",  # link-local, the cloud metadata service
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
# Only 2000::/3 is allocated as global unicast; inside it, IANA's IPv6 special-purpose
# blocks that are not globally reachable (all of 2001::/23, stricter than the registry).
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_BLOCKED_V6 = tuple(
    ipaddress.IPv6Network(block)
    for block in (
        "2001::/23",  # IETF protocol assignments (Teredo 2001::/32 is judged by its IPv4)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)


def normalise_host(host: str | None) -> str | None:
    """Return ``host`` folded as yarl/aiohttp fold it (lower case, IDNA, ASCII digits).

    Brackets around an IPv6 literal and an IPv6 zone are dropped; a trailing dot is kept
    off. ``None`` when there is no host or it cannot be a host at all (spaces, slashes).
    """
    if not host:
        return None
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        folded = URL.build(scheme="https", host=text).raw_host
    except (ValueError, UnicodeError):
        return None
    if not folded:
        return None
    folded = folded.split("%", 1)[0].lower().rstrip(".")
    return folded or None


def url_host(url: str) -> str | None:
    """The normalised host that aiohttp will connect to for ``url`` (``None`` if none)."""
    try:
        raw = URL(url).raw_host
    except (ValueError, TypeError, UnicodeError):
        return None
    return normalise_host(raw)


def _as_address(host: str) -> IPAddress | None:
    """The address a normalised host names literally, legacy numeric IPv4 forms included."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(ch in "0123456789abcdefx." for ch in host) and host[0].isdigit():
        # 127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1: getaddrinfo reads them as IPv4.
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, 6to4, Teredo, NAT64), if any.

    ``::`` and ``::1`` are left alone: they are IPv6's own unspecified and loopback addresses.
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_loopback_address(address: IPAddress) -> bool:
    inner = _embedded_ipv4(address)
    return (inner if inner is not None else address).is_loopback


def is_blocked_address(address: IPAddress | str, *, allow_loopback: bool = False) -> bool:
    """Whether nothing may connect to ``address`` (any text that is not an address is blocked).

    The rule, written out so that it does not move with a Python version's ``is_global``
    (3.13 calls all of 6to4 ``2002::/16`` non-global, 3.11 does not):

    1. loopback (127.0.0.0/8, ``::1``) is blocked unless ``allow_loopback``;
    2. an IPv6 address that carries an IPv4 one (mapped, compatible, 6to4, Teredo, NAT64)
       is judged by that IPv4 address alone;
    3. an IPv4 address is blocked inside any network of ``_BLOCKED_V4``;
    4. an IPv6 address is blocked outside global unicast ``2000::/3`` or inside any network
       of ``_BLOCKED_V6``.
    """
    if isinstance(address, str):
        try:
            ip: IPAddress = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
        except ValueError:
            return True
    else:
        ip = address
    inner = _embedded_ipv4(ip)
    if inner is not None:
        return is_blocked_address(inner, allow_loopback=allow_loopback)
    if ip.is_loopback:
        return not allow_loopback
    if isinstance(ip, ipaddress.IPv4Address):
        return any(ip in network for network in _BLOCKED_V4)
    return ip not in _GLOBAL_UNICAST_V6 or any(ip in network for network in _BLOCKED_V6)


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8 or ::1), once folded."""
    folded = normalise_host(host)
    if folded is None:
        return False
    if folded == "localhost" or folded.endswith(".localhost"):
        return True
    address = _as_address(folded)
    return address is not None and _is_loopback_address(address)


def host_problem(host: str | None, *, allow_loopback: bool = False) -> str | None:
    """Why this client must not connect to ``host``, or ``None`` when it may.

    ``host`` may be raw (from a URL) or already folded; it is folded first. The reason is
    a short phrase such as ``"127.0.0.1 is a loopback address"``.
    """
    folded = normalise_host(host)
    if folded is None:
        return f"{host!r} is not a valid host name"
    if is_loopback_host(folded):
        return None if allow_loopback else f"{folded} is this machine (loopback)"
    address = _as_address(folded)
    if address is not None:
        if is_blocked_address(address, allow_loopback=allow_loopback):
            return f"{folded} is not a public address ({address})"
        return None
    if "." not in folded or folded.endswith(_INTERNAL_SUFFIXES):
        return f"{folded} is not a public host name"
    return None


def check_address(
    address: str, *, host: str, url: str | None = None, allow_loopback: bool = False
) -> None:
    """Raise ``UnsafeURLError`` when ``host`` resolved (or connects) to a blocked ``address``."""
    if is_blocked_address(address, allow_loopback=allow_loopback):
        raise UnsafeURLError(
            f"Refused to download from {host}: it resolves to {address}, which is not a "
            "public address.",
            url=url,
        )
