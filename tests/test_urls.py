"""Tests of result-URL safety (T21/T22): scheme, credentials, literal and embedded addresses."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidgo_async import UnsafeURLError
from vidgo_async._hosts import check_address, is_blocked_address
from vidgo_async._urls import check_result_url

REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254/",
    "https://127.0.0.1/x.mp4",
    "https://[::1]/x.mp4",
    "https://10.0.0.5/x.mp4",
    "https://192.168.1.2/x.mp4",
    "https://172.16.0.1/x.mp4",
    "https://100.64.0.1/x.mp4",
    "https://0.0.0.0/x.mp4",
    "https://[::ffff:127.0.0.1]/x.mp4",
    "https://[::ffff:10.0.0.1]/x.mp4",
    "https://[fe80::1]/x.mp4",
    "https://[fc00::1]/x.mp4",
    "https://[64:ff9b::a00:1]/x.mp4",
    "https://[2002:a00:1::]/x.mp4",
    "https://224.0.0.1/x.mp4",
    "https://localhost/x.mp4",
    "https://storage.local/x.mp4",
    "https://metadata.google.internal/x",
    "https://intranet/x.mp4",
    "file:///etc/passwd",
    "ftp://storage.vidgo.ai/x.mp4",
    "http://storage.vidgo.ai/x.mp4",
    "https://user:pw@storage.vidgo.ai/x.mp4",
    "https://storage.vidgo.ai@10.0.0.1/x.mp4",
    "https://storage.vidgo.ai/a b.mp4",
    "https:///x.mp4",
    "",
    "https://[::1/x",
]


@pytest.mark.parametrize("url", REFUSED)
def test_unsafe_result_urls_are_refused(url: str) -> None:
    """Loopback, private, link-local, mapped, reserved, non-https and credentialed URLs fail (T22)."""
    with pytest.raises(UnsafeURLError):
        check_result_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://storage.vidgo.ai/generated/x.mp4",
        "https://storage.vidgo.ai:8443/generated/x.mp4?sig=abc",
        "https://8.8.8.8/x.png",
        "https://[2606:4700::1111]/x.png",
    ],
)
def test_public_https_urls_pass(url: str) -> None:
    """Public https URLs are returned unchanged."""
    assert check_result_url(url) == url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/f.mp4", "https://localhost/x", "http://[::1]:9/x"]
)
def test_loopback_is_allowed_for_a_loopback_api(url: str) -> None:
    """With a loopback base URL (the emulator) http(s) loopback URLs pass."""
    assert check_result_url(url, allow_loopback=True) == url


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/x", "http://169.254.169.254/", "http://example.com/x"]
)
def test_loopback_exception_does_not_open_private_or_plain_http(url: str) -> None:
    """The emulator exception covers loopback only."""
    with pytest.raises(UnsafeURLError):
        check_result_url(url, allow_loopback=True)


def test_check_address_names_the_host() -> None:
    """A resolved private address is refused with a message naming host and address."""
    with pytest.raises(UnsafeURLError, match=r"cdn\.example\.com"):
        check_address("10.1.2.3", host="cdn.example.com")
    check_address("93.184.216.34", host="example.com")


@pytest.mark.parametrize("text", ["not-an-ip", "999.1.1.1", ""])
def test_unparseable_addresses_are_blocked(text: str) -> None:
    """Anything that is not an address is blocked."""
    assert is_blocked_address(text)


@given(st.text(max_size=200))
def test_arbitrary_text_either_passes_or_raises_unsafe(url: str) -> None:
    """No input crashes the checker: it returns the URL or raises UnsafeURLError."""
    with contextlib.suppress(UnsafeURLError):
        assert check_result_url(url) == url


def _carried_ipv4(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries, by the standard properties (test's own copy)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in ipaddress.IPv6Network("::/96") and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


@given(st.ip_addresses())
def test_private_addresses_never_pass(address: object) -> None:
    """Every non-global address is blocked; an IPv6 one carrying IPv4 is judged by that IPv4."""
    ip = ipaddress.ip_address(str(address))
    inner = _carried_ipv4(ip)
    if inner is not None:
        # Python 3.13's is_global calls all of 2002::/16 non-global; the policy does not.
        assert is_blocked_address(ip) == is_blocked_address(inner)
    elif not ip.is_global:
        assert is_blocked_address(ip)


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("2002:100::", False),  # 6to4 of 1.0.0.0: public (3.13's is_global says otherwise)
        ("2002:808:808::1", False),  # 6to4 of 8.8.8.8
        ("2002:a00:1::", True),  # 6to4 of 10.0.0.1
        ("2002:a9fe:a9fe::", True),  # 6to4 of 169.254.169.254
        ("::ffff:8.8.8.8", False),  # IPv4-mapped
        ("::ffff:192.168.0.1", True),
        ("::8.8.8.8", False),  # IPv4-compatible (deprecated)
        ("::10.0.0.1", True),
        ("64:ff9b::8.8.8.8", False),  # NAT64
        ("64:ff9b::127.0.0.1", True),
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", False),  # Teredo, client 8.8.8.8
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo, client 10.0.0.1
        ("2001:db8::1", True),  # documentation
        ("2001:2::1", True),  # IETF protocol assignments
        ("3fff::1", True),  # documentation
        ("fc00::1", True),
        ("4000::1", True),  # outside global unicast 2000::/3
        ("::", True),
        ("::1", True),
        ("2606:4700::1111", False),
        ("192.88.99.1", True),
        ("224.0.0.1", True),
        ("1.1.1.1", False),
    ],
)
def test_the_explicit_address_rule(address: str, blocked: bool) -> None:
    """The written-out rule decides, whatever the Python version's ``is_global`` says."""
    assert is_blocked_address(address) is blocked
