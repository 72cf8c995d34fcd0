"""Read and check a batch's JSONL input, all of it, before anything is submitted."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._errors import InputValidationError, ValidationIssue
from .._filenames import case_collisions
from .._jobs import GenerationRequest
from .._validation import check_submit_fields, validate_input
from ._batch_uploads import LocalFile, swap_local_files

__all__ = ["BatchDefaults", "BatchInputError", "BatchLine", "describe_issue", "read_batch"]

ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,128}")
_FULL_KEYS = frozenset({"id", "model", "input"})
# A shorthand line may set the options it shares with the command line.
_SHORT_OPTIONS = ("duration", "resolution", "aspect_ratio")
_SHORT_KEYS = frozenset({"id", "model", "prompt", *_SHORT_OPTIONS})


@attrs.frozen(kw_only=True)
class BatchDefaults:
    """The command's defaults for shorthand lines (``{"id": ..., "prompt": ...}``)."""

    model: str = "seedance-2"
    duration: int = 5
    resolution: str = "720p"
    aspect_ratio: str = "16:9"
    allow_unknown_models: bool = False

    def describe(self) -> str:
        """Return the defaults as the options that set them."""
        return (
            f"--model {self.model} --duration {self.duration} "
            f"--resolution {self.resolution} --aspect-ratio {self.aspect_ratio}"
        )


@attrs.frozen(kw_only=True)
class BatchLine:
    """One valid job of the input: its line number, id, and the request to run."""

    line: int
    id: str
    request: GenerationRequest
    input: Mapping[str, Any]
    local_files: tuple[LocalFile, ...] = ()  # uploaded before the job is submitted

    @property
    def seconds(self) -> int:
        """The requested video length in seconds (0 when the input names none)."""
        duration = self.input.get("duration")
        return duration if isinstance(duration, int) and not isinstance(duration, bool) else 0


class BatchInputError(Exception):
    """The input file has bad lines; ``problems`` names every one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the input")


def describe_issue(issue: ValidationIssue) -> str:
    """One broken rule, once: a rule that already shows the value is not followed by it again."""
    return f"{issue.field} {issue.rule}" if "(has " in issue.rule else str(issue)


def _check_id(raw: object, line: int) -> tuple[str | None, str | None]:
    if raw is None:
        return str(line), None
    if not isinstance(raw, str) or not ID_PATTERN.fullmatch(raw) or raw.startswith("."):
        return None, (
            f"id must be 1-128 characters of A-Z a-z 0-9 . _ - not starting with a dot "
            f"(got {raw!r})"
        )
    return raw, None


def _parse_line(
    text: str,
    line: int,
    defaults: BatchDefaults,
    base: Path | None = None,
    seen: dict[Path, LocalFile | str] | None = None,
) -> tuple[BatchLine | None, list[str]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, [f"not valid JSON ({exc})"]
    if not isinstance(data, dict):
        return None, [f"must be a JSON object (got {type(data).__name__})"]
    job_id, id_problem = _check_id(data.get("id"), line)
    problems = [id_problem] if id_problem else []
    model = data.get("model", defaults.model)
    if not isinstance(model, str):
        problems.append(f"model must be a string (got {model!r})")
        return None, problems
    if "input" in data:
        unknown = sorted(set(data) - _FULL_KEYS)
        if unknown:
            problems.append(
                f"unknown key(s) {', '.join(unknown)} (a full line has id, model, input)"
            )
        raw_input = data["input"]
        if not isinstance(raw_input, dict):
            problems.append(f"input must be a JSON object (got {type(raw_input).__name__})")
            return None, problems
    elif "prompt" in data:
        unknown = sorted(set(data) - _SHORT_KEYS)
        if unknown:
            problems.append(
                f"unknown key(s) {', '.join(unknown)} (a shorthand line has id, model, prompt, "
                "duration, resolution, aspect_ratio; "
                'put other fields in "input")'
            )
        raw_input = {
            "prompt": data["prompt"],
            "duration": data.get("duration", defaults.duration),
            "resolution": data.get("resolution", defaults.resolution),
            "aspect_ratio": data.get("aspect_ratio", defaults.aspect_ratio),
        }
    else:
        problems.append('needs "input" (an object) or "prompt" (the shorthand)')
        return None, problems
    # Local paths in *_urls lists become placeholder URLs for the one validator call below.
    raw_input, local_files, file_problems = swap_local_files(
        raw_input, base if base is not None else Path.cwd(), seen if seen is not None else {}
    )
    problems.extend(file_problems)
    try:
        prepared = validate_input(
            model, raw_input, allow_unknown_models=defaults.allow_unknown_models
        )
    except InputValidationError as exc:
        problems.extend(describe_issue(issue) for issue in exc.issues)
        return None, problems
    if problems or job_id is None:
        return None, problems
    # A line with local files is known by its placeholders (each file's content hash), not
    # by the URL an upload gets: a rerun that uploads again is still the same job.
    identity = prepared if local_files else None
    request = GenerationRequest(model, prepared, key=job_id, fingerprint_input=identity)
    return BatchLine(
        line=line, id=job_id, request=request, input=prepared, local_files=tuple(local_files)
    ), []


def callback_problems(lines: list[BatchLine]) -> list[str]:
    """The lines whose model's submit needs a callback URL (for a run without callbacks)."""
    return [
        f"line {line.line}: {describe_issue(issue)}"
        for line in lines
        for issue in check_submit_fields(line.request.model, None)
    ]


def read_batch(path: Path, defaults: BatchDefaults) -> list[BatchLine]:
    """Parse and validate every line of ``path``; blank lines are skipped.

    Raises:
        BatchInputError: naming every bad line (``line N: problem``); nothing is returned.
        OSError: the file cannot be read.
    """
    lines: list[BatchLine] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    files: dict[Path, LocalFile | str] = {}
    # utf-8-sig: a byte-order mark (Windows editors write one) is read, not refused as JSON.
    with path.open(encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            parsed, issues = _parse_line(text, number, defaults, path.parent.resolve(), files)
            problems.extend(f"line {number}: {issue}" for issue in issues)
            if parsed is None:
                continue
            if parsed.id in seen:
                problems.append(
                    f"line {number}: id {parsed.id!r} is already used on line {seen[parsed.id]}"
                )
                continue
            seen[parsed.id] = number
            lines.append(parsed)
    for first, second in case_collisions(line.id for line in lines):
        problems.append(
            f"ids {first!r} and {second!r} differ only in case: their video files would be one "
            "file on macOS or Windows (rename one)"
        )
    if problems:
        raise BatchInputError(problems)
    if not lines:
        raise BatchInputError([f"{path}: no jobs (the file has no non-blank lines)"])
    return lines
