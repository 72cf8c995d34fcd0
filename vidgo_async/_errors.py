"""The exception tree of vidgo-async.

Everything the package raises on purpose derives from :class:`VidgoError`::

    VidgoError
    ├── InputValidationError (also ValueError)   bad input, caught before any request
    │   └── UnknownModelError                    a model id the catalog does not know
    ├── APIError                                 something went wrong talking to Vidgo
    │   ├── APIConnectionError                   no usable answer (refused, reset, DNS)
    │   │   └── APITimeoutError (also TimeoutError)
    │   ├── APIResponseValidationError           an answer we cannot read (not the documented shape)
    │   └── APIStatusError                       the API answered with an error code
    │       ├── BadRequestError                  400, 413, 422 (rejected: nothing was created)
    │       ├── AuthenticationError              401
    │       ├── InsufficientCreditsError         402
    │       ├── PermissionDeniedError            403
    │       ├── NotFoundError                    404
    │       ├── ConflictError                    409
    │       ├── RateLimitError                   429 (``retry_after`` in seconds, when known)
    │       └── ServerError                      5xx (and 408)
    ├── SubmitOutcomeUnknownError                a submit was sent and its fate is unknown
    ├── TaskError                                a task ended badly (``.task`` is the last seen Task)
    │   ├── TaskFailedError                      status ``failed`` (the API said so)
    │   └── TaskLostError                        the task id is known, its status no longer readable
    │       ├── UnknownStatusError               a status this client does not know
    │       └── WaitTimeoutError (also TimeoutError) the wait deadline passed first
    ├── TaskNotFoundError (also NotFoundError)   the task stayed invisible past the grace period
    ├── DownloadError                            a result file could not be fetched
    │   └── UnsafeURLError                       a result URL failed the safety checks
    ├── JournalError                             the journal file is unusable (never overwritten)
    │   ├── JournalConflictError                 same job key, different request
    │   ├── JobClaimedError                      the job is held by another submit or task
    │   └── JournalLockedError                   another process holds the writer lock
    └── WebhookError                             a callback request was refused (``status_code``)
        ├── InvalidCallbackError (also ValueError)  400: not a task body
        ├── CallbackTooLargeError                413: the body is over the size limit
        └── UnknownCallbackTokenError            404: no job has this callback token

Messages never contain the API key: the transport never puts headers in them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Task

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CallbackTooLargeError",
    "ConflictError",
    "DownloadError",
    "InputValidationError",
    "InsufficientCreditsError",
    "InvalidCallbackError",
    "JobClaimedError",
    "JournalConflictError",
    "JournalError",
    "JournalLockedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "SubmitOutcomeUnknownError",
    "TaskError",
    "TaskFailedError",
    "TaskLostError",
    "TaskNotFoundError",
    "UnknownCallbackTokenError",
    "UnknownModelError",
    "UnknownStatusError",
    "UnsafeURLError",
    "ValidationIssue",
    "VidgoError",
    "WaitTimeoutError",
    "WebhookError",
    "status_error_class",
]


class VidgoError(Exception):
    """Base class of every error raised by vidgo-async."""


class ValidationIssue:
    """One broken input rule: the field (a ``$.input.x`` style path), the rule and the value."""

    __slots__ = ("field", "rule", "value")

    def __init__(self, field: str, rule: str, value: object) -> None:
        self.field = field
        self.rule = rule
        self.value = value

    def __str__(self) -> str:
        return f"{self.field} {self.rule} (got {_short_repr(self.value)})"

    def __repr__(self) -> str:
        return f"ValidationIssue(field={self.field!r}, rule={self.rule!r}, value={self.value!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidationIssue):
            return NotImplemented
        return (self.field, self.rule, self.value) == (other.field, other.rule, other.value)

    def __hash__(self) -> int:
        return hash((self.field, self.rule, repr(self.value)))


def _short_repr(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InputValidationError(VidgoError, ValueError):
    """Raised before any request is sent when an input breaks a documented rule.

    ``issues`` lists every broken rule; ``field``, ``rule`` and ``value`` describe the
    first one, so the common case reads naturally::

        except InputValidationError as exc:
            print(exc.field, exc.rule, exc.value)
    """

    def __init__(self, issues: list[ValidationIssue]) -> None:
        if not issues:
            raise ValueError("InputValidationError needs at least one issue")
        self.issues = list(issues)
        first = self.issues[0]
        self.field = first.field
        self.rule = first.rule
        self.value = first.value
        if len(self.issues) == 1:
            message = str(first)
        else:
            message = f"{len(self.issues)} input errors: " + "; ".join(str(i) for i in self.issues)
        super().__init__(message)


class UnknownModelError(InputValidationError):
    """Raised before any request when ``model`` is not an id the catalog knows.

    ``suggestions`` holds the closest documented ids ("did you mean"). Pass
    ``allow_unknown_models=True`` to send an id newer than this package's catalog.
    """

    def __init__(self, model: str, suggestions: list[str]) -> None:
        self.model = model
        self.suggestions = list(suggestions)
        if suggestions:
            hint = "did you mean " + " or ".join(repr(known) for known in suggestions) + "?"
        else:
            hint = "`vidgo-async models` lists the documented ids"
        rule = (
            f"is not a model Vidgo documents ({hint}; pass allow_unknown_models=True "
            "to send an id newer than this package's catalog)"
        )
        super().__init__([ValidationIssue("$.model", rule, model)])


class APIError(VidgoError):
    """Something went wrong while talking to the Vidgo API.

    ``method`` and ``url`` name the request (never its headers, which hold the key).
    """

    def __init__(self, message: str, *, method: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url


class APIConnectionError(APIError):
    """The API could not be reached or the connection broke before a full answer arrived.

    ``request_sent`` tells whether the request may have reached the server: ``False``
    means it provably did not (connection refused, DNS failure), so repeating it is safe.
    """

    def __init__(
        self,
        message: str = "Connection error.",
        *,
        method: str | None = None,
        url: str | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError, TimeoutError):
    """The request did not complete within its timeout."""

    def __init__(
        self,
        message: str = "Request timed out.",
        *,
        method: str | None = None,
        url: str | None = None,
        request_sent: bool = True,
    ) -> None:
        super().__init__(message, method=method, url=url, request_sent=request_sent)


class APIResponseValidationError(APIError):
    """The API answered successfully but the body is not the documented shape."""

    def __init__(
        self,
        message: str,
        *,
        body: object = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.body = body


class APIStatusError(APIError):
    """The API answered with an error status.

    Attributes:
        status_code: the HTTP status (or the envelope's ``code`` when it is an error under 200).
        error_type: the ``error.type`` string of the body, when there is one.
        body: the decoded JSON body, or the raw text when it was not JSON.
        request_id: a request id header, when the server sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        body: object = None,
        method: str | None = None,
        url: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status_code = status_code
        self.error_type = error_type
        self.body = body
        self.request_id = request_id

    def __str__(self) -> str:
        kind = f" {self.error_type}" if self.error_type else ""
        return f"HTTP {self.status_code}{kind}: {self.message}"


class BadRequestError(APIStatusError):
    """400/413/422: the request was rejected as invalid; nothing was created. Do not retry."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or invalid. Check ``VIDGO_API_KEY``."""


class InsufficientCreditsError(APIStatusError):
    """402: the account cannot pay for this generation. Top up, then submit again."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this model or resource."""


class NotFoundError(APIStatusError):
    """404: the resource (usually the task) does not exist."""


class ConflictError(APIStatusError):
    """409: the request conflicts with an existing resource."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    ``retry_after`` is the server's requested wait in seconds when it sent one. The client
    sleeps through short waits itself; a wait above ``RetryPolicy.max_retry_after`` is raised
    so that the caller (or the orchestrator) can reschedule instead of blocking.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        error_type: str | None = None,
        body: object = None,
        method: str | None = None,
        url: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            error_type=error_type,
            body=body,
            method=method,
            url=url,
            request_id=request_id,
        )
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx (or 408): the server failed. Safe to retry for reads; ambiguous for a submit."""


_STATUS_CLASSES: Mapping[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    403: PermissionDeniedError,
    404: NotFoundError,
    408: ServerError,
    409: ConflictError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """Return the error class for an HTTP error status."""
    if status_code in _STATUS_CLASSES:
        return _STATUS_CLASSES[status_code]
    if status_code >= 500:
        return ServerError
    return APIStatusError


class SubmitOutcomeUnknownError(VidgoError):
    """A submit was sent but no answer says whether a task was created.

    Vidgo has no idempotency key, so sending it again could create (and bill) a second
    video. The client therefore does not retry. Check your Vidgo dashboard or wait for the
    callback before submitting again, or opt in to at-least-once delivery with
    ``RetryPolicy(retry_ambiguous_submits=True)``.

    Attributes:
        model: the model id that was submitted.
        payload: the JSON body that was sent (it holds no credentials).
        cause: the error that made the outcome unknown.
    """

    def __init__(self, model: str, payload: Mapping[str, Any], cause: BaseException) -> None:
        self.model = model
        self.payload = payload
        self.cause = cause
        super().__init__(
            f"The submit for model {model!r} was sent but its outcome is unknown ({cause}); "
            "a task may or may not have been created and billed. It was not retried, to avoid "
            "paying twice. HINT: check the dashboard or wait for the callback before resubmitting, "
            "or set RetryPolicy(retry_ambiguous_submits=True) to accept at-least-once submits."
        )


class TaskError(VidgoError):
    """A task reached an outcome other than success. ``task`` is the last seen Task."""

    def __init__(self, message: str, task: Task) -> None:
        super().__init__(message)
        self.task = task


class TaskFailedError(TaskError):
    """The task ended with status ``failed``; ``task.error_message`` says why."""

    def __init__(self, task: Task) -> None:
        reason = task.error_message or "no error message given"
        super().__init__(f"Task {task.task_id} failed: {reason}", task)


class TaskLostError(TaskError):
    """The task exists (its id is known) but its status can no longer be read.

    Raised for a 401/403, another 4xx, a redirect, a 404 past the not-found grace,
    repeated unreadable answers, an unknown status or the deadline. The task may still
    run, and be billed, on the server: it is never "failed". ``task`` is the last seen Task
    (status ``unknown`` when none was seen), ``cause`` the observation that ended the wait.
    """

    def __init__(
        self, task: Task, cause: BaseException | None = None, *, message: str | None = None
    ) -> None:
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause
        super().__init__(
            message
            or (
                f"Lost track of task {task.task_id}: its status can no longer be read ({cause}). "
                "The task may still run (and be billed) on the server. HINT: wait for it again "
                "later with its task_id; a batch rerun polls it, never submits it again."
            ),
            task,
        )

    @property
    def task_id(self) -> str:
        """The id of the task that was lost track of."""
        return self.task.task_id


class UnknownStatusError(TaskLostError):
    """The API reported a status this client does not know; it was not waited through."""

    def __init__(self, task: Task) -> None:
        super().__init__(
            task,
            message=(
                f"Task {task.task_id} has status {task.status.value!r}, which this client does "
                "not know. HINT: PollPolicy(unknown_status='poll') keeps polling until the "
                "deadline."
            ),
        )


class WaitTimeoutError(TaskLostError, TimeoutError):
    """The wait deadline passed before the task ended. The task itself goes on."""

    def __init__(self, task: Task, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(
            task,
            message=(
                f"Task {task.task_id} was still {task.status.value!r} after {timeout:g} s. "
                "The task continues on the server: wait for it again with its task_id."
            ),
        )


class TaskNotFoundError(NotFoundError):
    """The task id stayed unknown to the API past the not-found grace period."""

    @classmethod
    def from_not_found(cls, task_id: str, exc: NotFoundError) -> TaskNotFoundError:
        """Name the task in a 404 that outlived the grace period, keeping the API's details."""
        return cls(
            f"Task {task_id!r} was not found: {exc.message}",
            status_code=exc.status_code,
            error_type=exc.error_type,
            body=exc.body,
            method=exc.method,
            url=exc.url,
            request_id=exc.request_id,
        )


class DownloadError(VidgoError):
    """A result file could not be downloaded. ``task_id`` and ``url`` say which."""

    def __init__(self, message: str, *, task_id: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.url = url


class UnsafeURLError(DownloadError):
    """A result URL was refused before connecting (scheme, host or address not allowed)."""


class WebhookError(VidgoError):
    """A callback request was refused; ``status_code`` is the HTTP status to answer it with."""

    status_code: int = 400


class InvalidCallbackError(WebhookError, ValueError):
    """The callback body is not a task object nor a ``{code, data}`` envelope holding one."""

    status_code = 400


class CallbackTooLargeError(WebhookError):
    """The callback body is larger than the receiver accepts (``size`` and ``limit`` in bytes)."""

    status_code = 413

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"the callback body has {size} bytes, more than the limit of {limit} bytes "
            "(a Vidgo task callback is a few kilobytes)"
        )


class CallbackSignatureError(WebhookError):
    """A signed callback's ``X-Webhook-Signature`` is missing, malformed, stale or wrong.

    Raised only by a receiver given a signing key; the request is answered 401 and changes
    nothing (the sender does not retry a 4xx; the job's fallback poll covers it).
    """

    status_code = 401


class UnknownCallbackTokenError(WebhookError):
    """No job owns the callback token in the request path (wrong, forgotten or expired)."""

    status_code = 404


class JournalError(VidgoError):
    """The journal file cannot be used: foreign, corrupted, newer, or a wrong operation on it.

    The file is never modified or overwritten when this is raised while opening it.
    ``path`` names the file.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class JournalConflictError(JournalError):
    """A job key is already in the journal with a different request (model + input).

    ``key`` is the job key; ``recorded`` and ``given`` are the two request fingerprints.
    """

    def __init__(
        self, message: str, *, key: str, recorded: str, given: str, path: str | None = None
    ) -> None:
        super().__init__(message, path=path)
        self.key = key
        self.recorded = recorded
        self.given = given


class JobClaimedError(JournalError):
    """A job's submit was not sent: the journal holds it for another submit or a task.

    ``key`` is the job key, ``state`` its recorded state and ``task_id`` its task, if any.
    Nothing was sent for it by this process.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str,
        state: str,
        task_id: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, path=path)
        self.key = key
        self.state = state
        self.task_id = task_id


class JournalLockedError(JournalError):
    """Another process holds the journal's writer lock (``owner`` says which, when known)."""

    def __init__(self, message: str, *, owner: str | None = None, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.owner = owner
