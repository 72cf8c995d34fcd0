"""Per-job callback tokens: issue them, build their URLs, find the job again.

A token is a capability: whoever knows it may poke its job (and nothing else), so it is
long and random, compared without leaking timing, and never logged or stored in clear:
the table, the journal and every record kept past a request hold its SHA-256 only.

Because Vidgo does not retry a 4xx, a token whose job has ended is *retired*, not
dropped: its hash stays known (with the task it was bound to) long enough to cover the
whole documented retry schedule, so a late duplicate is answered 2xx without any work.
Retired hashes are bounded by age and by count, oldest first.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import attrs

from ._callbacks import Subscriber
from ._config import to_seconds
from ._errors import InputValidationError, UnknownCallbackTokenError, ValidationIssue
from ._rules import check_callback_url

__all__ = [
    "DEFAULT_TOKEN_TTL",
    "MAX_RETIRED_TOKENS",
    "RETIRED_TOKEN_TTL",
    "TOKEN_BYTES",
    "CallbackRegistry",
    "CallbackToken",
    "token_hash",
]

# Longer than any sensible wait (30 min default) plus Vidgo's retries.
DEFAULT_TOKEN_TTL = 24 * 3600.0
# Vidgo retries a delivery up to 5 times, at most 10 minutes apart, each attempt given
# 30 s: 5 x 600 + 6 x 30 = 3180 s at worst. An hour covers the whole schedule.
RETIRED_TOKEN_TTL = 3600.0
# A retired token costs ~200 bytes (hash, task id, time): 100 000 of them ~20 MB at most.
MAX_RETIRED_TOKENS = 100_000
TOKEN_BYTES = 32  # 256 bits from secrets.token_urlsafe; the rules ask for at least 128
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")
_HASH_RE = re.compile(r"[0-9a-f]{64}")


def token_hash(token: str) -> str:
    """Return the SHA-256 of a callback token (hex): what is stored instead of the token."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@attrs.frozen(kw_only=True)
class CallbackToken:
    """What the registry knows of one token, as of the lookup (a snapshot, not a handle).

    Attributes:
        key: the token's SHA-256 (hex), its identity everywhere the token is not at hand.
        job_ref: what the token was issued for (``None`` once retired).
        task_id: the task the job is bound to, ``None`` while unknown.
        subscriber: who is told about verified callbacks (``None`` once retired).
        ended: the token is retired: its job ended, or it expired or was forgotten.
    """

    key: str
    job_ref: object
    task_id: str | None
    subscriber: Subscriber | None = attrs.field(repr=False)
    ended: bool = False


@attrs.define(eq=False)
class _Live:
    job_ref: object
    task_id: str | None
    subscriber: Subscriber | None
    expires_at: float | None


class CallbackRegistry:
    """Issue one unguessable callback token per job and find the job again from it.

    Tokens are ``secrets.token_urlsafe(32)`` (256 bits). The table is keyed by the SHA-256
    of each token, so a lookup compares digests, never the secret itself, its timing says
    nothing about valid tokens, and a later run can recognise a token it only has the hash
    of (:meth:`register_hash`). The registry also knows which task each token is bound to,
    so no callback can bind a task that already belongs to another job.

    Args:
        base_url: where callbacks arrive; each job's URL is ``base_url/<token>`` (the base's
            path is kept). Public HTTPS, or loopback for testing; at most 2048 characters
            with the token. May be left out and set later with :meth:`set_base_url`.
        ttl: seconds (or a timedelta) a token stays live; ``None`` keeps tokens until
            :meth:`forget`.
        retired_ttl: seconds a retired token's hash is kept (late duplicates get 2xx).
        max_retired: retired hashes kept at most (the oldest go first).
        allow_insecure_callbacks: accept a plain ``http`` base URL on a public host. The
            token travels in the URL, so anyone who can read the traffic can replay it
            (the re-fetch keeps a replay from changing an outcome, but not from poking).
        clock: the monotonic clock used for expiry (injectable for tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        ttl: float | timedelta | None = DEFAULT_TOKEN_TTL,
        retired_ttl: float | timedelta = RETIRED_TOKEN_TTL,
        max_retired: int = MAX_RETIRED_TOKENS,
        allow_insecure_callbacks: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url: str | None = None
        self._base_path = ""
        self._ttl = None if ttl is None else to_seconds(ttl)
        if self._ttl is not None and not self._ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds or None (got {ttl!r})")
        self._retired_ttl = to_seconds(retired_ttl)
        if max_retired < 0 or self._retired_ttl < 0:
            raise ValueError("retired_ttl and max_retired must be >= 0")
        self._max_retired = max_retired
        self._allow_insecure = allow_insecure_callbacks
        self._clock = clock
        self._live: dict[str, _Live] = {}
        self._retired: OrderedDict[str, tuple[str | None, float]] = OrderedDict()
        self._owners: dict[str, str] = {}  # task_id -> key of the live or retired token
        self._listeners: list[Callable[[str], None]] = []
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
            InputValidationError: not http(s), plain http on a public host without
                ``allow_insecure_callbacks``, private, carrying a query or fragment, or
                too long for a token.
        """
        where = "$.callback_base_url"
        issues = check_callback_url(base_url, path=where, allow_insecure=self._allow_insecure)
        parts = urlsplit(base_url) if not issues else None
        if parts is not None and (
            parts.query or parts.fragment or parts.username or parts.password
        ):
            rule = "must not carry a query, fragment or credentials (the token is appended to its path)"
            issues = [ValidationIssue(where, rule, base_url)]
        if issues or parts is None:
            raise InputValidationError(issues)
        path = parts.path.rstrip("/")
        normalized = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        sample = f"{normalized}/{'x' * 43}"
        if check_callback_url(sample, path=where, allow_insecure=self._allow_insecure):
            rule = "must leave room for the 44-character token within Vidgo's 2048-character limit"
            raise InputValidationError([ValidationIssue(where, rule, base_url)])
        if self._base_url is not None and self._base_url != normalized and self._live:
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
            job_ref: anything identifying the job; handed back in ``VerifiedCallback``.
            task_id: the job's task id when already known; leave ``None`` before the submit
                (a callback may then reveal it: see ``VerifiedCallback.adopted``).
            subscriber: called with each verified callback (sync or async).
        """
        token = secrets.token_urlsafe(TOKEN_BYTES)
        self.register_hash(token_hash(token), job_ref, task_id=task_id, subscriber=subscriber)
        return token

    def register_hash(
        self,
        key: str,
        job_ref: object = None,
        *,
        task_id: str | None = None,
        subscriber: Subscriber | None = None,
    ) -> None:
        """Know a token by its hash (:func:`token_hash`), e.g. one an earlier run issued.

        A rerun re-registers the hashes its journal holds, so callbacks to URLs the earlier
        run handed out still find their job (and can still reveal an unknown submit's task).

        Raises:
            ValueError: ``key`` is not a SHA-256 hex digest, or ``task_id`` already belongs
                to another token.
        """
        if not _HASH_RE.fullmatch(key):
            raise ValueError("a callback token hash is 64 lowercase hex digits (token_hash)")
        self._sweep()
        if task_id is not None and self._owners.get(task_id, key) != key:
            raise ValueError(f"task {task_id} is already bound to another callback token")
        self._retired.pop(key, None)
        expires_at = None if self._ttl is None else self._clock() + self._ttl
        self._live[key] = _Live(job_ref, task_id, subscriber, expires_at)
        if task_id is not None:
            self._owners[task_id] = key

    def url_for(self, token: str) -> str:
        """Return the callback URL of ``token`` (``base_url/<token>``)."""
        if self._base_url is None:
            raise RuntimeError(
                "no callback base URL yet: pass base_url= or start the receiver's server first"
            )
        self._require(token)
        return f"{self._base_url}/{token}"

    def set_task_id(self, token: str, task_id: str) -> None:
        """Record the task id a token's job got from its submit (the submit's answer wins).

        Raises:
            ValueError: ``task_id`` is already bound to another token.
        """
        key = token_hash(self._checked(token))
        owner = self._owners.get(task_id, key)
        if owner != key:
            raise ValueError(f"task {task_id} is already bound to another callback token")
        live = self._live[key]
        if live.task_id is not None and self._owners.get(live.task_id) == key:
            del self._owners[live.task_id]
        live.task_id = task_id
        self._owners[task_id] = key

    def bind(self, key: str, task_id: str) -> bool:
        """Bind a live token (by hash) to ``task_id``; ``False`` if another token owns it.

        This is the adoption guard: a task id is never bound to two jobs.
        """
        live = self._live.get(key)
        if live is None:
            raise UnknownCallbackTokenError("this callback token is unknown, forgotten or expired")
        if self._owners.get(task_id, key) != key or live.task_id not in (None, task_id):
            return False
        live.task_id = task_id
        self._owners[task_id] = key
        return True

    def renew(self, token: str) -> bool:
        """Give a live token a full time to live from now; return whether it was live.

        A job's token is issued when the job is built, but what it must outlive starts
        at the submit: renewing it then keeps a long wait in the queue from expiring it.
        """
        found = self.find(token)
        if found is None or found.ended:
            return False
        self._live[found.key].expires_at = None if self._ttl is None else self._clock() + self._ttl
        return True

    def task_id(self, token: str) -> str | None:
        """Return the task id known for a token's job (``None`` while unknown)."""
        return self._require(token).task_id

    def owner_of(self, task_id: str) -> str | None:
        """Return the hash of the (live or retired) token bound to ``task_id``, if any."""
        return self._owners.get(task_id)

    def subscribe(self, token: str, subscriber: Subscriber | None) -> None:
        """Set (or clear, with ``None``) who is told about the token's verified callbacks."""
        self._require(token).subscriber = subscriber

    def forget(self, token: str) -> bool:
        """Retire a token: later deliveries to it are answered 2xx and change nothing.

        Its hash is kept for ``retired_ttl`` (late duplicates of an ended job must not get
        a 4xx, which Vidgo never retries but records). Returns whether it was live.
        """
        return _TOKEN_RE.fullmatch(token) is not None and self.retire(token_hash(token))

    def retire(self, key: str) -> bool:
        """Retire a token by its hash (see :meth:`forget`); return whether it was live."""
        live = self._live.pop(key, None)
        if live is None:
            return False
        self._retired[key] = (live.task_id, self._clock())
        self._retired.move_to_end(key)
        self._trim_retired()
        for listener in list(self._listeners):
            listener(key)
        return True

    def add_retire_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(key)`` whenever a live token is retired (forgotten or expired)."""
        self._listeners.append(listener)

    def expire(self) -> int:
        """Retire every token past its time to live; return how many were retired."""
        now = self._clock()
        stale = [
            key
            for key, live in self._live.items()
            if live.expires_at is not None and live.expires_at <= now
        ]
        for key in stale:
            self.retire(key)
        self._trim_retired()
        return len(stale)

    def find(self, token: str) -> CallbackToken | None:
        """Return what is known of ``token`` (live or retired), or ``None``.

        Junk of the wrong shape is refused before any hashing.
        """
        if not _TOKEN_RE.fullmatch(token):
            return None
        return self.find_hash(token_hash(token))

    def find_hash(self, key: str) -> CallbackToken | None:
        """Return what is known of the token with hash ``key`` (live or retired), or ``None``."""
        live = self._live.get(key)
        if live is not None and live.expires_at is not None and live.expires_at <= self._clock():
            self.retire(key)
            live = None
        if live is not None:
            return CallbackToken(
                key=key, job_ref=live.job_ref, task_id=live.task_id, subscriber=live.subscriber
            )
        retired = self._retired.get(key)
        if retired is None or self._clock() - retired[1] > self._retired_ttl:
            return None
        return CallbackToken(key=key, job_ref=None, task_id=retired[0], subscriber=None, ended=True)

    def __len__(self) -> int:
        return len(self._live)

    @property
    def retired_count(self) -> int:
        """How many retired token hashes are kept now."""
        return len(self._retired)

    def __contains__(self, token: object) -> bool:
        if not isinstance(token, str):
            return False
        found = self.find(token)
        return found is not None and not found.ended

    def __repr__(self) -> str:
        return f"CallbackRegistry(base_url={self._base_url!r}, tokens={len(self._live)})"

    def token_from_path(self, path_or_token: str) -> str:
        """Return the token of a request path (its last segment) or of a bare token."""
        path = path_or_token.split("?", 1)[0].rstrip("/")
        return path.rsplit("/", 1)[-1]

    def _checked(self, token: str) -> str:
        found = self.find(token)
        if found is None or found.ended:
            raise UnknownCallbackTokenError("this callback token is unknown, forgotten or expired")
        return token

    def _require(self, token: str) -> _Live:
        return self._live[token_hash(self._checked(token))]

    def _trim_retired(self) -> None:
        """Drop retired hashes past their age, and the oldest beyond the count limit."""
        horizon = self._clock() - self._retired_ttl
        retired = self._retired
        while retired and (
            len(retired) > self._max_retired or next(iter(retired.values()))[1] < horizon
        ):
            key, (task_id, _) = retired.popitem(last=False)
            if task_id is not None and self._owners.get(task_id) == key:
                del self._owners[task_id]

    def _sweep(self) -> None:
        """Expire stale tokens now and then, so an unattended registry does not grow."""
        now = self._clock()
        if now >= self._next_sweep:
            period = self._ttl if self._ttl is not None else self._retired_ttl
            self._next_sweep = now + max(period, 1.0) / 10
            self.expire()
