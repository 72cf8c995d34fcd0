"""Safety checks for result URLs before anything connects to them (pure, no I/O).

A result URL comes from the API, so it is treated as untrusted input: downloading it must
not reach this machine, the local network or a cloud metadata service (SSRF). Only
``https`` URLs on public hosts pass. The one exception is for tests against the emulator:
when the client's own base URL is loopback, loopback result URLs (``http`` or ``https``)
are allowed too. The host judged is the one aiohttp will use (folded by yarl), and the
judgement is :mod:`._hosts`'s, the one host policy of the package; the address actually
connected to is checked again by the download's resolver and connect hook.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ._errors import UnsafeURLError
from ._hosts import host_problem, is_loopback_host, url_host

__all__ = ["MAX_URL_LENGTH", "check_result_url"]

MAX_URL_LENGTH = 8192


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
    folded = url_host(url)
    if folded is None:
        raise UnsafeURLError(f"Refused result URL {shown!r}: its host is not valid.", url=url)
    if allow_loopback and is_loopback_host(folded):
        return url
    if parts.scheme != "https":
        raise UnsafeURLError(
            f"Refused result URL {shown!r}: only https URLs are downloaded.", url=url
        )
    problem = host_problem(folded, allow_loopback=allow_loopback)
    if problem is not None:
        raise UnsafeURLError(f"Refused result URL {shown!r}: {problem}.", url=url)
    return url
