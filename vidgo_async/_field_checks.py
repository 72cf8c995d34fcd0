"""The compiled checks of single fields: the catalog's facts turned into closures.

``compile_field(spec)`` returns ``check(value, path, issues)`` with the field's limits
bound once, so the submit path does no schema interpretation; ``object_check`` does the
same for an object (its fields, required names and closed-ness). ``json_issues`` checks
values the catalog does not describe (JSON only). Used by ``_validation`` alone.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ._catalog import FieldSpec, number_text
from ._errors import ValidationIssue

__all__ = [
    "MAX_URL_LENGTH",
    "Check",
    "Issues",
    "choices_text",
    "compile_field",
    "json_issues",
    "object_check",
    "schema_regex",
    "text_issue",
    "url_rule",
]

Issues = list[ValidationIssue]
Check = Callable[[Any, str, Issues], None]

MAX_URL_LENGTH = 2048
_MAX_DEPTH = 64

# -- leaf checks -------------------------------------------------------------------------


def text_issue(value: str, path: str) -> ValidationIssue | None:
    """Refuse strings that cannot be sent as UTF-8 (lone surrogates)."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return ValidationIssue(
            path,
            f"must be valid Unicode text (lone surrogate at index {exc.start}; "
            "decode the text with errors='replace' or fix its source)",
            value,
        )
    return None


_URL_SPACE = re.compile(r"[\s\x00-\x1f]")


@functools.lru_cache(maxsize=4096)
def url_rule(url: str) -> str | None:
    """Return the rule an URL breaks, or ``None``; cached, as batches reuse their URLs."""
    if len(url) > MAX_URL_LENGTH:
        return f"must be a URL of at most {MAX_URL_LENGTH} characters"
    if _URL_SPACE.search(url) is not None:
        return "must be an absolute http(s) URL without spaces"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        return "must be an absolute http(s) URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an absolute http(s) URL with a host (upload local files first)"
    return None


def _url_issue(url: str, path: str) -> ValidationIssue | None:
    """Check that ``url`` is an absolute http(s) URL with a host (media the API fetches)."""
    rule = url_rule(url)
    return None if rule is None else ValidationIssue(path, rule, url)


def choices_text(values: tuple[Any, ...]) -> str:
    return ", ".join(repr(value) for value in values)


def json_issues(value: object, path: str, issues: Issues, depth: int = 0) -> None:
    """Check that ``value`` is a JSON value (for fields the catalog does not describe)."""
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return
    if kind is str:
        issue = text_issue(value, path)  # type: ignore[arg-type]  # kind is str
        if issue is not None:
            issues.append(issue)
        return
    if depth > _MAX_DEPTH:
        issues.append(ValidationIssue(path, f"must nest at most {_MAX_DEPTH} levels", "..."))
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            issues.append(ValidationIssue(path, "must be a finite number", value))
    elif isinstance(value, bool | int):
        return
    elif isinstance(value, str):
        issue = text_issue(value, path)
        if issue is not None:
            issues.append(issue)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            json_issues(item, f"{path}[{index}]", issues, depth + 1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                issues.append(ValidationIssue(f"{path}.{key!r}", "must be a string key", key))
                continue
            json_issues(key, f"{path}.{key}", issues, depth + 1)
            json_issues(item, f"{path}.{key}", issues, depth + 1)
    else:
        issues.append(
            ValidationIssue(path, f"must be a JSON value, not a {type(value).__name__}", value)
        )


# -- compiling a field -------------------------------------------------------------------


def schema_regex(pattern: str) -> re.Pattern[str]:
    """Compile a JSON-schema ``pattern`` (an ECMA-262 regex) with ECMA's meaning.

    Two readings differ in Python: ``\\d``/``\\w`` match any Unicode digit or letter
    (ECMA: ASCII only), and ``$`` also matches before a final newline (ECMA: only at the
    end). So the pattern is compiled ASCII-only, and every ``$`` outside a character
    class becomes ``\\Z``: ``"1024x1024\\n"`` and full-width digits do not pass a size rule.
    """
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            out.append(r"\Z")
            continue
        out.append(char)
    return re.compile("".join(out), re.ASCII)


def _string_check(spec: FieldSpec) -> Check:
    enum = frozenset(spec.enum) if spec.enum is not None else None
    enum_text = f"must be one of {choices_text(spec.enum)}" if spec.enum is not None else ""
    min_length, max_length = spec.min_length, spec.max_length
    regex = schema_regex(spec.pattern) if spec.pattern is not None else None
    is_url = spec.format == "uri"

    def check(value: Any, path: str, issues: Issues) -> None:
        if type(value) is not str:
            if not isinstance(value, str):
                issues.append(ValidationIssue(path, "must be a string", value))
                return
            value = str(value)
        if enum is not None:
            if value not in enum:
                issues.append(ValidationIssue(path, enum_text, value))
            return
        if not value.isascii():  # what text_issue tests first, without its frame
            unicode_issue = text_issue(value, path)
            if unicode_issue is not None:
                issues.append(unicode_issue)
                return
        if min_length is not None and len(value.strip()) < min_length:
            issues.append(
                ValidationIssue(
                    path, f"must have at least {min_length} non-blank characters", value
                )
            )
        if max_length is not None and len(value) > max_length:
            issues.append(
                ValidationIssue(
                    path, f"must be at most {max_length} characters (has {len(value)})", value
                )
            )
        if regex is not None and regex.search(value) is None:
            issues.append(ValidationIssue(path, f"must match {spec.pattern}", value))
        if is_url:
            url_issue = _url_issue(value, path)
            if url_issue is not None:
                issues.append(url_issue)

    return check


def _bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {number_text(low)} to {number_text(high)}"
    if low is not None:
        return f"of at least {number_text(low)}"
    assert high is not None  # noqa: S101 - a bounds text has at least one bound
    return f"of at most {number_text(high)}"


def _number_check(spec: FieldSpec) -> Check:
    integer = spec.type == "integer"
    noun = "an integer" if integer else "a number"
    enum = frozenset(spec.enum) if spec.enum is not None else None
    enum_text = f"must be one of {choices_text(spec.enum)}" if spec.enum is not None else ""
    low = spec.minimum if spec.minimum is not None else -math.inf
    high = spec.maximum if spec.maximum is not None else math.inf
    bounded = spec.minimum is not None or spec.maximum is not None
    range_text = f"must be {noun} {_bounds_text(spec.minimum, spec.maximum)}" if bounded else ""

    def check(value: Any, path: str, issues: Issues) -> None:
        kind = type(value)
        if kind is not int and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (integer and not isinstance(value, int))
        ):
            if integer and isinstance(value, float) and math.isfinite(value) and value.is_integer():
                hint = f"must be an integer, not a float (use {int(value)})"
            else:
                hint = f"must be {noun}"
            issues.append(ValidationIssue(path, hint, value))
            return
        if kind is float and not math.isfinite(value):
            issues.append(ValidationIssue(path, "must be a finite number", value))
            return
        if enum is not None:
            if value not in enum:
                issues.append(ValidationIssue(path, enum_text, value))
            return
        if not low <= value <= high:
            issues.append(ValidationIssue(path, range_text, value))

    return check


def _boolean_check(value: Any, path: str, issues: Issues) -> None:
    if value is not True and value is not False:
        issues.append(ValidationIssue(path, "must be true or false", value))


def _array_check(spec: FieldSpec) -> Check:
    item_check = compile_field(spec.items) if spec.items is not None else _any_json
    min_items, max_items = spec.min_items, spec.max_items
    noun = "a list"

    def check(value: Any, path: str, issues: Issues) -> None:
        if type(value) is not list and (
            isinstance(value, str | bytes) or not isinstance(value, list | tuple)
        ):
            issues.append(ValidationIssue(path, f"must be {noun}", value))
            return
        count = len(value)
        if count == 0:
            issues.append(
                ValidationIssue(path, "must not be an empty list (leave the field out)", value)
            )
            return
        if min_items is not None and count < min_items:
            issues.append(ValidationIssue(path, f"must have at least {min_items} items", value))
        if max_items is not None and count > max_items:
            issues.append(
                ValidationIssue(path, f"must have at most {max_items} items (has {count})", value)
            )
        for index, item in enumerate(value):
            if item is None:
                issues.append(ValidationIssue(f"{path}[{index}]", "must not be null", item))
            else:
                item_check(item, f"{path}[{index}]", issues)

    return check


def _one_of_check(spec: FieldSpec) -> Check:
    variants = tuple(compile_field(variant) for variant in spec.one_of)
    text = "must be " + " or ".join(variant.describe() for variant in spec.one_of)

    def check(value: Any, path: str, issues: Issues) -> None:
        for variant in variants:
            scratch: Issues = []
            variant(value, path, scratch)
            if not scratch:
                return
        issues.append(ValidationIssue(path, text, value))

    return check


def _any_json(value: Any, path: str, issues: Issues) -> None:
    json_issues(value, path, issues)


def compile_field(spec: FieldSpec) -> Check:
    """Return the checker of one field: ``check(value, path, issues)`` (value not None)."""
    if spec.one_of:
        return _one_of_check(spec)
    if spec.type == "string":
        return _string_check(spec)
    if spec.type in ("integer", "number"):
        return _number_check(spec)
    if spec.type == "boolean":
        return _boolean_check
    if spec.type == "array":
        return _array_check(spec)
    if spec.type == "object":
        return object_check(spec.fields, closed=not spec.additional_properties, owner="this object")
    return _any_json


def object_check(
    fields: tuple[FieldSpec, ...],
    *,
    closed: bool,
    owner: str,
    any_of_required: tuple[tuple[str, ...], ...] = (),
    fixed_path: str | None = None,
) -> Check:
    """Return the checker of an object; ``fixed_path`` precomputes the field paths."""
    checkers = {field.name: compile_field(field) for field in fields}
    paths = {field.name: f"{fixed_path}.{field.name}" for field in fields} if fixed_path else None
    required = tuple(field.name for field in fields if field.required)
    known = ", ".join(field.name for field in fields)
    unknown_text = f"is not a field of {owner} (known fields: {known})"
    groups_text = "needs " + " or ".join(" + ".join(group) for group in any_of_required)

    def check(data: Any, path: str, issues: Issues) -> None:
        if type(data) is not dict and not isinstance(data, Mapping):
            issues.append(
                ValidationIssue(
                    path, "must be an object (a mapping of field names to values)", data
                )
            )
            return
        for key, value in data.items():
            field_check = checkers.get(key)
            if field_check is None:
                if value is None and type(key) is str:
                    continue  # None is never sent, whatever its name
                if type(key) is not str:
                    issues.append(
                        ValidationIssue(f"{path}.{key!r}", "must be a string field name", key)
                    )
                elif closed:
                    issues.append(ValidationIssue(f"{path}.{key}", unknown_text, value))
                else:
                    json_issues(key, f"{path}.{key}", issues)
                    json_issues(value, f"{path}.{key}", issues)
            elif value is not None:
                field_check(value, paths[key] if paths else f"{path}.{key}", issues)
        for name in required:
            if data.get(name) is None:
                issues.append(ValidationIssue(f"{path}.{name}", "is required", None))
        if any_of_required and not any(
            all(data.get(name) is not None for name in group) for group in any_of_required
        ):
            issues.append(ValidationIssue(path, groups_text, None))

    return check
