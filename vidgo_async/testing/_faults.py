"""The fault plan: which requests the emulator answers badly, and how.

A plan is an ordered list of :class:`Fault` rules. For each request the emulator asks the
plan for the first rule whose endpoint matches and whose triggers all fire; that rule's
fault is injected instead of (or after) the normal answer. The same plan can be written as
a mini-language for the command line (``--faults``)::

    SPEC   := RULE (";" RULE)*
    RULE   := ENDPOINT ":" KIND ("," OPTION)*
    OPTION := NAME | NAME "=" VALUE

    submit:429,every=3,retry_after=2;status:503,p=0.3,html;status:404,within=20

Endpoints: ``submit``, ``status``, ``balance``, ``download``, ``callback`` and ``api``
(submit, status and balance). See :class:`Fault` for the kinds and options.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

import attrs

__all__ = ["ENDPOINTS", "KINDS", "Fault", "FaultPlan"]

ENDPOINTS = ("submit", "status", "balance", "download", "callback", "api")
_API_ENDPOINTS = ("submit", "status", "balance")
# Kinds that need no HTTP status; a kind that is a number (400..599) answers with that code.
KINDS = (
    "drop",
    "stall",
    "slow",
    "drip",
    "reset",
    "malformed",
    "oversized",
    "code_in_body",
    "lose",
    "duplicate",
    "word",
)
_CALLBACK_KINDS = ("lose", "duplicate")
# On submit these kinds model "the server got the request": by default the job is created
# first and only the answer is spoiled (the ambiguous case of RELIABILITY.md T01/T14).
_AFTER_BY_DEFAULT = ("stall", "slow", "drip", "reset", "drop", "malformed", "oversized")


def _positive_int(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and value < 1:
        raise ValueError(f"Fault {attribute.name} must be a positive integer (got {value})")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise ValueError(f"Fault {attribute.name} must be a finite number >= 0 (got {value})")


@attrs.frozen(kw_only=True)
class Fault:
    """One fault rule: where, what, when.

    Args:
        endpoint: ``submit``, ``status``, ``balance``, ``download``, ``callback`` or ``api``.
        kind: an HTTP status (``429``, ``500``, ``502``, ``503``, ``404``...) answered with the
            documented error body (HTML with ``html=True``), or one of: ``drop`` (close the
            connection without an answer), ``stall`` (read the request, then say nothing for
            ``seconds``, default 3600, then close), ``slow`` (answer normally after ``seconds``),
            ``drip`` (send the answer ``chunk`` bytes every ``interval`` seconds), ``reset``
            (send ``bytes`` bytes of the answer, default 0, then reset the connection),
            ``malformed`` (HTTP 200 with broken JSON), ``oversized`` (HTTP 200 with a valid
            JSON body of ``bytes`` bytes, default 2 MiB; ``endless=True`` streams forever),
            ``code_in_body`` (HTTP 200 whose body says ``{"code": status, "error": ...}``),
            ``word`` (status only: HTTP 200 with the task, its ``status`` replaced by ``word=``,
            e.g. ``status:word,word=paused``), and for callbacks ``lose`` (never deliver) or
            ``duplicate`` (deliver twice). A 3xx code answers a redirect to another host.
        every: fire on every Nth request to the endpoint (N, 2N, 3N...).
        burst_start, burst_count: fire on requests ``burst_start`` .. ``burst_start+burst_count-1``
            (1-based, counted per endpoint).
        probability: fire with this probability (seeded by the emulator's ``seed``).
        within: fire only while the task is younger than this many emulated seconds
            (status and download; e.g. ``Fault("status", 404, within=20)`` for eventual
            consistency right after submit).
        rate: fire when more than ``rate`` requests reached the endpoint during the last
            emulated second (a rate limiter: ``Fault("submit", 429, rate=5)``).
        times: fire at most this many times in all.
        when: for submit only: ``"before"`` (no job is created) or ``"after"`` (the job is
            created, then the answer is spoiled). Default: ``after`` for transport faults
            (stall, slow, drip, reset, drop, malformed, oversized), ``before`` otherwise.
        retry_after: the ``Retry-After`` header value, sent verbatim (``"3"``, ``"-1"``, ...).
        retry_after_ms: the ``retry-after-ms`` header value, sent verbatim.
        retry_after_date: send ``Retry-After`` as an HTTP-date this many seconds ahead.
        status: the code written in the body for ``code_in_body`` (default 500).

    Real-time durations (``seconds``, ``interval``, Retry-After values) are *not* scaled by
    the emulator's ``time_scale``: they act on the client's timeouts, which are real.
    ``within`` and ``rate`` count emulated seconds, like job durations.
    """

    endpoint: str = attrs.field()
    kind: str | int = attrs.field()
    every: int | None = attrs.field(default=None, validator=_positive_int)
    burst_start: int | None = attrs.field(default=None, validator=_positive_int)
    burst_count: int | None = attrs.field(default=None, validator=_positive_int)
    probability: float | None = attrs.field(default=None)
    within: float | None = attrs.field(default=None, validator=_non_negative)
    rate: float | None = attrs.field(default=None, validator=_non_negative)
    times: int | None = attrs.field(default=None, validator=_positive_int)
    when: str | None = attrs.field(default=None)
    retry_after: str | None = None
    retry_after_ms: str | None = None
    retry_after_date: float | None = attrs.field(default=None, validator=_non_negative)
    html: bool = False
    seconds: float | None = attrs.field(default=None, validator=_non_negative)
    chunk: int = attrs.field(default=1, validator=_positive_int)
    interval: float = attrs.field(default=1.0, validator=_non_negative)
    bytes: int | None = attrs.field(default=None, validator=_non_negative)
    endless: bool = False
    status: int | None = None
    message: str | None = None
    word: str | None = None

    @endpoint.validator
    def _check_endpoint(self, attribute: attrs.Attribute[str], value: str) -> None:
        if value not in ENDPOINTS:
            raise ValueError(
                f"Fault endpoint must be one of {', '.join(ENDPOINTS)} (got {value!r})"
            )

    @kind.validator
    def _check_kind(self, attribute: attrs.Attribute[str | int], value: str | int) -> None:
        code = _as_status(value)
        if code is None and value not in KINDS:
            raise ValueError(
                f"Fault kind must be an HTTP status 300-599 or one of {', '.join(KINDS)} (got {value!r})"
            )
        if self.endpoint == "callback" and value not in _CALLBACK_KINDS:
            raise ValueError("callback faults must be 'lose' or 'duplicate'")
        if self.endpoint != "callback" and value in _CALLBACK_KINDS:
            raise ValueError(f"{value!r} faults only apply to the callback endpoint")

    @probability.validator
    def _check_probability(
        self, attribute: attrs.Attribute[float | None], value: float | None
    ) -> None:
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"Fault probability must be from 0 to 1 (got {value})")

    @when.validator
    def _check_when(self, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value not in (None, "before", "after"):
            raise ValueError(f"Fault when must be 'before' or 'after' (got {value!r})")

    @property
    def http_status(self) -> int | None:
        """The HTTP status this fault answers with, when its kind is a status code."""
        return _as_status(self.kind)

    @property
    def kind_name(self) -> str:
        """The kind as text (``"429"``, ``"stall"``...)."""
        return str(self.kind)

    @property
    def after(self) -> bool:
        """Whether a faulted submit still creates its job."""
        if self.when is not None:
            return self.when == "after"
        return self.kind in _AFTER_BY_DEFAULT

    def matches(self, endpoint: str) -> bool:
        """Whether this rule watches ``endpoint``."""
        return self.endpoint == endpoint or (self.endpoint == "api" and endpoint in _API_ENDPOINTS)


def _as_status(kind: str | int) -> int | None:
    if isinstance(kind, bool):
        return None
    if isinstance(kind, int) or (isinstance(kind, str) and kind.isdigit()):
        code = int(kind)
        return code if 300 <= code <= 599 else None
    return None


@attrs.define
class _Slot:
    fault: Fault
    fired: int = 0
    window: deque[float] = attrs.field(factory=deque)


class FaultPlan:
    """An ordered, mutable list of fault rules with the per-endpoint request counters."""

    def __init__(self, faults: Iterable[Fault] = (), *, seed: int | None = None) -> None:
        self._slots = [_Slot(fault) for fault in faults]
        self._counts: dict[str, int] = {}
        self._rng = random.Random(seed)  # noqa: S311 - fault dice, not cryptography

    @classmethod
    def parse(cls, spec: str, *, seed: int | None = None) -> FaultPlan:
        """Build a plan from the ``--faults`` mini-language (see the module docstring)."""
        return cls(parse_faults(spec), seed=seed)

    @classmethod
    def coerce(
        cls, value: FaultPlan | str | Iterable[Fault] | None, *, seed: int | None = None
    ) -> FaultPlan:
        """Return ``value`` as a plan: a plan as is, a spec string parsed, a list wrapped."""
        if isinstance(value, FaultPlan):
            return value
        if value is None:
            return cls(seed=seed)
        if isinstance(value, str):
            return cls.parse(value, seed=seed)
        return cls(value, seed=seed)

    def seed(self, seed: int | None) -> None:
        """Reseed the probability dice."""
        self._rng.seed(seed)

    def add(self, fault: Fault) -> Fault:
        """Append a rule and return it."""
        self._slots.append(_Slot(fault))
        return fault

    def remove(self, fault: Fault) -> None:
        """Remove a rule added earlier."""
        self._slots = [slot for slot in self._slots if slot.fault is not fault]

    def clear(self) -> None:
        """Remove every rule and reset the request counters."""
        self._slots.clear()
        self._counts.clear()

    def __iter__(self) -> Iterator[Fault]:
        return iter([slot.fault for slot in self._slots])

    def __len__(self) -> int:
        return len(self._slots)

    def __repr__(self) -> str:
        return f"FaultPlan({[slot.fault for slot in self._slots]!r})"

    def fired(self, fault: Fault) -> int:
        """Return how many times ``fault`` has fired."""
        return sum(slot.fired for slot in self._slots if slot.fault is fault)

    def pick(self, endpoint: str, *, now: float, task_age: float | None = None) -> Fault | None:
        """Count one request to ``endpoint`` and return the fault to inject, if any.

        Args:
            endpoint: the endpoint name.
            now: the emulated time in seconds (for ``rate``).
            task_age: emulated seconds since the request's task was submitted (for ``within``).
        """
        number = self._counts.get(endpoint, 0) + 1
        self._counts[endpoint] = number
        chosen: Fault | None = None
        for slot in self._slots:
            fault = slot.fault
            if not fault.matches(endpoint):
                continue
            if fault.rate is not None:
                # The limiter's window counts every request it lets through.
                while slot.window and slot.window[0] <= now - 1.0:
                    slot.window.popleft()
            if chosen is None and self._fires(slot, number, now, task_age):
                slot.fired += 1
                chosen = fault
            elif fault.rate is not None:
                slot.window.append(now)
        return chosen

    def _fires(self, slot: _Slot, number: int, now: float, task_age: float | None) -> bool:
        fault = slot.fault
        if fault.times is not None and slot.fired >= fault.times:
            return False
        if fault.every is not None and number % fault.every != 0:
            return False
        if fault.burst_count is not None or fault.burst_start is not None:
            start = fault.burst_start or 1
            count = fault.burst_count or 1
            if not start <= number < start + count:
                return False
        if fault.within is not None and (task_age is None or task_age >= fault.within):
            return False
        if fault.rate is not None and len(slot.window) < fault.rate:
            return False
        return not (fault.probability is not None and self._rng.random() >= fault.probability)


_FLOAT_OPTIONS = ("probability", "within", "rate", "retry_after_date", "seconds", "interval")
_INT_OPTIONS = ("every", "burst_start", "burst_count", "times", "chunk", "bytes", "status")
_STR_OPTIONS = ("retry_after", "retry_after_ms", "message", "word")
_FLAG_OPTIONS = ("html", "endless")
_ALIASES = {"p": "probability", "code": "status", "start": "burst_start", "count": "burst_count"}


def parse_faults(spec: str) -> list[Fault]:
    """Parse the ``--faults`` mini-language into rules; raise ``ValueError`` naming the bad part."""
    faults = []
    for raw_rule in spec.split(";"):
        rule = raw_rule.strip()
        if not rule:
            continue
        head, _, rest = rule.partition(",")
        endpoint, sep, kind = head.partition(":")
        if not sep:
            raise ValueError(
                f"fault rule {rule!r} must start with ENDPOINT:KIND, e.g. 'status:503'"
            )
        options: dict[str, object] = {}
        for raw_option in rest.split(",") if rest else []:
            option = raw_option.strip()
            if not option:
                continue
            name, has_value, value = option.partition("=")
            name = _ALIASES.get(name.strip(), name.strip())
            value = value.strip()
            try:
                if name in ("before", "after") and not has_value:
                    options["when"] = name
                elif name == "burst":
                    start, _, count = value.rpartition(":")
                    options["burst_start"] = int(start) if start else 1
                    options["burst_count"] = int(count)
                elif name in _FLAG_OPTIONS:
                    options[name] = not has_value or value.lower() in ("1", "true", "yes")
                elif not has_value:
                    raise ValueError("needs a value")
                elif name in _FLOAT_OPTIONS:
                    options[name] = float(value)
                elif name in _INT_OPTIONS:
                    options[name] = int(value)
                elif name in _STR_OPTIONS or name == "when":
                    options[name] = value.strip("\"'")
                else:
                    raise ValueError("is not a known option")
            except ValueError as exc:
                raise ValueError(f"fault option {option!r} in {rule!r}: {exc}") from exc
        kind_text = kind.strip()
        kind_value: str | int = int(kind_text) if kind_text.isdigit() else kind_text
        try:
            faults.append(Fault(endpoint=endpoint.strip(), kind=kind_value, **options))  # type: ignore[arg-type]  # options are checked by Fault's validators
        except (TypeError, ValueError) as exc:
            raise ValueError(f"fault rule {rule!r}: {exc}") from exc
    return faults
