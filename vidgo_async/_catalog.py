"""The model catalog: every model Vidgo documents, with its input fields and limits.

The facts come from ``_catalog.json``, which ``tools/sync_catalog.py`` derives from the
official docs (one OpenAPI file per model); a test regenerates it and fails on drift. The
file is read once, lazily, on first use. The rules that only the docs' prose pages state
(``_cross_rules``) are attached to each entry as readable sentences.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import attrs

from ._cross_rules import rules_for

__all__ = ["Catalog", "FieldSpec", "ModelSpec", "catalog", "list_models", "number_text"]

_CATALOG_FILE = "_catalog.json"


@attrs.frozen(kw_only=True)
class FieldSpec:
    """One input field (or a list item, or one ``one_of`` variant) and its documented limits.

    ``type`` is a JSON-schema type name (``string``, ``integer``, ``number``, ``boolean``,
    ``array``, ``object``) or ``None`` when the docs only give ``one_of`` variants.
    ``format == "uri"`` marks a URL the API fetches (an absolute http(s) URL).
    """

    name: str
    type: str | None = None
    required: bool = False
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    pattern: str | None = None
    format: str | None = None
    default: Any = None
    items: FieldSpec | None = None
    fields: tuple[FieldSpec, ...] = ()
    additional_properties: bool = True
    one_of: tuple[FieldSpec, ...] = ()

    def describe(self) -> str:
        """Return the type and limits as one short phrase, e.g. ``integer 4–15``."""
        if self.one_of:
            return " | ".join(variant.describe() for variant in self.one_of)
        parts = [self.type or "any"]
        if self.type == "array" and self.items is not None:
            parts = [f"list of {self.items.describe()}"]
        if self.format:
            parts.append(f"({self.format})")
        if self.enum is not None:
            parts.append("one of " + ", ".join(json.dumps(value) for value in self.enum))
        if self.minimum is not None or self.maximum is not None:
            parts.append(_range(self.minimum, self.maximum, ""))
        if self.min_length is not None or self.max_length is not None:
            parts.append(_range(self.min_length, self.max_length, " chars"))
        if self.min_items is not None or self.max_items is not None:
            parts.append(_range(self.min_items, self.max_items, " items"))
        if self.pattern is not None:
            parts.append(f"matching {self.pattern}")
        if self.fields:
            parts.append("{" + ", ".join(field.name for field in self.fields) + "}")
        return " ".join(parts)


def number_text(value: float) -> str:
    """Write a documented bound exactly as the docs give it (``2147483647``, not ``2.14748e+09``)."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e16):
        return str(int(value))
    return repr(value)


def _range(low: float | None, high: float | None, unit: str) -> str:
    if low is not None and high is not None:
        return f"{number_text(low)}–{number_text(high)}{unit}"
    if low is not None:
        return f"≥ {number_text(low)}{unit}"
    assert high is not None  # noqa: S101 - a range has at least one bound
    return f"≤ {number_text(high)}{unit}"


@attrs.frozen(kw_only=True)
class ModelSpec:
    """One documented model id: its kind, its input fields and where the docs say so.

    ``additional_properties`` is ``False`` when fields outside ``fields`` are refused.
    ``any_of_required`` lists field groups of which at least one must be complete.
    ``callback_required``: the model's submit request requires a ``callback_url``.
    ``rules`` are the cross-field rules of the docs' prose pages, as sentences.
    """

    id: str
    kind: str
    source: str
    page: str
    fields: tuple[FieldSpec, ...]
    additional_properties: bool = True
    any_of_required: tuple[tuple[str, ...], ...] = ()
    rules: tuple[str, ...] = ()
    callback_required: bool = False

    def field(self, name: str) -> FieldSpec | None:
        """Return the field called ``name``, if the model has one."""
        for field in self.fields:
            if field.name == name:
                return field
        return None

    @property
    def required(self) -> tuple[str, ...]:
        """The names of the required fields."""
        return tuple(field.name for field in self.fields if field.required)


@attrs.frozen(kw_only=True)
class Catalog:
    """Every catalogued model, by id, and the docs commit the catalog was derived from."""

    docs_commit: str
    models: Mapping[str, ModelSpec]


def _field(name: str, raw: Mapping[str, Any], *, required: bool = False) -> FieldSpec:
    enum = raw.get("enum")
    items = raw.get("items")
    properties: Mapping[str, Any] = raw.get("properties", {})
    needed = set(raw.get("required", ()))
    return FieldSpec(
        name=name,
        type=raw.get("type"),
        required=required,
        enum=tuple(enum) if enum is not None else None,
        minimum=raw.get("minimum"),
        maximum=raw.get("maximum"),
        min_length=raw.get("min_length"),
        max_length=raw.get("max_length"),
        min_items=raw.get("min_items"),
        max_items=raw.get("max_items"),
        pattern=raw.get("pattern"),
        format=raw.get("format"),
        default=raw.get("default"),
        items=_field(f"{name}[]", items) if items is not None else None,
        fields=tuple(
            _field(key, sub, required=key in needed) for key, sub in sorted(properties.items())
        ),
        additional_properties=raw.get("additional_properties", True),
        one_of=tuple(_field(name, variant) for variant in raw.get("one_of", ())),
    )


def _model(raw: Mapping[str, Any]) -> ModelSpec:
    schema = raw["input"]
    root = _field("input", schema)
    return ModelSpec(
        id=raw["id"],
        kind=raw["kind"],
        source=raw["source"],
        page=raw["page"],
        fields=root.fields,
        additional_properties=root.additional_properties,
        any_of_required=tuple(tuple(group) for group in schema.get("any_of_required", ())),
        rules=tuple(rule.describe() for rule in rules_for(raw["id"])),
        callback_required="callback_url" in raw.get("submit_requires", ()),
    )


def parse_catalog(text: str) -> Catalog:
    """Build a :class:`Catalog` from the text of ``_catalog.json``."""
    data = json.loads(text)
    models = {raw["id"]: _model(raw) for raw in data["models"]}
    return Catalog(docs_commit=data["docs_commit"], models=models)


@functools.cache
def catalog() -> Catalog:
    """Return the packaged catalog (read once, on first use)."""
    text = resources.files(__package__).joinpath(_CATALOG_FILE).read_text(encoding="utf-8")
    return parse_catalog(text)


def list_models() -> list[ModelSpec]:
    """Return every model Vidgo documents, sorted by id, with its fields and limits.

    Example::

        for spec in vidgo_async.list_models():
            print(spec.id, spec.kind, spec.required)
    """
    return list(catalog().models.values())
