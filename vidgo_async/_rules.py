"""The callback and media URL rules, and the host checks they use.

Input rules (fields, limits, cross-field rules) moved to the model catalog
(``_catalog``, ``_cross_rules``) and the one validation engine (``_validation``).
This module is pure (no I/O, no client imports).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from ._errors import ValidationIssue

__all__ = [
    "MAX_CALLBACK_URL_LENGTH",
    "check_callback_url",
    "check_http_url",
    "is_loopback_host",
]

MAX_CALLBACK_URL_LENGTH = 2048
MAX_URL_LENGTH = 2048


def check_http_url(url: object, path: str) -> list[ValidationIssue]:
    """Check that ``url`` is an absolute http(s) URL with a host (media the API must fetch)."""
    if not isinstance(url, str):
        return [ValidationIssue(path, "must be a URL string", url)]
    if len(url) > MAX_URL_LENGTH:
        return [ValidationIssue(path, f"must be at most {MAX_URL_LENGTH} characters", url)]
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        return [ValidationIssue(path, "must be an absolute http(s) URL without spaces", url)]
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        return [ValidationIssue(path, "must be an absolute http(s) URL", url)]
    if parts.scheme not in ("http", "https") or not host:
        return [ValidationIssue(path, "must be an absolute http(s) URL with a host", url)]
    return []


def _is_private_host(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        lowered = host.lower().rstrip(".")
        return lowered == "localhost" or lowered.endswith((".localhost", ".local", ".internal"))
    return not address.is_global


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8 or ::1)."""
    if not host:
        return False
    lowered = host.lower().strip("[]").rstrip(".")
    if lowered == "localhost" or lowered.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(lowered)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_callback_url(
    url: object, *, path: str = "$.callback_url", allow_insecure: bool = False
) -> list[ValidationIssue]:
    """Check a ``callback_url`` against Vidgo's receiver rules.

    Vidgo calls public HTTP(S) URLs of at most 2048 characters. Plain ``http`` on a public
    host needs ``allow_insecure=True``: the callback token travels in the URL, so over http
    anyone on the path can read it and replay it. Loopback URLs (http or https) are
    accepted too, for testing against the emulator.
    """
    issues = check_http_url(url, path)
    if issues:
        return issues
    assert isinstance(url, str)  # noqa: S101 - checked by check_http_url
    if len(url) > MAX_CALLBACK_URL_LENGTH:
        return [ValidationIssue(path, f"must be at most {MAX_CALLBACK_URL_LENGTH} characters", url)]
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback_host(host):
        return []
    if parts.scheme != "https" and not allow_insecure:
        return [
            ValidationIssue(
                path,
                "must use https: the callback token travels in the URL (pass "
                "allow_insecure_callbacks=True to accept plain http on a public host)",
                url,
            )
        ]
    if _is_private_host(host):
        return [
            ValidationIssue(
                path, "must be publicly reachable (Vidgo refuses private and internal hosts)", url
            )
        ]
    return []
