"""Never run: mypy checks that the public API is usable as documented."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from vidgo_async import (
    Balance,
    ClientState,
    GenerationRequest,
    InputValidationError,
    JobClaimedError,
    JobHandle,
    JobResult,
    JobState,
    Journal,
    JournalLike,
    JournalLockedError,
    JournalRecorder,
    JournalState,
    Orchestrator,
    PollPolicy,
    Progress,
    RateLimitError,
    RerunAction,
    ResumePlan,
    RetryPolicy,
    Seedance2Input,
    StatusAnswer,
    StatusReader,
    SubmitOutcomeUnknownError,
    Task,
    TaskFailedError,
    TaskLostError,
    TaskStatus,
    Timeout,
    UploadedFile,
    VidgoClient,
    WaitTimeoutError,
    plan_resume,
)


async def usage(session: aiohttp.ClientSession) -> None:
    client = VidgoClient(
        "key",
        base_url="https://api.vidgo.ai",
        timeout=Timeout(connect=5, read=30, total=60),
        retry=RetryPolicy(max_attempts=3, retry_ambiguous_submits=False),
        poll=PollPolicy(initial_delay=2, max_interval=timedelta(seconds=30)),
        session=session,
        allow_insecure=False,
        max_download_bytes=10 * 1024**2,
    )
    VidgoClient(timeout=10.0)
    VidgoClient(timeout=timedelta(minutes=1))
    async with client as same:
        assert isinstance(same, VidgoClient)
        url: str = client.base_url
        policy: RetryPolicy = client.retry
        poll: PollPolicy = client.poll
        task: Task = await client.submit(
            "seedance-2",
            Seedance2Input(prompt="a fox", duration=5, resolution="720p"),
            callback_url="https://example.com/hook",
        )
        task = await client.submit("kling-2.6", {"prompt": "x", "duration": 5})
        task = await client.get_task(task.task_id)
        task = await client.wait(task, timeout=900)
        task = await client.wait(task.task_id, timeout=None, poll=poll)
        task = await client.wait(task, timeout=timedelta(minutes=5))
        task = await client.generate("seedance-2-fast", {"prompt": "abc"}, timeout=600)
        status: TaskStatus = task.status
        paths: list[Path] = await client.download(task, "out/")
        path: Path = await client.download_file(task.files[0].file_url, Path("x.mp4"))
        balance: Balance = await client.balance()
        credits: float = balance.credits_amount
        frame: UploadedFile = await client.upload(Path("frame.png"), upload_path="frames")
        frame = await client.upload("frame.png")
        frame = await client.upload(b"\x89PNG...", filename="frame.png")
        frame = await client.upload("https://example.com/frame.webp", filename="f.webp")
        expires: datetime | None = frame.expires_at
        print(url, policy, status, paths, path, credits, frame.file_url, expires)  # noqa: T201 - never run
    await client.aclose()


def handle(exc: Exception) -> float | None:
    if isinstance(exc, RateLimitError):
        return exc.retry_after
    if isinstance(exc, SubmitOutcomeUnknownError):
        return len(exc.payload)
    if isinstance(exc, (TaskFailedError, WaitTimeoutError)):
        return float(exc.task.progress or 0)
    if isinstance(exc, InputValidationError):
        return float(len(exc.issues))
    return None


def catalog_usage() -> None:
    from vidgo_async import (
        FieldSpec,
        ModelSpec,
        Seedance20ImageToVideoInput,
        Seedance25TextToVideoInput,
        UnknownModelError,
        list_models,
        validate_input,
    )

    specs: list[ModelSpec] = list_models()
    fields: tuple[FieldSpec, ...] = specs[0].fields
    limit: int | None = fields[0].max_items
    body: dict[str, object] = validate_input("seedance-2", {"prompt": "a fox", "duration": 5})
    typed = Seedance20ImageToVideoInput(
        prompt="a fox", duration=5, image_urls=["https://example.com/a.png"], aspect_ratio="auto"
    )
    validate_input("seedance-2.0/image-to-video", typed, allow_unknown_models=False)
    validate_input(
        "seedance-2.5/text-to-video",
        Seedance25TextToVideoInput(prompt="x", duration=30, resolution="720p"),
    )
    VidgoClient("key", allow_unknown_models=True)
    try:
        validate_input("seedance2", {})
    except UnknownModelError as exc:
        suggestions: list[str] = exc.suggestions
        print(limit, body, suggestions)  # noqa: T201


def lost(exc: Exception) -> str | None:
    if isinstance(exc, TaskLostError):  # UnknownStatusError and WaitTimeoutError too
        cause: BaseException | None = exc.cause
        print(cause)  # noqa: T201 - never run
        return exc.task_id
    return None


async def core(client: VidgoClient, journal: Journal, requests: list[GenerationRequest]) -> None:
    state: ClientState = client.state
    retry = RetryPolicy(max_attempts=2)
    task: Task = await client.submit("seedance-2", {"prompt": "x"}, retry=retry)
    answer: StatusAnswer = await client.query_status(task.task_id)
    hint: float | None = answer.poll_hint
    reader: StatusReader = client.status_reader(task.task_id)
    again: StatusAnswer = await reader()
    plan: ResumePlan = await plan_resume(journal, requests, retry_unknown=False)
    known = {"prompt": "x", "image_urls": ["https://files.invalid/sha256/ab"]}
    sent = {"prompt": "x", "image_urls": ["https://cdn.example/ab.png"]}
    same: GenerationRequest = GenerationRequest("seedance-2", sent, fingerprint_input=known)
    action: RerunAction = JobState.LOST.rerun
    recorded: RerunAction = JournalState.LOST.rerun
    async with Orchestrator(client, journal=JournalRecorder(journal)) as orch:
        handles: list[JobHandle] = [orch.attach(request, seen) for request, seen in plan.attach]
        results: list[JobResult] = await orch.run(plan.submit)
        progress: Progress = orch.snapshot()
        polls: int = orch.polls
        print(state, again.task, hint, action, recorded, handles, results, progress, polls, same)  # noqa: T201
    try:
        await journal.lock_writer("my batch")
    except JournalLockedError as exc:
        print(exc.owner)  # noqa: T201 - never run
    try:
        await journal.record_intent("k", "fp", "seedance-2", {"prompt": "x"})
    except JobClaimedError as exc:
        print(exc.key, exc.state, exc.task_id)  # noqa: T201 - never run


async def journals(client: VidgoClient, where: str) -> None:
    by_path: Journal = await Journal.open(Path("out/journal.sqlite"))  # a Path: SQLite
    by_text: JournalLike = await Journal.open(where, max_in_flight=6)  # a URL or a path
    async with Orchestrator(client, journal=by_text) as orch:  # a bare journal is recorded
        print(orch.max_in_flight)  # noqa: T201 - never run
    await by_path.lock_writer("my batch")
    await by_path.aclose()
    await by_text.aclose()
