"""The callback and media URL rules.

Input rules (fields, limits, cross-field rules) live in the model catalog (``_catalog``,
``_cross_rules``) and the one validation engine (``_validation``); host and address policy
lives in ``_hosts``. This module is pure (no I/O, no client imports).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ._errors import ValidationIssue
from ._field_checks import MAX_URL_LENGTH, url_rule
from ._hosts import host_problem, is_loopback_host, url_host

__all__ = [
    "MAX_CALLBACK_URL_LENGTH",
    "MAX_URL_LENGTH",
    "check_callback_url",
    "check_http_url",
]

MAX_CALLBACK_URL_LENGTH = 2048


def check_http_url(url: object, path: str) -> list[ValidationIssue]:
    """Check that ``url`` is an absolute http(s) URL with a host (media the API must fetch)."""
    if not isinstance(url, str):
        return [ValidationIssue(path, "must be a URL string", url)]
    rule = url_rule(url)  # the one URL-shape rule, shared with input validation
    return [] if rule is None else [ValidationIssue(path, rule, url)]


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
    host = url_host(url)  # as the transport folds it: full-width or IDNA digits included
    if is_loopback_host(host):
        return []
    if urlsplit(url).scheme != "https" and not allow_insecure:
        return [
            ValidationIssue(
                path,
                "must use https: the callback token travels in the URL (pass "
                "allow_insecure_callbacks=True to accept plain http on a public host)",
                url,
            )
        ]
    if host_problem(host) is not None:
        return [
            ValidationIssue(
                path, "must be publicly reachable (Vidgo refuses private and internal hosts)", url
            )
        ]
    return []
