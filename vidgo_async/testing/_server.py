"""The emulator's HTTP routes: submit, status, balance, the generated files (uploads: ``_uploads``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .._errors import InputValidationError, ValidationIssue
from .._rules import check_callback_url
from .._validation import check_submit_fields, validate_input
from ._callbacks import CallbackSender
from ._credits import CreditLedger
from ._faults import Fault, FaultPlan
from ._inject import FaultInjector, error_body
from ._media import SAMPLE_CONTENT_TYPE, sample_video
from ._stats import EmulatorStats, fingerprint
from ._tasks import EmulatedTask, TaskStore, parse_directive
from ._uploads import EmulatedUploads

__all__ = ["EmulatorServer"]

logger = logging.getLogger("vidgo_async")

CONTENT_REJECTED = "The prompt violates our content policy"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EmulatorServer:
    """The routes and the state behind them; :class:`~vidgo_async.testing.Emulator` owns it."""

    def __init__(
        self,
        *,
        api_key: str,
        email: str,
        store: TaskStore,
        ledger: CreditLedger,
        stats: EmulatorStats,
        faults: FaultPlan,
        sender: CallbackSender,
        time_scale: float,
        idempotency: bool,
        file_url: Callable[[str], str],
        other_api_keys: tuple[str, ...] = (),
        allow_unknown_models: bool = False,
    ) -> None:
        self._api_key = api_key
        self._keys_accepted = frozenset({api_key, *other_api_keys})
        self._allow_unknown_models = allow_unknown_models
        self._owners: dict[str, str] = {}  # task_id -> the key that submitted it
        self.uploads = EmulatedUploads(caller=self._caller, time_scale=time_scale)
        self._email = email
        self._store = store
        self._ledger = ledger
        self._stats = stats
        self._faults = faults
        self._sender = sender
        self._time_scale = time_scale
        self._idempotency = idempotency
        self._file_url = file_url
        self._keys: dict[str, str] = {}  # Idempotency-Key -> task_id
        self._faults_out = FaultInjector()
        self.closing = self._faults_out.closing

    def build_app(self) -> web.Application:
        """Return the aiohttp application with every route."""
        app = web.Application(middlewares=[self._count_requests], client_max_size=4 * 1024 * 1024)
        app.router.add_post("/api/generate/submit", self.submit)
        app.router.add_get("/api/generate/status/{task_id}", self.status)
        app.router.add_get("/api/user/balance", self.balance)
        app.router.add_get("/files/{name}", self.download)
        app.router.add_get("/_emulator/stats", self.stats)
        self.uploads.add_routes(app.router)
        return app

    @web.middleware
    async def _count_requests(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._stats.request_started()
        try:
            return await handler(request)
        finally:
            self._stats.request_ended()

    def _now(self) -> float:
        return asyncio.get_running_loop().time() / self._time_scale

    def _caller(self, request: web.Request) -> str | None:
        """Return the request's API key when the emulator accepts it, else ``None``."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token in self._keys_accepted else None

    def _authorized(self, request: web.Request) -> bool:
        return self._caller(request) is not None

    def _pick(self, endpoint: str, task: EmulatedTask | None = None) -> Fault | None:
        loop_now = asyncio.get_running_loop().time()
        age = task.age(loop_now) if task is not None else None
        fault = self._faults.pick(endpoint, now=self._now(), task_age=age)
        if fault is not None:
            self._stats.faults_injected[f"{endpoint}:{fault.kind_name}"] += 1
            logger.debug("emulator: injecting %s on %s", fault.kind_name, endpoint)
        return fault

    # ----------------------------------------------------------------- routes

    async def submit(self, request: web.Request) -> web.StreamResponse:
        """Handle ``POST /api/generate/submit``."""
        self._stats.submit_attempts += 1
        self._stats.requests["submit"] += 1
        raw = await request.read()  # read first: "stall after reading the request"
        key = request.headers.get("Idempotency-Key")
        if key is not None:
            self._stats.idempotency_keys[key] += 1
        fault = self._pick("submit")
        if fault is not None and not fault.after:
            return await self._faults_out.inject(
                request, fault, 503, error_body(503, "Service unavailable")
            )
        status, payload = self._submit(request, raw, key)
        if fault is not None:
            return await self._faults_out.inject(request, fault, status, payload)
        return web.json_response(payload, status=status)

    def _submit(
        self, request: web.Request, raw: bytes, key: str | None
    ) -> tuple[int, dict[str, Any]]:
        if not self._authorized(request):
            return 401, error_body(
                401, "Invalid or missing API key (send Authorization: Bearer <key>)"
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, error_body(400, "The request body must be a JSON object")
        if not isinstance(body, dict):
            return 400, error_body(400, "The request body must be a JSON object")
        model = body.get("model")
        issues: list[ValidationIssue] = []
        # The same catalog and rules as the client: unknown ids are refused, as Vidgo does,
        # unless this emulator was told to accept them (to try an id the catalog lacks).
        unknown_ok = self._allow_unknown_models
        try:
            validate_input(model, body.get("input"), allow_unknown_models=unknown_ok)  # type: ignore[arg-type]  # checked by validate_input
        except InputValidationError as exc:
            issues = list(exc.issues)
        if body.get("callback_url") is not None:
            issues += check_callback_url(body["callback_url"])
        else:
            issues += check_submit_fields(model, None)  # type: ignore[arg-type]  # any JSON
        unknown = sorted(set(body) - {"model", "input", "callback_url"})
        issues += [
            ValidationIssue(f"$.{name}", "is not a submit field", body[name]) for name in unknown
        ]
        if issues:
            return 400, error_body(400, "; ".join(str(issue) for issue in issues))
        model_id = str(model)
        data: dict[str, Any] = body["input"]
        try:
            directive = parse_directive(data.get("prompt"))
        except ValueError as exc:
            return 400, error_body(
                400, f"$.input.prompt has an unreadable [[vidgo-emulator: ...]] directive: {exc}"
            )
        if directive is not None and directive.reject is not None:
            return 400, error_body(400, CONTENT_REJECTED, directive.reject)
        if self._idempotency and key is not None and key in self._keys:
            original = self._store.get(self._keys[key])
            if original is not None:
                return 200, {"code": 200, "data": self._submit_data(original)}
        task_id = self._store.new_id()
        price = self._ledger.price(model_id, data)
        if not self._ledger.reserve(task_id, price):
            return 402, error_body(
                402,
                f"Insufficient credits: this task costs {price} credits, "
                f"{self._ledger.available} are available",
            )
        task = self._store.create(
            task_id=task_id,
            model=model_id,
            input=data,
            callback_url=body.get("callback_url"),
            directive=directive,
            price=price,
        )
        if self._idempotency and key is not None:
            self._keys[key] = task_id
        self._owners[task_id] = self._caller(request) or self._api_key
        self._stats.submits_accepted += 1
        prompt = data.get("prompt")
        self._stats.submits_by_prompt[prompt if isinstance(prompt, str) else ""] += 1
        self._stats.jobs_by_fingerprint[fingerprint(model_id, data)] += 1
        self._stats.task_started()
        logger.debug("emulator: created %s (%s, %.3f s)", task_id, model_id, task.duration)
        return 200, {"code": 200, "data": self._submit_data(task)}

    @staticmethod
    def _submit_data(task: EmulatedTask) -> dict[str, Any]:
        return {"task_id": task.task_id, "status": "not_started", "created_time": task.created_time}

    async def status(self, request: web.Request) -> web.StreamResponse:
        """Handle ``GET /api/generate/status/{task_id}``."""
        task_id = request.match_info["task_id"]
        self._stats.requests["status"] += 1
        self._stats.status_requests[task_id] += 1
        task = self._store.get(task_id)
        fault = self._pick("status", task)
        status, payload = 200, {}
        if not self._authorized(request):
            status, payload = (
                401,
                error_body(401, "Invalid or missing API key (send Authorization: Bearer <key>)"),
            )
        elif task is None:
            # The status page's documented error body (not the {code, error} form).
            status, payload = 404, {"detail": "Task not found"}
        elif self._owners.get(task_id, self._api_key) != self._caller(request):
            status, payload = 403, {"detail": "Task belongs to another user"}
        else:
            loop_now = asyncio.get_running_loop().time()
            payload = {"code": 200, "data": task.snapshot(loop_now, self._file_url)}
        if fault is not None:
            return await self._faults_out.inject(request, fault, status, payload)
        return web.json_response(payload, status=status)

    async def balance(self, request: web.Request) -> web.StreamResponse:
        """Handle ``GET /api/user/balance``."""
        self._stats.requests["balance"] += 1
        self._stats.balance_requests += 1
        fault = self._pick("balance")
        if not self._authorized(request):
            status, payload = (
                401,
                error_body(401, "Invalid or missing API key (send Authorization: Bearer <key>)"),
            )
        else:
            status = 200
            payload = {
                "code": 200,
                "data": {"email": self._email, "credits_amount": self._ledger.available},
            }
        if fault is not None:
            return await self._faults_out.inject(request, fault, status, payload)
        return web.json_response(payload, status=status)

    async def stats(self, request: web.Request) -> web.StreamResponse:
        """Handle ``GET /_emulator/stats``: the counters, read-only (not a Vidgo endpoint).

        Lets a test read what an emulator in another process (``vidgo-async emulator``)
        has seen. It needs the API key, is never faulted and is not in ``requests``.
        """
        if not self._authorized(request):
            return web.json_response(
                error_body(401, "Invalid or missing API key (send Authorization: Bearer <key>)"),
                status=401,
            )
        stats = self._stats
        data = {
            "requests": dict(stats.requests),
            "submit_attempts": stats.submit_attempts,
            "submits_accepted": stats.submits_accepted,
            "submits_by_prompt": dict(stats.submits_by_prompt),
            "jobs_by_fingerprint": dict(stats.jobs_by_fingerprint),
            "balance_requests": stats.balance_requests,
            "status_requests": sum(stats.status_requests.values()),
            "download_requests": dict(stats.download_requests),
            "in_flight": stats.in_flight,
            "peak_in_flight": stats.peak_in_flight,
            "tasks_finished": stats.tasks_finished,
            "tasks_failed": stats.tasks_failed,
            "faults_injected": dict(stats.faults_injected),
            "credits_available": self._ledger.available,
            "uploads_accepted": self.uploads.total,
        }
        return web.json_response({"code": 200, "data": data})

    async def download(self, request: web.Request) -> web.StreamResponse:
        """Handle ``GET /files/<task_id>.mp4`` (public, like a storage URL: no key needed)."""
        name = request.match_info["name"]
        task_id = name.removesuffix(".mp4")
        self._stats.requests["download"] += 1
        self._stats.download_requests[task_id] += 1
        if "Authorization" in request.headers or "X-API-Key" in request.headers:
            self._stats.download_requests_with_credentials += 1
        task = self._store.get(task_id) if name.endswith(".mp4") else None
        fault = self._pick("download", task)
        if task is None or task.ended != "finished":
            if fault is not None:
                return await self._faults_out.inject(
                    request, fault, 404, error_body(404, "File not found")
                )
            return web.json_response(error_body(404, "File not found"), status=404)
        if fault is not None:
            return await self._faults_out.inject(
                request, fault, 200, sample_video(), content_type=SAMPLE_CONTENT_TYPE
            )
        return web.Response(body=sample_video(), content_type=SAMPLE_CONTENT_TYPE)
