"""HMAC signatures of callbacks: sign (the emulator) and check (the receiver).

The scheme is the one PoYo, the same platform's other brand, documents (``[P]``: Vidgo
itself documents no signature yet, see ``vidgo-docs/_poyo/webhooks.mdx``)::

    X-Webhook-Timestamp: <unix seconds>
    X-Webhook-Signature: base64(HMAC-SHA256(task_id + "." + timestamp, key))

accepted within 300 seconds of the receiver's clock, in both directions. The signature
covers the task id and the time only, never the body: a signed request says "the platform
called about this task recently", not what happened to it. That is why the receiver still
re-fetches the task with an authenticated status request; a signature never replaces it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

import attrs

from ._errors import CallbackSignatureError

__all__ = [
    "DEFAULT_SIGNATURE_WINDOW",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "CallbackSigning",
    "sign_callback",
]

SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
DEFAULT_SIGNATURE_WINDOW = 300.0  # seconds, as documented ([P])
# A base64 SHA-256 digest is 44 characters; a Unix time fits in 20 digits. Anything
# longer is refused before any work is done on it.
_MAX_SIGNATURE_CHARS = 128
_MAX_TIMESTAMP_CHARS = 20


def _key_bytes(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode("utf-8")


def sign_callback(task_id: str, timestamp: int | str, key: str | bytes) -> str:
    """Return ``base64(HMAC-SHA256(task_id + "." + timestamp, key))``."""
    message = f"{task_id}.{timestamp}".encode()
    digest = hmac.new(_key_bytes(key), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Return a header whatever its case (aiohttp's headers already ignore it)."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def _keys_converter(value: str | bytes | tuple[str | bytes, ...]) -> tuple[bytes, ...]:
    keys = (value,) if isinstance(value, (str, bytes)) else tuple(value)
    if not keys or not all(keys):
        raise ValueError("signing_key must be a non-empty key or a non-empty list of them")
    return tuple(_key_bytes(key) for key in keys)


@attrs.frozen(kw_only=True)
class CallbackSigning:
    """Check the HMAC signature of callbacks ([P]); give it the keys you trust.

    Args:
        keys: the webhook HMAC key, or several while rotating (current and previous).
        window: seconds the timestamp may differ from ``clock()``, either way.
        clock: the wall clock in Unix seconds (injectable for tests).
    """

    keys: tuple[bytes, ...] = attrs.field(converter=_keys_converter, repr=False)
    window: float = DEFAULT_SIGNATURE_WINDOW
    clock: Callable[[], float] = time.time

    def check(self, task_id: str, headers: Mapping[str, str]) -> None:
        """Accept a request for ``task_id`` carrying ``headers``, or raise.

        Raises:
            CallbackSignatureError: a header is missing or malformed, the timestamp is
                outside the window, or no trusted key gives the signature. Nothing else
                escapes, whatever the headers hold.
        """
        timestamp = _header(headers, TIMESTAMP_HEADER)
        signature = _header(headers, SIGNATURE_HEADER)
        if not timestamp or not signature:
            raise CallbackSignatureError(
                f"the callback is not signed: {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are "
                "required when the receiver has a signing key"
            )
        if (
            len(timestamp) > _MAX_TIMESTAMP_CHARS
            or not timestamp.isascii()
            or not timestamp.isdigit()
        ):
            raise CallbackSignatureError(
                f"the callback's {TIMESTAMP_HEADER} must be Unix seconds (ASCII digits)"
            )
        # Whole seconds on both sides, as the documented reference does: a fractional clock
        # would refuse a timestamp 300 s old mid-second and accept one 300 s ahead.
        skew = abs(int(self.clock()) - int(timestamp))
        if skew > self.window:
            raise CallbackSignatureError(
                f"the callback's {TIMESTAMP_HEADER} is {skew:.0f} s away from this clock, "
                f"more than the {self.window:.0f} s allowed (a replay, or a clock to fix)"
            )
        if len(signature) > _MAX_SIGNATURE_CHARS or not signature.isascii():
            raise CallbackSignatureError(f"the callback's {SIGNATURE_HEADER} is not base64")
        received = signature.strip().encode("ascii")
        matched = False
        for key in self.keys:
            # Every key is tried, so the time taken does not say which one matched.
            expected = sign_callback(task_id, timestamp, key).encode("ascii")
            matched |= hmac.compare_digest(expected, received)
        if not matched:
            raise CallbackSignatureError(
                f"the callback's {SIGNATURE_HEADER} does not match any signing key"
            )
