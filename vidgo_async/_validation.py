"""The one input validation engine: the catalog's facts plus the prose rules, compiled.

``validate_input(model, input)`` returns the ``input`` object exactly as it would be sent
(``None`` fields omitted, tuples as lists) or raises ``InputValidationError`` naming every
broken rule as ``$.input.field`` + rule + value. The client, the orchestrator, the CLI,
the typed inputs and the emulator all call it, so a rule exists in one place.

The submit path is hot: each model's checker is compiled once (closures per field with
their limits bound), so validating a usual input is a handful of dict look-ups.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

from ._catalog import FieldSpec, ModelSpec, catalog
from ._cross_rules import CrossRule, rules_for
from ._errors import InputValidationError, UnknownModelError, ValidationIssue

__all__ = ["TypedInput", "check_json_object", "validate_input"]

Issues = list[ValidationIssue]
Check = Callable[[Any, str, Issues], None]
_ObjectCheck = Callable[[Mapping[Any, Any], Issues], None]

INPUT_PATH = "$.input"
MAX_URL_LENGTH = 2048
MAX_MODEL_ID_LENGTH = 128
_MAX_DEPTH = 64


@runtime_checkable
class TypedInput(Protocol):
    """A typed input (``ModelInput``): the model ids it is for and its JSON object."""

    MODELS: ClassVar[tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        """Return the ``input`` object as sent."""
        ...


# -- leaf checks -------------------------------------------------------------------------


def _text_issue(value: str, path: str) -> ValidationIssue | None:
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
def _url_rule(url: str) -> str | None:
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
    rule = _url_rule(url)
    return None if rule is None else ValidationIssue(path, rule, url)


def _choices(values: tuple[Any, ...]) -> str:
    return ", ".join(repr(value) for value in values)


def _json_issues(value: object, path: str, issues: Issues, depth: int = 0) -> None:
    """Check that ``value`` is a JSON value (for fields the catalog does not describe)."""
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return
    if kind is str:
        issue = _text_issue(value, path)  # type: ignore[arg-type]  # kind is str
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
        issue = _text_issue(value, path)
        if issue is not None:
            issues.append(issue)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _json_issues(item, f"{path}[{index}]", issues, depth + 1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                issues.append(ValidationIssue(f"{path}.{key!r}", "must be a string key", key))
                continue
            _json_issues(key, f"{path}.{key}", issues, depth + 1)
            _json_issues(item, f"{path}.{key}", issues, depth + 1)
    else:
        issues.append(
            ValidationIssue(path, f"must be a JSON value, not a {type(value).__name__}", value)
        )


# -- compiling a field -------------------------------------------------------------------


def _string_check(spec: FieldSpec) -> Check:
    enum = frozenset(spec.enum) if spec.enum is not None else None
    enum_text = f"must be one of {_choices(spec.enum)}" if spec.enum is not None else ""
    min_length, max_length = spec.min_length, spec.max_length
    regex = re.compile(spec.pattern) if spec.pattern is not None else None
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
        text_issue = _text_issue(value, path)
        if text_issue is not None:
            issues.append(text_issue)
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
            issues.append(ValidationIssue(path, f"must match {regex.pattern}", value))
        if is_url:
            url_issue = _url_issue(value, path)
            if url_issue is not None:
                issues.append(url_issue)

    return check


def _bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {low:g} to {high:g}"
    if low is not None:
        return f"of at least {low:g}"
    return f"of at most {high:g}"


def _number_check(spec: FieldSpec) -> Check:
    integer = spec.type == "integer"
    noun = "an integer" if integer else "a number"
    enum = frozenset(spec.enum) if spec.enum is not None else None
    enum_text = f"must be one of {_choices(spec.enum)}" if spec.enum is not None else ""
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
    item_check = _compile(spec.items) if spec.items is not None else _any_json
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
    variants = tuple(_compile(variant) for variant in spec.one_of)
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
    _json_issues(value, path, issues)


def _compile(spec: FieldSpec) -> Check:
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
        object_check = _object_check(
            spec.fields, closed=not spec.additional_properties, owner="this object"
        )

        def check(value: Any, path: str, issues: Issues) -> None:
            object_check(value, path, issues)

        return check
    return _any_json


def _object_check(
    fields: tuple[FieldSpec, ...],
    *,
    closed: bool,
    owner: str,
    any_of_required: tuple[tuple[str, ...], ...] = (),
    fixed_path: str | None = None,
) -> Check:
    """Return the checker of an object; ``fixed_path`` precomputes the field paths."""
    checkers = {field.name: _compile(field) for field in fields}
    paths = {field.name: f"{fixed_path}.{field.name}" for field in fields} if fixed_path else None
    required = tuple(field.name for field in fields if field.required)
    known = ", ".join(field.name for field in fields)
    unknown_text = f"is not a field of {owner} (known fields: {known})"
    groups_text = "needs " + " or ".join(" + ".join(group) for group in any_of_required)

    def check(data: Any, path: str, issues: Issues) -> None:
        if not isinstance(data, Mapping):
            issues.append(
                ValidationIssue(
                    path, "must be an object (a mapping of field names to values)", data
                )
            )
            return
        for key, value in data.items():
            field_check = checkers.get(key)
            if field_check is None:
                if type(key) is not str:
                    issues.append(
                        ValidationIssue(f"{path}.{key!r}", "must be a string field name", key)
                    )
                elif closed:
                    issues.append(ValidationIssue(f"{path}.{key}", unknown_text, value))
                else:
                    _json_issues(key, f"{path}.{key}", issues)
                    _json_issues(value, f"{path}.{key}", issues)
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


# -- compiling the prose rules -----------------------------------------------------------


def _has_issue(issues: Issues, path: str) -> bool:
    return any(issue.field == path for issue in issues)


def _cross_check(rule: CrossRule, model: str) -> _ObjectCheck | None:
    path = f"{INPUT_PATH}.{rule.field}"
    source = f"(per {rule.page})"
    if rule.kind == "excludes":
        text = (
            f"cannot be combined with {{}} (use first/last frames or references, not both) {source}"
        )

        def excludes(data: Mapping[Any, Any], issues: Issues) -> None:
            if data.get(rule.field) is None:
                return
            clashing = [other for other in rule.others if data.get(other) is not None]
            if clashing:
                issues.append(
                    ValidationIssue(path, text.format(", ".join(clashing)), data[rule.field])
                )

        return excludes
    if rule.kind == "needs_one_of":
        text = f"needs at least one of {', '.join(rule.others)} {source}"

        def needs_one_of(data: Mapping[Any, Any], issues: Issues) -> None:
            value = data.get(rule.field)
            if value is not None and all(data.get(other) is None for other in rule.others):
                issues.append(ValidationIssue(path, text, value))

        return needs_one_of
    if rule.kind == "max_total":
        text = f"must hold at most {rule.limit} files in total across {', '.join(rule.others)} {source}"

        def max_total(data: Mapping[Any, Any], issues: Issues) -> None:
            total = 0
            for name in rule.others:
                value = data.get(name)
                if isinstance(value, list | tuple):
                    total += len(value)
            if total > rule.limit:
                issues.append(ValidationIssue(INPUT_PATH, text, total))

        return max_total
    if rule.kind == "only_values":
        allowed = frozenset(rule.values)
        text = f"must be one of {_choices(rule.values)} for {model} {source}"

        def only_values(data: Mapping[Any, Any], issues: Issues) -> None:
            value = data.get(rule.field)
            if value is None or (isinstance(value, str) and value in allowed):
                return
            if not _has_issue(issues, path):
                issues.append(ValidationIssue(path, text, value))

        return only_values
    if rule.kind == "length":
        low, high = rule.values

        def length(data: Mapping[Any, Any], issues: Issues) -> None:
            value = data.get(rule.field)
            if not isinstance(value, str) or _has_issue(issues, path):
                return
            if len(value.strip()) < low:
                issues.append(
                    ValidationIssue(
                        path, f"must have at least {low} non-blank characters {source}", value
                    )
                )
            elif len(value) > high:
                issues.append(
                    ValidationIssue(
                        path,
                        f"must be at most {high} characters (has {len(value)}) {source}",
                        value,
                    )
                )

        return length
    return None  # "closed" is applied when the object checker is compiled


class _ModelValidator:
    """The compiled checks of one catalogued model."""

    __slots__ = ("cross", "fields", "model")

    def __init__(self, spec: ModelSpec) -> None:
        rules = rules_for(spec.id)
        closed = not spec.additional_properties or any(rule.kind == "closed" for rule in rules)
        self.model = spec.id
        self.fields = _object_check(
            spec.fields,
            closed=closed,
            owner=spec.id,
            any_of_required=spec.any_of_required,
            fixed_path=INPUT_PATH,
        )
        cross = (_cross_check(rule, spec.id) for rule in rules)
        self.cross = tuple(check for check in cross if check is not None)

    def issues(self, data: Any) -> Issues:
        issues: Issues = []
        self.fields(data, INPUT_PATH, issues)
        if isinstance(data, Mapping):
            for cross in self.cross:
                cross(data, issues)
        return issues


_VALIDATORS: dict[str, _ModelValidator] = {}


def _validator(model: str) -> _ModelValidator | None:
    validator = _VALIDATORS.get(model)
    if validator is None:
        spec = catalog().models.get(model)
        if spec is None:
            return None
        validator = _VALIDATORS[model] = _ModelValidator(spec)
    return validator


# -- the entry points --------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Return ``value`` as JSON-ready builtins (tuples as lists, mappings as dicts)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float:
        return value
    if isinstance(value, list | tuple):
        if all(type(item) is str for item in value):
            return list(value)
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items() if item is not None}
    return value


def check_json_object(data: object, path: str = INPUT_PATH) -> Issues:
    """Return the issues of ``data`` as a JSON object of JSON values (nothing more)."""
    if not isinstance(data, Mapping):
        return [
            ValidationIssue(path, "must be an object (a mapping of field names to values)", data)
        ]
    issues: Issues = []
    _json_issues(data, path, issues)
    return issues


def _model_id_issues(model: object) -> Issues:
    if not isinstance(model, str):
        return [ValidationIssue("$.model", "must be a string model id such as 'seedance-2'", model)]
    if (
        not model
        or len(model) > MAX_MODEL_ID_LENGTH
        or any(ch.isspace() or ord(ch) < 32 for ch in model)
    ):
        return [
            ValidationIssue(
                "$.model",
                f"must be a non-empty model id of at most {MAX_MODEL_ID_LENGTH} characters without spaces",
                model,
            )
        ]
    issue = _text_issue(model, "$.model")
    return [issue] if issue is not None else []


def suggest_models(model: str, limit: int = 3) -> list[str]:
    """Return the catalogued ids closest to ``model`` (for "did you mean")."""
    ids = list(catalog().models)
    lowered = {known.lower(): known for known in ids}
    matches = difflib.get_close_matches(model.lower(), list(lowered), n=limit, cutoff=0.6)
    return [lowered[match] for match in matches]


def validate_input(
    model: str,
    input: TypedInput | Mapping[str, Any],
    *,
    allow_unknown_models: bool = False,
) -> dict[str, Any]:
    """Check ``input`` for ``model`` and return the ``input`` object exactly as it is sent.

    ``None`` fields are left out and tuples become lists; nothing is sent by this call.
    A model id that the catalog does not know is refused unless ``allow_unknown_models``
    is set, in which case the input only has to be a JSON object of JSON values.

    Raises:
        UnknownModelError: ``model`` is not a documented id (with "did you mean").
        InputValidationError: naming every broken rule (field path, rule, value).
    """
    validator = _validator(model) if type(model) is str else None
    if type(input) is not dict and isinstance(input, TypedInput) and not isinstance(input, Mapping):
        if model not in input.MODELS:
            raise InputValidationError(
                [
                    ValidationIssue(
                        INPUT_PATH,
                        f"is a {type(input).__name__}, which is for {', '.join(input.MODELS)}, "
                        f"not {model!r}",
                        type(input).__name__,
                    )
                ]
            )
        data: Any = input.to_dict()
    else:
        data = input
    if validator is None:
        issues = _model_id_issues(model)
        if issues:
            raise InputValidationError(issues)
        if not allow_unknown_models:
            raise UnknownModelError(model, suggest_models(model))
        issues = check_json_object(data)
    else:
        issues = validator.issues(data)
    if issues:
        raise InputValidationError(issues)
    return {key: _plain(value) for key, value in data.items() if value is not None}
