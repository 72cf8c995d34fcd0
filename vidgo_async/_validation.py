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
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from ._catalog import ModelSpec, catalog
from ._cross_checks import INPUT_PATH, compile_rule
from ._cross_rules import rules_for
from ._errors import InputValidationError, UnknownModelError, ValidationIssue
from ._field_checks import Issues, json_issues, object_check, text_issue

__all__ = ["TypedInput", "check_json_object", "check_submit_fields", "validate_input"]

MAX_MODEL_ID_LENGTH = 128


@runtime_checkable
class TypedInput(Protocol):
    """A typed input (``ModelInput``): the model ids it is for and its JSON object."""

    MODELS: ClassVar[tuple[str, ...]]

    def to_dict(self) -> dict[str, Any]:
        """Return the ``input`` object as sent."""
        ...


# -- compiling a model -------------------------------------------------------------------


class _ModelValidator:
    """The compiled checks of one catalogued model."""

    __slots__ = ("cross", "fields", "model", "names", "unknown_text")

    def __init__(self, spec: ModelSpec) -> None:
        self.model = spec.id
        self.names = frozenset(field.name for field in spec.fields)
        # Every catalogued model refuses fields outside its schema, open or not: a misspelt
        # field would otherwise be sent and billed as if absent. The unknown names are
        # found here (with a "did you mean"), so the field checker never sees them.
        self.fields = object_check(
            spec.fields,
            closed=False,
            owner=spec.id,
            any_of_required=spec.any_of_required,
            fixed_path=INPUT_PATH,
        )
        known = ", ".join(field.name for field in spec.fields)
        self.unknown_text = f"is not a field of {spec.id}{{}} (known fields: {known})"
        defaults = {field.name: field.default for field in spec.fields}
        # Each rule with the fields it reads: it cannot apply (and is not called) when
        # none of them is in the input, as in most inputs for most rules.
        self.cross = tuple(compile_rule(rule, spec.id, defaults) for rule in rules_for(spec.id))

    def unknown_issue(self, name: str, value: Any) -> ValidationIssue:
        """Refuse the field ``name``, suggesting the closest field of this model."""
        close = difflib.get_close_matches(name, sorted(self.names), n=1, cutoff=0.6)
        hint = f"; did you mean `{close[0]}`?" if close else "; leave it out"
        return ValidationIssue(f"{INPUT_PATH}.{name}", self.unknown_text.format(hint), value)


@functools.cache
def _validators() -> Mapping[str, _ModelValidator]:
    """Compile every model's checks once, when the catalog is first needed (a few ms)."""
    return {model: _ModelValidator(spec) for model, spec in catalog().models.items()}


# -- the entry points --------------------------------------------------------------------


# The JSON value types ``_plain`` returns unchanged.
_AS_IS = frozenset((str, int, bool, float))


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
    json_issues(data, path, issues)
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
    issue = text_issue(model, "$.model")
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
    validator = _validators().get(model) if type(model) is str else None
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
        # The model's checks: unknown names, its fields, then each prose rule that reads
        # a field present (in validate_input's own frame, the one caller).
        issues = []
        if type(data) is dict or isinstance(data, Mapping):
            names = validator.names
            unknown = (
                ()
                if names.issuperset(data)
                else [
                    key
                    for key, value in data.items()
                    # None is never sent, whatever its name; the field checker names a
                    # key that is not a string.
                    if key not in names and type(key) is str and value is not None
                ]
            )
            if unknown:
                issues.extend(validator.unknown_issue(key, data[key]) for key in unknown)
                data = {key: value for key, value in data.items() if key not in unknown}
            validator.fields(data, INPUT_PATH, issues)
            for fields, cross in validator.cross:
                if not fields:
                    cross(data, issues)
                    continue
                for name in fields:
                    if name in data:
                        cross(data, issues)
                        break
        else:
            validator.fields(data, INPUT_PATH, issues)
    if issues:
        raise InputValidationError(issues)
    # Strings and numbers are sent as they are: _plain is called for the others only. A
    # loop, not a comprehension: no frame of its own on Python 3.10 and 3.11.
    prepared: dict[str, Any] = {}
    for key, value in data.items():
        if value is not None:
            prepared[key] = value if type(value) in _AS_IS else _plain(value)
    return prepared


def check_submit_fields(model: str, callback_url: object) -> list[ValidationIssue]:
    """The issues of a submit request's own fields for ``model`` (beside its input).

    A model whose submit schema requires ``callback_url`` gets one: its page says the
    result can also be queried without one, but the schema lists it as required, and
    where the docs contradict themselves we are strict in what we send.
    """
    spec = catalog().models.get(model) if type(model) is str else None
    if spec is None or not spec.callback_required or callback_url is not None:
        return []
    return [
        ValidationIssue(
            "$.callback_url",
            f"is required for {model} (per {spec.source}: its submit request lists "
            "callback_url as required); pass callback_url=..., or run the orchestrator "
            "or batch with a callback receiver",
            None,
        )
    ]
