"""The retry rules: what may be sent again, after how long, and what a lost submit becomes.

A GET is repeated on connection errors, timeouts and the retryable statuses. A submit
(``idempotent=False``) costs money and the API has no idempotency key, so it is repeated
only when it provably created nothing (the connection could not be opened, or a 429); any
other failure after the request may have reached the server becomes
``SubmitOutcomeUnknownError`` (:func:`outcome_unknown`) unless
``RetryPolicy.retry_ambiguous_submits``. Every retry spends tokens from the client's
:class:`RetryBudget`, so a hard outage does not turn into a retry storm. The transport
(``_http``) asks these functions; nothing else decides.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import attrs

from ._backoff import full_jitter
from ._config import RetryPolicy
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    RateLimitError,
    ServerError,
    SubmitOutcomeUnknownError,
)

__all__ = ["RetryBudget", "may_have_created", "outcome_unknown", "retry_delay", "retryable"]

logger = logging.getLogger("vidgo_async")

# A Retry-After slept through gets up to this fraction on top, so that clients told the
# same value do not all come back in the same millisecond.
_RETRY_AFTER_SPREAD = 0.1


@attrs.define
class RetryBudget:
    """A token bucket shared by every retry of one client (after botocore).

    Each retry costs ``retry_cost`` tokens (``timeout_cost`` after a timeout) and each
    request that succeeds on its first try gives ``success_refund`` back. An empty bucket
    means "stop retrying": during an outage the client fails fast instead of multiplying
    its load on the server.
    """

    capacity: int = 500
    retry_cost: int = 5
    timeout_cost: int = 10
    success_refund: int = 1
    tokens: int = attrs.field(default=-1)

    def __attrs_post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    @property
    def exhausted(self) -> bool:
        """Whether the bucket can no longer pay for an ordinary retry."""
        return self.tokens < self.retry_cost

    def try_acquire(self, *, timeout: bool = False) -> bool:
        """Take the cost of one retry; ``False`` (and nothing taken) when the bucket is too low."""
        cost = self.timeout_cost if timeout else self.retry_cost
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def record_success(self) -> None:
        """Refund a token for a request that succeeded on its first try."""
        self.tokens = min(self.capacity, self.tokens + self.success_refund)


def retryable(exc: APIError, *, idempotent: bool, policy: RetryPolicy) -> bool:
    """Whether ``exc`` may be followed by another attempt of the same request."""
    if isinstance(exc, APIConnectionError):
        return idempotent or not exc.request_sent or policy.retry_ambiguous_submits
    if isinstance(exc, APIStatusError) and exc.status_code in policy.retry_statuses:
        if idempotent or isinstance(exc, RateLimitError):
            return True
        return policy.retry_ambiguous_submits
    return False


def may_have_created(exc: APIError) -> bool:
    """Whether a failed submit may have created a task (sent, then no readable answer)."""
    if isinstance(exc, APIConnectionError):
        return exc.request_sent
    return isinstance(exc, ServerError)


def retry_delay(
    exc: APIError,
    attempt: int,
    retry_after: float | None,
    *,
    idempotent: bool,
    policy: RetryPolicy,
    budget: RetryBudget,
    rng: random.Random,
) -> float | None:
    """Return the wait before attempt ``attempt + 1``, or ``None`` when not retrying.

    A retry is paid from ``budget``; the server's ``retry_after`` is honoured up to
    ``policy.max_retry_after`` (above it: no retry), otherwise full-jitter backoff.
    """
    if attempt >= policy.max_attempts:
        return None
    if not retryable(exc, idempotent=idempotent, policy=policy):
        return None
    if retry_after is not None and retry_after > policy.max_retry_after:
        return None
    if not budget.try_acquire(timeout=isinstance(exc, APITimeoutError)):
        logger.warning("vidgo retry budget exhausted: not retrying %s %s", exc.method, exc.url)
        return None
    if retry_after is not None:
        return retry_after * (1.0 + _RETRY_AFTER_SPREAD * rng.random())
    return full_jitter(attempt, base=policy.initial_delay, cap=policy.max_delay, rng=rng)


def outcome_unknown(
    json_body: Mapping[str, Any] | None, cause: BaseException
) -> SubmitOutcomeUnknownError:
    """The error of a request that may have created something (its body as the payload)."""
    payload = dict(json_body or {})
    return SubmitOutcomeUnknownError(str(payload.get("model", "?")), payload, cause)
