"""Per-job callback tokens: issue them, build their URLs, find the job again.

A token is a capability: whoever knows it may poke its job (and nothing else), so it is
long and random, compared without leaking timing, and never logged.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import attrs

from ._callbacks import Subscriber, VerifiedCallback
from ._config import to_seconds
from ._errors import InputValidationError, UnknownCallbackTokenError, ValidationIssue
from ._rules import check_callback_url

__all__ = ["DEFAULT_TOKEN_TTL", "TOKEN_BYTES", "CallbackRegistry"]

# Longer than any sensible wait (30 min default) plus Vidgo's retries; forgotten tokens
# answer 404, which only costs Vidgo its three retries.
DEFAULT_TOKEN_TTL = 24 * 3600.0
TOKEN_BYTES = 32  # 256 bits from secrets.token_urlsafe; the rules ask for at least 128
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


@attrs.define(eq=False)
class _Entry:
    """The registry's record of one token (mutable; owned by the event loop)."""

    token: str = attrs.field(repr=False)
    job_ref: object
    task_id: str | None
    subscriber: Subscriber | None
    expires_at: float | None
    done: bool = False
    result: VerifiedCallback | None = None
    pending: set[tuple[str, str]] = attrs.Factory(set)
    verifications: int = 0
    waiters: list[Any] = attrs.Factory(list)  # anyio.Event objects of wait() calls


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("ascii")).digest()


class CallbackRegistry:
    """Issue one unguessable callback token per job and find the job again from it.

    Tokens are ``secrets.token_urlsafe(32)`` (256 bits). The table is keyed by the SHA-256
    of each token, so a lookup compares digests, never the secret itself, and its timing
    says nothing about valid tokens.

    Args:
        base_url: where callbacks arrive; each job's URL is ``base_url/<token>`` (the base's
            path is kept). Public HTTPS, or loopback for testing; at most 2048 characters
            with the token. May be left out and set later with :meth:`set_base_url`.
        ttl: seconds (or a timedelta) a token stays valid; ``None`` keeps tokens until
            :meth:`forget`.
        clock: the monotonic clock used for expiry (injectable for tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        ttl: float | timedelta | None = DEFAULT_TOKEN_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url: str | None = None
        self._base_path = ""
        self._ttl = None if ttl is None else to_seconds(ttl)
        if self._ttl is not None and not self._ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds or None (got {ttl!r})")
        self._clock = clock
        self._entries: dict[bytes, _Entry] = {}
        self._next_sweep = 0.0
        if base_url is not None:
            self.set_base_url(base_url)

    @property
    def base_url(self) -> str | None:
        """The callback base URL (without a trailing slash), or ``None`` when not set yet."""
        return self._base_url

    @property
    def base_path(self) -> str:
        """The path of the base URL without a trailing slash (``""`` for the root)."""
        return self._base_path

    def set_base_url(self, base_url: str) -> None:
        """Set where callbacks arrive, after checking it against Vidgo's rules.

        Raises:
            InputValidationError: not http(s), not HTTPS on a public host (loopback
                excepted), private, carrying a query or fragment, or too long for a token.
        """
        issues = check_callback_url(base_url, path="$.callback_base_url")
        if not issues:
            parts = urlsplit(base_url)
            if parts.query or parts.fragment or parts.username or parts.password:
                issues = [
                    ValidationIssue(
                        "$.callback_base_url",
                        "must not carry a query, fragment or credentials "
                        "(the token is appended to its path)",
                        base_url,
                    )
                ]
        if issues:
            raise InputValidationError(issues)
        parts = urlsplit(base_url)
        path = parts.path.rstrip("/")
        normalized = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        sample = f"{normalized}/{'x' * 43}"
        issues = check_callback_url(sample, path="$.callback_base_url")
        if issues:
            raise InputValidationError(
                [
                    ValidationIssue(
                        "$.callback_base_url",
                        "must leave room for the 44-character token within Vidgo's "
                        "2048-character limit",
                        base_url,
                    )
                ]
            )
        if self._base_url is not None and self._base_url != normalized and self._entries:
            raise RuntimeError(
                "the callback base URL cannot change after tokens were issued "
                f"(it is {self._base_url!r})"
            )
        self._base_url = normalized
        self._base_path = path

    def new_token(
        self,
        job_ref: object = None,
        *,
        task_id: str | None = None,
        subscriber: Subscriber | None = None,
    ) -> str:
        """Issue a fresh token for one job and return it.

        Args:
            job_ref: anything identifying the job; handed back in :class:`VerifiedCallback`.
            task_id: the job's task id when already known; leave ``None`` before the submit
                (a callback may then reveal it: see ``VerifiedCallback.adopted``).
            subscriber: called with each verified callback (sync or async).
        """
        self._sweep()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        expires_at = None if self._ttl is None else self._clock() + self._ttl
        self._entries[_digest(token)] = _Entry(
            token=token,
            job_ref=job_ref,
            task_id=task_id,
            subscriber=subscriber,
            expires_at=expires_at,
        )
        return token

    def url_for(self, token: str) -> str:
        """Return the callback URL of ``token`` (``base_url/<token>``)."""
        if self._base_url is None:
            raise RuntimeError(
                "no callback base URL yet: pass base_url= or start the receiver's server first"
            )
        self._require(token)
        return f"{self._base_url}/{token}"

    def set_task_id(self, token: str, task_id: str) -> None:
        """Record the task id a token's job got from its submit."""
        self._require(token).task_id = task_id

    def task_id(self, token: str) -> str | None:
        """Return the task id known for a token's job (``None`` while unknown)."""
        return self._require(token).task_id

    def subscribe(self, token: str, subscriber: Subscriber | None) -> None:
        """Set (or clear, with ``None``) who is told about the token's verified callbacks."""
        self._require(token).subscriber = subscriber

    def forget(self, token: str) -> bool:
        """Drop a token; later deliveries to it get 404. Return whether it was known."""
        entry = self._entries.pop(_digest(token), None) if _TOKEN_RE.fullmatch(token) else None
        if entry is not None:
            for waiter in entry.waiters:
                waiter.set()
        return entry is not None

    def expire(self) -> int:
        """Drop every token past its time to live; return how many were dropped."""
        now = self._clock()
        stale = [
            key
            for key, entry in self._entries.items()
            if entry.expires_at is not None and entry.expires_at <= now
        ]
        for key in stale:
            entry = self._entries.pop(key)
            for waiter in entry.waiters:
                waiter.set()
        return len(stale)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self._lookup(token) is not None

    def __repr__(self) -> str:
        return f"CallbackRegistry(base_url={self._base_url!r}, tokens={len(self._entries)})"

    def token_from_path(self, path_or_token: str) -> str:
        """Return the token of a request path (its last segment) or of a bare token."""
        path = path_or_token.split("?", 1)[0].rstrip("/")
        return path.rsplit("/", 1)[-1]

    def _lookup(self, token: str) -> _Entry | None:
        """Find a live entry; junk of the wrong shape is refused before any hashing."""
        if not _TOKEN_RE.fullmatch(token):
            return None
        entry = self._entries.get(_digest(token))
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= self._clock():
            self.forget(token)
            return None
        return entry

    def _require(self, token: str) -> _Entry:
        entry = self._lookup(token)
        if entry is None:
            raise UnknownCallbackTokenError("this callback token is unknown, forgotten or expired")
        return entry

    def _sweep(self) -> None:
        """Expire stale tokens now and then, so an unattended registry does not grow."""
        if self._ttl is None:
            return
        now = self._clock()
        if now >= self._next_sweep:
            self._next_sweep = now + self._ttl / 10
            self.expire()
