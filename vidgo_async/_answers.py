"""What one API answer says: the ``{code, data}`` envelope's data, or the error it means.

The transport (``_http``) reads an answer off the wire into a :class:`RawAnswer`;
:func:`interpret` is the one place that decides what it means: a redirect (never
followed), an HTTP or envelope error status mapped to the error tree (from any error body:
unified, FastAPI ``detail``, plain text or an HTML proxy page), a body too large or not a
JSON object, or the envelope's ``data`` as a :class:`Response`. Models never see the
envelope.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from ._errors import (
    APIResponseValidationError,
    APIStatusError,
    RateLimitError,
    status_error_class,
)

__all__ = ["AnswerMemo", "RawAnswer", "Response", "decode", "error_for", "interpret", "snippet"]

T = TypeVar("T")

# json.loads(text) is this scanner at index 0 plus whitespace and trailing-data checks.
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_SNIPPET_LENGTH = 200


class Response:
    """One decoded answer: the envelope's ``data``, the HTTP status and the headers.

    ``headers`` are matched case-insensitively; ``retry_after`` is the server's
    ``Retry-After`` (or ``retry-after-ms``) in seconds, when it sent a usable one.
    A plain slotted class, built on every request (no frozen attrs ``__init__``); read it,
    never change it.
    """

    __slots__ = ("data", "headers", "retry_after", "status")

    def __init__(
        self,
        status: int,
        data: Any,
        headers: Mapping[str, str],
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.data = data
        self.headers = headers
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"Response(status={self.status!r}, data={self.data!r}, retry_after={self.retry_after!r})"


class AnswerMemo(Generic[T]):
    """The last answer of one repeated query and what its reader made of it.

    See ``_http.Transport.send_once_memo``: an answer byte-identical to this one (same HTTP
    status, body and poll hint) is not decoded, checked or read again.
    """

    __slots__ = ("body", "retry_after", "status", "value")

    def __init__(self) -> None:
        self.body: bytes | None = None
        self.status = 0
        self.retry_after: float | None = None
        self.value: T | None = None


class RawAnswer:
    """One answer as read off the wire (a plain slotted class: built on every request)."""

    __slots__ = ("body", "headers", "method", "reason", "retry_after", "status", "truncated", "url")

    def __init__(
        self,
        status: int,
        reason: str,
        body: bytes,
        truncated: bool,
        headers: Mapping[str, str],
        method: str,
        url: str,
        retry_after: float | None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        self.truncated = truncated
        self.headers = headers
        self.method = method
        self.url = url
        self.retry_after = retry_after


def _html_title(text: str) -> str | None:
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    return " ".join(match.group(1).split()) if match else None


def snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_LENGTH else flat[: _SNIPPET_LENGTH - 3] + "..."


def _detail_message(detail: object) -> str | None:
    """Render a FastAPI ``detail`` (a string or a list of ``{loc, msg}``) as one line."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail[:10]:
            if isinstance(item, Mapping):
                loc = item.get("loc")
                where = ".".join(str(p) for p in loc) if isinstance(loc, list) else None
                msg = str(item.get("msg", item))
                parts.append(f"{where}: {msg}" if where else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts) or None
    return None


def _describe_error_body(body: object, text: str, reason: str) -> tuple[str, str | None]:
    """Return (message, error type) from any error body: unified, FastAPI, plain or HTML."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            message = error.get("message")
            error_type = error.get("type")
            return (
                str(message) if message is not None else reason,
                error_type if isinstance(error_type, str) else None,
            )
        if isinstance(error, str):
            return error, None
        detail = _detail_message(body.get("detail"))
        if detail:
            return detail, None
        for key in ("message", "msg"):
            if isinstance(body.get(key), str):
                return str(body[key]), None
        return reason, None
    if text.strip():
        title = _html_title(text)
        shown = title if title else snippet(text)
        return f"{reason} (non-JSON answer: {shown})", None
    return reason, None


def decode(raw: bytes) -> tuple[object, str]:
    """Return (parsed JSON or None, text); ``None`` also when the body is not JSON.

    JSON nested deeper than Python's parser goes (``RecursionError``, a body of a few kB)
    is not readable JSON either: an unreadable answer, never an error outside the tree.
    """
    text = raw.decode("utf-8", errors="replace")
    try:
        # The usual body is one JSON value from its first to its last character: the C
        # scanner alone reads it, without json.loads' layers. Anything else (whitespace
        # around it, trailing data, no JSON at all) goes through json.loads, which decides.
        value, end = _scan_json(text, 0)
        if end == len(text):
            return value, text
    except (StopIteration, ValueError):
        pass
    except RecursionError:
        return None, text
    try:
        # An empty or blank body is not JSON either: json.loads raises for it.
        return json.loads(text), text
    except (ValueError, RecursionError):
        return None, text


def _as_status_code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def error_for(
    status: int,
    body: object,
    text: str,
    raw: RawAnswer,
    retry_after: float | None,
) -> APIStatusError:
    reason = raw.reason or f"HTTP {status}"
    message, error_type = _describe_error_body(body, text, reason)
    shown_body: object = body if body is not None else snippet(text)
    request_id = raw.headers.get("x-request-id") or raw.headers.get("request-id")
    cls = status_error_class(status)
    fields: dict[str, Any] = {
        "status_code": status,
        "error_type": error_type,
        "body": shown_body,
        "method": raw.method,
        "url": raw.url,
        "request_id": request_id,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **fields)
    return cls(message, **fields)


def interpret(raw: RawAnswer, base_url: str, max_json_bytes: int) -> Response:
    """Unwrap the ``{code, data}`` envelope of an answer or raise the error it means.

    ``base_url`` and ``max_json_bytes`` are the transport's, named in the messages.
    """
    retry_after = raw.retry_after
    if 300 <= raw.status < 400:
        location = raw.headers.get("Location") or raw.headers.get("location") or "?"
        raise APIStatusError(
            f"The API answered with a redirect to {snippet(location)!r}, which was not "
            "followed: API calls never follow redirects, so the key never leaves "
            f"{base_url}. HINT: check base_url.",
            status_code=raw.status,
            method=raw.method,
            url=raw.url,
        )
    if raw.status >= 400 or raw.status < 200:
        body, text = (None, "") if raw.truncated else decode(raw.body)
        raise error_for(raw.status, body, text, raw, retry_after)
    if raw.truncated:
        raise APIResponseValidationError(
            f"The API answer is larger than {max_json_bytes} bytes; it was not read.",
            method=raw.method,
            url=raw.url,
        )
    body, text = decode(raw.body)
    if type(body) is not dict and not isinstance(body, Mapping):
        raise APIResponseValidationError(
            f"The API answered HTTP {raw.status} with a body that is not a JSON object: "
            f"{snippet(text)!r}",
            body=body if body is not None else snippet(text),
            method=raw.method,
            url=raw.url,
        )
    code = body.get("code")
    if type(code) is not int:
        code = _as_status_code(code)
    if code is not None and code >= 400:
        raise error_for(code, body, text, raw, retry_after)
    if "data" in body:
        return Response(raw.status, body["data"], raw.headers, retry_after)
    if "code" in body:
        raise APIResponseValidationError(
            "The API answer has a code but no data.", body=body, method=raw.method, url=raw.url
        )
    # Tolerate an unwrapped object (the platform's docs show both shapes).
    return Response(raw.status, body, raw.headers, retry_after)
