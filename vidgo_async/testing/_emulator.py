"""The public :class:`Emulator`: a local Vidgo API server for tests, demos and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from ._callbacks import RECEIVER_TIMEOUT, CallbackSender
from ._credits import CreditLedger
from ._faults import Fault, FaultPlan
from ._server import EmulatorServer
from ._stats import EmulatorStats
from ._tasks import EmulatedTask, TaskStore
from ._uploads import EmulatedUploads

if TYPE_CHECKING:
    from .._client import VidgoClient

__all__ = ["Emulator"]

logger = logging.getLogger("vidgo_async")

# The shortest real time a callback receiver is given, however small the time scale:
# a loopback receiver still needs a few milliseconds to answer.
MIN_CALLBACK_TIMEOUT = 0.25


class Emulator:
    """A Vidgo API emulator on loopback: submit, status, balance, files and callbacks.

    Use it as ``async with Emulator(...) as emu:`` (or ``with Emulator(...).run_in_thread()
    as emu:`` from synchronous code); ``emu.base_url`` and ``emu.api_key`` point any HTTP
    client at it and ``emu.client()`` returns a ready :class:`~vidgo_async.VidgoClient`.

    Args:
        host: the interface to listen on (keep it on loopback).
        port: the port; 0 picks a free one.
        api_key: the only key accepted as ``Authorization: Bearer <key>``.
        job_seconds: how long a job takes in emulated seconds: a number, or a
            ``(low, high)`` range drawn uniformly per job. A prompt directive overrides it.
        time_scale: real seconds per emulated second (0.01 makes a 90 s job take 0.9 s);
            scales job durations, callback timeouts and retry delays, ``within`` and ``rate``.
        failure_rate: the probability that a job ends ``failed`` (content-policy message).
        credits: the starting balance.
        prices: credits per generated second by model id (``"*"`` for any other model),
            merged over the defaults: seedance-2 10, seedance-2-fast 6, others 5.
        faults: a :class:`FaultPlan`, a ``--faults`` spec string, or a list of :class:`Fault`.
        seed: seeds task ids, job durations, failures and fault dice.
        idempotency: honour an ``Idempotency-Key`` header by answering a repeated key with
            the original task (the real API has no such key; for "key mode" tests).
        email: the account email shown by the balance endpoint.
        callback_timeout: real seconds a callback receiver has to answer; default 30 s
            (as documented) scaled, but at least 0.25 s.
        callback_shape: ``"flat"`` (the task object alone, as documented; ``"bare"`` is
            the same) or ``"wrapped"`` (``{code, data}``, the older shape).
        callback_signing_key: sign callbacks with ``X-Webhook-Timestamp`` and
            ``X-Webhook-Signature`` ([P], PoYo's HMAC scheme); ``None``: unsigned.
        other_api_keys: more accepted keys, each its own account for task ownership (a
            task queried with another key than its own answers 403) and upload limits.
        allow_unknown_models: accept a model id the catalog does not know, checking only
            that its input is a JSON object (to try a new id before the catalog has it);
            by default unknown ids are refused with 400, as Vidgo does. ``client()`` then
            returns a client that sends such ids too.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = "emulator-key",
        job_seconds: float | tuple[float, float] = 1.0,
        time_scale: float = 1.0,
        failure_rate: float = 0.0,
        credits: int = 1_000_000,
        prices: Mapping[str, float] | None = None,
        faults: FaultPlan | str | list[Fault] | None = None,
        seed: int | None = None,
        idempotency: bool = False,
        email: str = "emulator@example.com",
        callback_timeout: float | None = None,
        callback_shape: Literal["flat", "wrapped", "bare"] = "flat",
        callback_signing_key: str | None = None,
        other_api_keys: tuple[str, ...] = (),
        allow_unknown_models: bool = False,
    ) -> None:
        if not math.isfinite(time_scale) or time_scale <= 0:
            raise ValueError(f"time_scale must be a finite number > 0 (got {time_scale})")
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError(f"failure_rate must be from 0 to 1 (got {failure_rate})")
        low, high = job_seconds if isinstance(job_seconds, tuple) else (job_seconds, job_seconds)
        if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
            raise ValueError(
                f"job_seconds must be >= 0, a range as (low, high) (got {job_seconds})"
            )
        if not api_key:
            raise ValueError("api_key must be a non-empty string")
        if callback_shape not in ("flat", "wrapped", "bare"):
            raise ValueError(f"callback_shape must be 'flat' or 'wrapped' (got {callback_shape!r})")
        self._host = host
        self._port = port
        self._api_key = api_key
        self._job_seconds = job_seconds
        self._time_scale = time_scale
        self._failure_rate = failure_rate
        self._rng = random.Random(seed)  # noqa: S311 - emulated randomness, not cryptography
        self._idempotency = idempotency
        self._email = email
        self._callback_timeout = (
            callback_timeout
            if callback_timeout is not None
            else max(MIN_CALLBACK_TIMEOUT, RECEIVER_TIMEOUT * time_scale)
        )
        self._callback_shape = callback_shape
        self._other_api_keys = tuple(other_api_keys)
        self._allow_unknown_models = allow_unknown_models
        self._uploads: EmulatedUploads | None = None  # kept after close, like ``stats``
        self._callback_signing_key = callback_signing_key
        self._callback_rng = random.Random(seed)  # noqa: S311 - retry jitter, not secrets
        self.stats = EmulatorStats()
        self.faults = FaultPlan.coerce(faults, seed=seed)
        self.ledger = CreditLedger(credits, prices)
        self._runner: web.AppRunner | None = None
        self._server: EmulatorServer | None = None
        self._store: TaskStore | None = None
        self._sender: CallbackSender | None = None
        self._base_url: str | None = None

    def __repr__(self) -> str:
        where = self._base_url or "not started"
        return f"<Emulator {where} time_scale={self._time_scale}>"

    @property
    def api_key(self) -> str:
        """The key the emulator accepts."""
        return self._api_key

    @property
    def base_url(self) -> str:
        """The base URL to give a client, e.g. ``http://127.0.0.1:8089``."""
        if self._base_url is None:
            raise RuntimeError("the emulator is not running: use 'async with Emulator() as emu'")
        return self._base_url

    @property
    def port(self) -> int:
        """The port the emulator listens on."""
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def time_scale(self) -> float:
        """Real seconds per emulated second."""
        return self._time_scale

    @property
    def uploads(self) -> EmulatedUploads:
        """The upload endpoints' state: stored ``files``, ``accepted`` and ``refused`` counts."""
        if self._uploads is None:
            raise RuntimeError("the emulator never ran: use 'async with Emulator() as emu'")
        return self._uploads

    def file_url(self, task_id: str) -> str:
        """Return the URL at which a finished task's video is served."""
        return f"{self.base_url}/files/{task_id}.mp4"

    def client(self, **kwargs: Any) -> VidgoClient:
        """Return a ``VidgoClient`` pointed at this emulator with its key (``kwargs`` passed on).

        Unless ``poll=`` is given, the client's poll policy is scaled by the emulator's
        ``time_scale``, so a job that takes 90 emulated seconds is seen finished promptly;
        unless ``allow_unknown_models=`` is given, it is the emulator's.
        """
        from .._client import VidgoClient  # the emulator itself never depends on the client

        if "poll" not in kwargs and self._time_scale != 1.0:
            # Emulated seconds pass time_scale times faster: poll at the same pace in them.
            from .._config import PollPolicy

            kwargs["poll"] = PollPolicy().scaled(self._time_scale)
        if self._allow_unknown_models:
            kwargs.setdefault("allow_unknown_models", True)
        return VidgoClient(self._api_key, base_url=self.base_url, **kwargs)

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start serving (on a free port when ``port`` is 0)."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        loop = asyncio.get_running_loop()
        self._sender = CallbackSender(
            stats=self.stats,
            faults=self.faults,
            time_scale=self._time_scale,
            timeout=self._callback_timeout,
            now=loop.time,
            rng=self._callback_rng,
            signing_key=self._callback_signing_key,
        )
        self._store = TaskStore(
            job_seconds=self._job_seconds,
            time_scale=self._time_scale,
            failure_rate=self._failure_rate,
            rng=self._rng,
            on_end=self._task_ended,
        )
        self._server = EmulatorServer(
            api_key=self._api_key,
            email=self._email,
            store=self._store,
            ledger=self.ledger,
            stats=self.stats,
            faults=self.faults,
            sender=self._sender,
            time_scale=self._time_scale,
            idempotency=self._idempotency,
            file_url=self.file_url,
            other_api_keys=self._other_api_keys,
            allow_unknown_models=self._allow_unknown_models,
        )
        self._uploads = self._server.uploads
        runner = web.AppRunner(
            self._server.build_app(), handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        self._runner = runner
        try:
            await self._sender.start()
            await runner.setup()
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
            port = int(runner.addresses[0][1])
        except BaseException:
            await self.close()
            raise
        # A wildcard address is where to listen, not where to connect: the URL names this
        # machine's loopback (which every client accepts over plain http).
        wildcards = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104
        connect = wildcards.get(self._host, self._host)
        host = f"[{connect}]" if ":" in connect else connect
        self._base_url = f"http://{host}:{port}"
        logger.info("emulator: serving at %s", self._base_url)

    async def close(self) -> None:
        """Stop serving: end stalled answers, cancel timers and callbacks, close everything."""
        if self._server is not None:
            self._server.closing.set()
        if self._store is not None:
            self._store.close()
        if self._sender is not None:
            await self._sender.close()
            self._sender = None
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        self._server = None
        self._base_url = None

    @contextlib.contextmanager
    def run_in_thread(self, *, timeout: float = 10.0) -> Iterator[Emulator]:
        """Serve from a background thread with its own event loop, for synchronous code.

        ``with Emulator(...).run_in_thread() as emu:`` — the server stops when the block ends.
        Read ``emu.stats`` freely; to change the fault plan while it runs, prefer setting it
        up before entering the block.
        """
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="vidgo-emulator", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout)
            yield self
        finally:
            try:
                asyncio.run_coroutine_threadsafe(self.close(), loop).result(timeout)
                asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result(timeout)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout)
                loop.close()

    # ----------------------------------------------------------------- helpers

    async def wait_callbacks(self) -> None:
        """Wait until every callback in progress is delivered or given up."""
        if self._sender is not None:
            await self._sender.drain()

    def task_status(self, task_id: str) -> dict[str, Any] | None:
        """Return the status-shaped ``data`` the API would show for ``task_id`` now, or None."""
        if self._store is None:
            return None
        task = self._store.get(task_id)
        if task is None:
            return None
        return task.snapshot(asyncio.get_running_loop().time(), self.file_url)

    def _task_ended(self, task: EmulatedTask) -> None:
        failed = task.ended == "failed"
        self.ledger.settle(task.task_id, charged=not failed)
        self.stats.task_ended(failed=failed)
        if task.callback_url and self._sender is not None and self._base_url is not None:
            data = task.snapshot(asyncio.get_running_loop().time(), self.file_url)
            body = {"code": 200, "data": data} if self._callback_shape == "wrapped" else data
            self._sender.send(task.callback_url, task.task_id, body)
