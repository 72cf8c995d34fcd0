"""The spend guard, pure parts: a batch's plan, its estimated cost, and duplicate detection.

Seedance prices are not published in the API reference, so an estimate needs the user's
price per second of video (``--price seedance-2=<credits per second>``). Video seconds are
the sum of the jobs' ``duration`` fields. No function here does I/O.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import attrs

from ._jobs import GenerationRequest, request_fingerprint
from ._validation import validate_input

__all__ = [
    "BatchPlan",
    "budget_problem",
    "find_duplicates",
    "format_amount",
    "parse_price",
    "plan_batch",
]


def format_amount(value: float) -> str:
    """Return credits or seconds for people: ``1000000``, ``12.5`` (never ``1e+06``)."""
    if value == int(value):
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def parse_price(text: str) -> tuple[str, float]:
    """Parse ``MODEL=CREDITS_PER_SECOND`` (e.g. ``seedance-2=20``).

    Raises:
        ValueError: the text is not of that form or the price is not a number >= 0.
    """
    model, sep, value = text.partition("=")
    model = model.strip()
    try:
        price = float(value)
    except ValueError:
        price = math.nan
    if not sep or not model or not math.isfinite(price) or price < 0:
        raise ValueError(
            f"a price must look like MODEL=CREDITS_PER_SECOND, e.g. seedance-2=20 (got {text!r})"
        )
    return model, price


@attrs.frozen(kw_only=True)
class BatchPlan:
    """What a batch would do: jobs, models, video seconds and the estimated credits.

    Attributes:
        jobs: the number of jobs planned for submission.
        jobs_by_model / seconds_by_model: per model id.
        credits_by_model: estimated credits for the models with a known price.
        unpriced_models: models without a price (their cost is not in the estimate).
    """

    jobs: int
    jobs_by_model: dict[str, int]
    seconds_by_model: dict[str, float]
    credits_by_model: dict[str, float]
    unpriced_models: tuple[str, ...]

    @property
    def video_seconds(self) -> float:
        """Seconds of video the batch asks for."""
        return sum(self.seconds_by_model.values())

    @property
    def estimated_credits(self) -> float | None:
        """Estimated credits for the whole batch, or ``None`` when a model has no price."""
        if self.unpriced_models:
            return None
        return sum(self.credits_by_model.values())

    def describe(self) -> str:
        """Return the plan as a few human-readable lines."""
        lines = [f"Plan: {self.jobs} job{'s' if self.jobs != 1 else ''}, "
                 f"{format_amount(self.video_seconds)} s of video"]  # fmt: skip
        for model in sorted(self.jobs_by_model):
            seconds = format_amount(self.seconds_by_model[model])
            line = f"  {model}: {self.jobs_by_model[model]} jobs, {seconds} s"
            if model in self.credits_by_model:
                line += f", ~{format_amount(self.credits_by_model[model])} credits"
            else:
                line += f", price unknown (pass --price {model}=CREDITS_PER_SECOND)"
            lines.append(line)
        total = self.estimated_credits
        if total is not None:
            lines.append(f"  estimated total: {format_amount(total)} credits")
        return "\n".join(lines) + "\n"


def plan_batch(
    requests: Sequence[GenerationRequest], prices: Mapping[str, float] | None = None
) -> BatchPlan:
    """Return the plan of ``requests`` with credits estimated from ``prices`` (per second)."""
    prices = dict(prices or {})
    jobs: Counter[str] = Counter()
    seconds: defaultdict[str, float] = defaultdict(float)
    for request in requests:
        jobs[request.model] += 1
        seconds[request.model] += _duration(request)
    credits = {model: seconds[model] * prices[model] for model in jobs if model in prices}
    return BatchPlan(
        jobs=sum(jobs.values()),
        jobs_by_model=dict(jobs),
        seconds_by_model=dict(seconds),
        credits_by_model=credits,
        unpriced_models=tuple(sorted(model for model in jobs if model not in prices)),
    )


def _duration(request: GenerationRequest) -> float:
    data = request.input
    value = data.get("duration") if isinstance(data, Mapping) else getattr(data, "duration", None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def budget_problem(
    plan: BatchPlan, *, balance: float | None = None, max_credits: float | None = None
) -> str | None:
    """Return why the batch must not start (a message with a fix), or ``None`` when it may.

    ``max_credits`` is a hard ceiling on the estimate; ``balance`` the account's credits.
    Without a price for every model, ``max_credits`` cannot be checked and is refused.
    """
    estimate = plan.estimated_credits
    if max_credits is not None:
        if estimate is None:
            missing = ", ".join(plan.unpriced_models)
            return (
                f"--max-credits {format_amount(max_credits)} needs a price for every model; "
                f"missing: {missing}. HINT: add --price MODEL=CREDITS_PER_SECOND"
            )
        if estimate > max_credits:
            return (
                f"the batch is estimated at {format_amount(estimate)} credits, above "
                f"--max-credits {format_amount(max_credits)}; nothing was submitted. "
                "HINT: split the input or raise the limit"
            )
    if balance is not None and estimate is not None and estimate > balance:
        return (
            f"the batch is estimated at {format_amount(estimate)} credits but the balance is "
            f"{format_amount(balance)}; nothing was submitted. "
            "HINT: top up your Vidgo credits or run fewer jobs"
        )
    if balance is not None and balance <= 0 and plan.jobs:
        return "the balance is 0 credits; nothing was submitted. HINT: top up your Vidgo credits"
    return None


def find_duplicates(
    requests: Sequence[GenerationRequest],
) -> tuple[dict[str, int], list[list[str]]]:
    """Return repeated keys (with their counts) and groups of keys with identical requests.

    Identical requests (same model and input) would create, and bill, the same video twice.
    """
    keys = Counter(request.key for request in requests if request.key is not None)
    repeated = {key: count for key, count in keys.items() if count > 1}
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for index, request in enumerate(requests):
        # Only a fingerprint: the submit path refuses unknown ids (unless the client allows them).
        prepared = validate_input(request.model, request.input, allow_unknown_models=True)
        name = request.key if request.key is not None else f"#{index + 1}"
        groups[request_fingerprint(request.model, prepared)].append(name)
    identical = [names for names in groups.values() if len(names) > 1]
    return repeated, identical
