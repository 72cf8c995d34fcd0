"""Typed model inputs and the preparation of a submit's ``input`` object.

Each typed input is a frozen attrs class that checks the documented rules (the table in
``_rules``) when it is built, so a bad value fails at the line that made it, before any
request. Optional fields left unset are omitted from the JSON body, never sent as ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs

from ._errors import InputValidationError, ValidationIssue
from ._rules import (
    SEEDANCE_1_0_PRO,
    SEEDANCE_1_5_PRO,
    SEEDANCE_2,
    ModelRules,
    check_input,
    check_model_id,
    rules_for,
)

__all__ = [
    "ModelInput",
    "Seedance2Input",
    "Seedance10ProInput",
    "Seedance15ProInput",
    "input_class_for",
    "prepare_input",
]

AspectRatio = Literal["1:1", "21:9", "4:3", "3:4", "16:9", "9:16"]


def _url_tuple(value: object) -> object:
    """Store URL lists as tuples (so inputs stay immutable); leave anything else to the rules."""
    if isinstance(value, list | tuple):
        return tuple(value)
    return value


class ModelInput:
    """Base of the typed inputs. ``to_dict()`` gives the JSON ``input`` object."""

    RULES: ClassVar[ModelRules]

    def __attrs_post_init__(self) -> None:
        issues = check_input(self.RULES.models[0], self.to_dict())
        if issues:
            raise InputValidationError(issues)

    def to_dict(self) -> dict[str, Any]:
        """Return the ``input`` object as sent: unset (``None``) fields and empty lists are left out."""
        out: dict[str, Any] = {}
        for field in attrs.fields(type(self)):  # type: ignore[arg-type]  # subclasses are attrs classes
            value = getattr(self, field.name)
            if value is None or value == ():
                continue
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, model: str | None = None) -> ModelInput:
        """Build the input from a plain mapping, reporting every broken rule at once."""
        model_id = model or cls.RULES.models[0]
        issues = check_input(model_id, data)
        if issues:
            raise InputValidationError(issues)
        # The mapping was just checked against the same rules: build without checking again.
        self = cls.__new__(cls)
        for name, value in _field_values(cls, data):
            object.__setattr__(self, name, value)
        return self

    @classmethod
    def _checked_body(cls, data: Mapping[str, Any], model: str) -> dict[str, Any]:
        """Return ``cls.from_mapping(data, model=model).to_dict()`` without the instance."""
        issues = check_input(model, data)
        if issues:
            raise InputValidationError(issues)
        out: dict[str, Any] = {}
        for name, default, converter in _fields_of(cls):
            value = data.get(name)
            if value is None:
                value = default
                if value is None:
                    continue  # absent and not sent: no converter call needed
            if converter is not None:
                value = converter(value)
            if value is None or value == ():
                continue
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


@attrs.frozen(kw_only=True)
class Seedance2Input(ModelInput):
    """The input of ``seedance-2`` and ``seedance-2-fast`` (rules documented by Vidgo).

    ``duration`` (seconds, 4–15) and ``resolution`` decide the price, so they are required.
    ``image_urls`` (first and last frame, at most 2) cannot be combined with the
    ``reference_*_urls`` fields; reference limits (9 images, 3 videos, 3 audios, audio
    needing an image or video reference) come from the platform's PoYo documentation.
    """

    RULES: ClassVar[ModelRules] = SEEDANCE_2

    prompt: str
    duration: int
    resolution: Literal["480p", "720p"]
    aspect_ratio: AspectRatio | None = None
    generate_audio: bool | None = None
    seed: int | None = None
    image_urls: Sequence[str] | None = attrs.field(default=None, converter=_url_tuple)
    reference_image_urls: Sequence[str] | None = attrs.field(default=None, converter=_url_tuple)
    reference_video_urls: Sequence[str] | None = attrs.field(default=None, converter=_url_tuple)
    reference_audio_urls: Sequence[str] | None = attrs.field(default=None, converter=_url_tuple)


@attrs.frozen(kw_only=True)
class Seedance15ProInput(ModelInput):
    """The input of ``seedance-1.5-pro``.

    Vidgo has no page for this model; the rules are the platform's PoYo schema [P]:
    prompt 3–2500 characters, ``aspect_ratio`` and ``duration`` (4, 8 or 12) required,
    ``resolution`` 480p/720p/1080p, at most 2 ``image_urls`` (first/last frame).
    """

    RULES: ClassVar[ModelRules] = SEEDANCE_1_5_PRO

    prompt: str
    aspect_ratio: AspectRatio
    duration: Literal[4, 8, 12]
    resolution: Literal["480p", "720p", "1080p"] | None = None
    fixed_lens: bool | None = None
    generate_audio: bool | None = None
    image_urls: Sequence[str] | None = attrs.field(default=None, converter=_url_tuple)


@attrs.frozen(kw_only=True)
class Seedance10ProInput(ModelInput):
    """The input of ``seedance-1.0-pro``.

    Vidgo has no page for this model; the rules are the platform's PoYo schema [P]:
    prompt up to 10000 characters, ``duration`` 5 or 10, ``resolution`` 720p or 1080p,
    at most 1 ``image_urls`` entry (image-to-video).
    """

    RULES: ClassVar[ModelRules] = SEEDANCE_1_0_PRO

    prompt: str
    duration: Literal[5, 10] | None = None
    resolution: Literal["720p", "1080p"] | None = None
    image_urls: Sequence[str] | None = attrs.field(default=None, converter=_url_tuple)


# Per input class: (name, default, converter) of each field, in attrs order.
_FIELDS: dict[type[ModelInput], tuple[tuple[str, Any, Any], ...]] = {}


def _fields_of(cls: type[ModelInput]) -> tuple[tuple[str, Any, Any], ...]:
    """Return (name, default, converter) of each field of ``cls``, in attrs order."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = tuple(
            (
                field.name,
                None if field.default is attrs.NOTHING else field.default,
                field.converter,
            )
            for field in attrs.fields(cls)  # type: ignore[arg-type]  # subclasses are attrs classes
        )
        if any(isinstance(default, attrs.Factory) for _, default, _ in fields):  # type: ignore[arg-type]
            raise TypeError(
                f"{cls.__name__}: factory defaults are not supported"
            )  # pragma: no cover
        _FIELDS[cls] = fields
    return fields


def _field_values(cls: type[ModelInput], data: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Return each field's value as ``cls(**data minus None values)`` would store it."""
    out = []
    for name, default, converter in _fields_of(cls):
        value = data.get(name)
        if value is None:
            value = default
        out.append((name, value if converter is None else converter(value)))
    return out


_INPUT_CLASSES: tuple[type[ModelInput], ...] = (
    Seedance2Input,
    Seedance15ProInput,
    Seedance10ProInput,
)


def input_class_for(model: str) -> type[ModelInput] | None:
    """Return the typed input class of ``model``, or ``None`` when it has none."""
    family = rules_for(model)
    if family is None:
        return None
    for cls in _INPUT_CLASSES:
        if cls.RULES is family:
            return cls
    return None  # pragma: no cover - every rules family has a class


def prepare_input(model: str, value: ModelInput | Mapping[str, Any]) -> dict[str, Any]:
    """Check ``value`` for ``model`` and return the JSON ``input`` object to send.

    A typed input must belong to ``model``. A mapping for a model with a typed input is
    checked against the same rules; a mapping for any other model is sent as given,
    minus ``None`` values, once it is known to be JSON-serialisable.

    Raises:
        InputValidationError: naming every broken rule, before anything is sent.
    """
    issues = check_model_id(model)
    if issues:
        raise InputValidationError(issues)
    if isinstance(value, ModelInput):
        if model not in value.RULES.models:
            raise InputValidationError(
                [
                    ValidationIssue(
                        "$.input",
                        f"is a {type(value).__name__}, which is for {', '.join(value.RULES.models)}, "
                        f"not {model!r}",
                        type(value).__name__,
                    )
                ]
            )
        return value.to_dict()
    if not isinstance(value, Mapping):
        raise InputValidationError(
            [ValidationIssue("$.input", "must be a typed input or a mapping of fields", value)]
        )
    cls = input_class_for(model)
    if cls is not None:
        return cls._checked_body(value, model)
    issues = check_input(model, value)
    if issues:
        raise InputValidationError(issues)
    body = {key: item for key, item in value.items() if item is not None}
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputValidationError(
            [ValidationIssue("$.input", f"must be JSON-serialisable ({exc})", type(value).__name__)]
        ) from exc
    return body
