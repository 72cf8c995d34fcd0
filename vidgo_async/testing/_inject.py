"""Put each fault kind on the wire: error codes, hang-ups, stalls, drips, resets, huge bodies."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import socket
import struct
import time
from typing import Any

from aiohttp import web

from ._faults import Fault

__all__ = ["ERROR_TYPES", "FaultInjector", "error_body"]

# HTTP status -> error.type, from the platform's error-code table ([P]; 401 is [I]).
ERROR_TYPES = {
    400: "validation_error",
    401: "authentication_error",
    402: "insufficient_credits_error",
    403: "permission_denied_error",
    404: "resource_not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "content_too_long_error",
    422: "validation_error",
    429: "rate_limit_error",
    500: "internal_error",
    502: "upstream_error",
    503: "service_error",
    504: "timeout_error",
}
JSON_TYPE = "application/json"
_STALL_SECONDS = 3600.0
_OVERSIZED_BYTES = 2 * 1024 * 1024 + 1
_WRITE_CHUNK = 64 * 1024


def error_body(code: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    """Return the documented error body ``{code, error: {message, type}}``."""
    return {
        "code": code,
        "error": {"message": message, "type": error_type or ERROR_TYPES.get(code, "api_error")},
    }


class FaultInjector:
    """Answer requests as a fault says; ``closing`` ends stalls and endless bodies at shutdown."""

    def __init__(self) -> None:
        self.closing = asyncio.Event()

    async def inject(
        self,
        request: web.Request,
        fault: Fault,
        status: int,
        payload: dict[str, Any] | bytes,
        *,
        content_type: str = JSON_TYPE,
    ) -> web.StreamResponse:
        """Answer ``request`` as ``fault`` says, given the answer it would otherwise get."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        code = fault.http_status
        if code is not None:
            return self._error_response(fault, code)
        kind = fault.kind
        if kind == "word" and isinstance(payload, dict) and isinstance(payload.get("data"), dict):
            # The task as it is, under a status word of the fault's choosing.
            data = {**payload["data"], "status": fault.word if fault.word is not None else ""}
            return web.json_response({**payload, "data": data}, status=status)
        if kind == "code_in_body":
            code = fault.status or 500
            message = fault.message or "Injected error under HTTP 200"
            return web.json_response(error_body(code, message), status=200)
        if kind == "malformed":
            return web.Response(
                body=b'{"code": 200, "data": {"task_id": "tas', status=200, content_type=JSON_TYPE
            )
        if kind == "drop":
            self._abort(request, reset=False)
            return web.Response()
        if kind == "stall":
            await self._wait_or_close(_STALL_SECONDS if fault.seconds is None else fault.seconds)
            self._abort(request, reset=False)
            return web.Response()
        if kind == "slow":
            await self._wait_or_close(fault.seconds or 0.0)
            return web.Response(body=body, status=status, content_type=content_type)
        if kind == "reset":
            return await self._reset(request, status, body, content_type, fault.bytes or 0)
        if kind == "drip":
            return await self._drip(request, status, body, content_type, fault)
        # oversized
        return await self._oversized(request, body, content_type, fault)

    def _error_response(self, fault: Fault, code: int) -> web.Response:
        headers: dict[str, str] = {}
        if code < 400:
            # A redirect: what a misconfigured proxy or a moved API would send.
            headers["Location"] = "https://elsewhere.invalid/api/generate/status/moved"
            return web.Response(status=code, headers=headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = fault.retry_after_ms
        if fault.retry_after_date is not None:
            headers["Retry-After"] = email.utils.formatdate(
                time.time() + fault.retry_after_date, usegmt=True
            )
        message = fault.message or f"Injected {code} by the emulator's fault plan"
        if fault.html:
            text = f"<html><head><title>{code}</title></head><body><h1>{code}</h1><p>{message}</p></body></html>"
            return web.Response(text=text, status=code, content_type="text/html", headers=headers)
        return web.json_response(error_body(code, message), status=code, headers=headers)

    async def _wait_or_close(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.closing.wait(), timeout=seconds)

    @staticmethod
    def _abort(request: web.Request, *, reset: bool) -> None:
        transport = request.transport
        if transport is None:
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0 turns the close into a TCP RST, as a crashed peer would send.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()

    async def _reset(
        self, request: web.Request, status: int, body: bytes, content_type: str, after: int
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
        response.content_length = len(body)
        try:
            if after > 0:
                await response.prepare(request)
                await response.write(body[:after])
                await asyncio.sleep(0.01)  # let the bytes leave before the reset
        except ConnectionError:
            return response
        self._abort(request, reset=True)
        return response

    async def _drip(
        self, request: web.Request, status: int, body: bytes, content_type: str, fault: Fault
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
        response.content_length = len(body)
        try:
            await response.prepare(request)
            for start in range(0, len(body), fault.chunk):
                await response.write(body[start : start + fault.chunk])
                if self.closing.is_set():
                    self._abort(request, reset=False)
                    return response
                await self._wait_or_close(fault.interval)
            await response.write_eof()
        except ConnectionError:
            pass
        return response

    async def _oversized(
        self, request: web.Request, body: bytes, content_type: str, fault: Fault
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
        if content_type == JSON_TYPE:
            head, tail = b'{"code":200,"data":{"padding":"', b'"}}'
        else:
            head, tail = body, b""
        total = (
            None if fault.endless else max(fault.bytes or _OVERSIZED_BYTES, len(head) + len(tail))
        )
        if total is not None:
            response.content_length = total
        else:
            response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            await response.write(head)
            remaining = None if total is None else total - len(head) - len(tail)
            filler = (b"x" if content_type == JSON_TYPE else b"\0") * _WRITE_CHUNK
            while remaining is None or remaining > 0:
                if self.closing.is_set():
                    self._abort(request, reset=False)
                    return response
                size = _WRITE_CHUNK if remaining is None else min(_WRITE_CHUNK, remaining)
                await response.write(filler[:size])
                if remaining is not None:
                    remaining -= size
                else:
                    await asyncio.sleep(0)  # an endless stream must not starve the loop
            await response.write(tail)
            await response.write_eof()
        except ConnectionError:
            pass
        return response
