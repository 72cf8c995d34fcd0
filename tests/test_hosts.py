"""Tests of the one host policy (T22): hosts are judged as the transport folds them."""

from __future__ import annotations

import socket
from pathlib import Path

import anyio
import pytest
from _client_support import KEY
from hypothesis import given
from hypothesis import strategies as st

from vidgo_async import UnsafeURLError, VidgoClient
from vidgo_async._clock import VirtualClock
from vidgo_async._download import BlockedAddressError, GuardedSockets
from vidgo_async._hosts import host_problem, is_loopback_host, normalise_host, url_host
from vidgo_async._rules import check_callback_url
from vidgo_async._urls import check_result_url

# Hosts from RELIABILITY.md T22 (and their neighbours), as ASCII literals.
BLOCKED_HOSTS = [
    "169.254.169.254",
    "127.0.0.1",
    "127.8.9.10",
    "10.0.0.5",
    "10.0.0.1",
    "192.168.1.2",
    "172.16.0.1",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
]
# Digits the IDNA/UTS 46 mapping folds to ASCII (what yarl does before aiohttp connects).
_DIGIT_FORMS = {
    str(d): [
        str(d),
        chr(0xFF10 + d),  # full-width
        chr(0x1D7CE + d),  # mathematical bold
        chr(0x1D7D8 + d),  # mathematical double-struck
        "⓪" if d == 0 else chr(0x2460 + d - 1),  # circled
    ]
    for d in range(10)
}
_DOT_FORMS = [".", "。", "．", "｡"]  # full stop, ideographic, full-width, half-width ideographic


def _variant(host: str, draw: st.DrawFn) -> str:
    return "".join(
        draw(st.sampled_from(_DIGIT_FORMS[ch]))
        if ch.isdigit()
        else draw(st.sampled_from(_DOT_FORMS))
        for ch in host
    )


@st.composite
def unicode_blocked(draw: st.DrawFn) -> tuple[str, str]:
    host = draw(st.sampled_from(BLOCKED_HOSTS))
    return host, _variant(host, draw)


ISSUE_URLS = [
    "https://１２７.0.0.1/",
    "https://①②⑦.⓪.⓪.①/",
    "https://１６９.２５４.１６９.２５４/",
    "https://１０.0.0.1/",
    "https://127。0。0。1/x.mp4",
    "https://ｌｏｃａｌｈｏｓｔ/x.mp4",
    "https://LOCALHOST./x.mp4",
    "https://127.1/x.mp4",
    "https://0x7f.0.0.1/x.mp4",
    "https://2130706433/x.mp4",
    "https://0177.0.0.1/x.mp4",
    "https://[::ffff:7f00:1]/x.mp4",
    "https://[fe80::1%25eth0]/x.mp4",
    "https://metadata.google.internal./x",
    "https://ＭＥＴＡＤＡＴＡ.google.internal/x",
    "https://printer.home.arpa/x",
]


@pytest.mark.parametrize("url", ISSUE_URLS)
def test_folded_hosts_are_refused_for_a_public_api(url: str) -> None:
    """Full-width, circled, ideographic-dot and legacy numeric hosts fail like their ASCII form."""
    with pytest.raises(UnsafeURLError):
        check_result_url(url)
    assert host_problem(url_host(url)) is not None


@given(unicode_blocked())
def test_unicode_variants_of_blocked_hosts_fold_and_fail(case: tuple[str, str]) -> None:
    """Every mix of digit and dot forms folds to the ASCII host and is refused (T22)."""
    ascii_host, variant = case
    assert normalise_host(variant) == ascii_host
    assert url_host(f"https://{variant}/x.mp4") == ascii_host
    with pytest.raises(UnsafeURLError):
        check_result_url(f"https://{variant}/x.mp4")
    # The emulator exception covers loopback only, never private or metadata addresses.
    if not ascii_host.startswith("127."):
        with pytest.raises(UnsafeURLError):
            check_result_url(f"https://{variant}/x.mp4", allow_loopback=True)


@given(unicode_blocked())
def test_callback_urls_use_the_same_folding(case: tuple[str, str]) -> None:
    """A callback URL on a folded private host is refused; a folded loopback one is the emulator case."""
    ascii_host, variant = case
    issues = check_callback_url(f"https://{variant}/cb")
    assert bool(issues) is not ascii_host.startswith("127.")
    assert is_loopback_host(variant) is ascii_host.startswith("127.")


@pytest.mark.parametrize(
    "host", ["storage.vidgo.ai", "８.８.８.８", "cdn.ｅｘａｍｐｌｅ.com", "[2606:4700::1111]"]
)
def test_public_hosts_pass_after_folding(host: str) -> None:
    """Folding does not refuse public hosts."""
    assert host_problem(host) is None
    assert check_result_url(f"https://{host}/x.mp4")


@pytest.mark.parametrize("host", [None, "", "exa mple.com", "a/b", "[::1"])
def test_unusable_hosts_are_refused(host: str | None) -> None:
    """What cannot be a host is never judged public."""
    assert host_problem(host) is not None
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("127.0.0.1", True),
        ("169.254.169.254", True),
        ("10.0.0.1", True),
        ("::1", True),
        ("::ffff:10.0.0.1", True),
        ("fe80::1%eth0", True),
        ("93.184.216.34", False),
    ],
)
def test_connect_hook_refuses_blocked_addresses(address: str, blocked: bool) -> None:
    """The socket factory judges the address actually connected to (IP literals skip DNS)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    hook = GuardedSockets(allow_loopback=False)
    info = (family, socket.SOCK_STREAM, 6, "", (address, 443))
    if blocked:
        with pytest.raises(BlockedAddressError):
            hook(info)
    else:
        hook(info).close()


@pytest.mark.parametrize("template", ["https://{}:{}/x.mp4", "http://{}:{}/x.mp4"])
@pytest.mark.parametrize("host", ["１２７.0.0.1", "①②⑦.⓪.⓪.①", "127.1"])
async def test_no_connection_is_made_to_a_folded_loopback_host(
    tmp_path: Path, template: str, host: str
) -> None:
    """With a public base URL the download is refused and the listening socket sees nobody."""
    connections = 0

    async def count(stream: anyio.abc.SocketStream) -> None:
        nonlocal connections
        connections += 1
        await stream.aclose()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - anyio, not Django
    async with anyio.create_task_group() as group:
        group.start_soon(listener.serve, count)
        async with VidgoClient(KEY, _clock=VirtualClock()) as client:
            with pytest.raises(UnsafeURLError):
                await client.download_file(template.format(host, port), tmp_path / "x.mp4")
        await anyio.sleep(0.05)
        group.cancel_scope.cancel()
    await listener.aclose()
    assert connections == 0
    assert not (tmp_path / "x.mp4").exists()
    assert not (tmp_path / "x.mp4.part").exists()
