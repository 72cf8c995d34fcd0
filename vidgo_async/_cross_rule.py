"""One input rule that only the prose of the docs states: ``CrossRule``, a value.

The OpenAPI schemas (the catalog) cannot say "this field excludes that one" or "at most
12 files across three fields"; the ``.mdx`` page of each model does. A ``CrossRule`` holds
one such rule as data: its kind, the model ids and fields it concerns, and the page it
comes from; ``describe()`` says it in one sentence. The rules themselves are in
``_rules_seedance``, ``_rules_video`` and ``_rules_image_music`` (gathered by
``_cross_rules``); ``_cross_checks`` compiles them into checks.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import attrs

__all__ = ["Condition", "CrossRule", "ItemCount", "RuleKind"]

RuleKind = Literal[
    "excludes",
    "needs_one_of",
    "requires",
    "required",
    "forbidden",
    "max_total",
    "item_sum",
    "only_values",
    "length",
    "items",
    "greater_than",
    "size",
]


@attrs.frozen
class ItemCount:
    """A ``when`` value that a list holds when it has ``count`` items: ``ItemCount(3)``."""

    count: int


# A precondition: (field, values) holds when the field's value, or its documented default
# when it is left out, is one of ``values`` (an ``ItemCount`` among them matches a list of
# that many items); ``()`` means "when the field is set".
Condition = tuple[str, tuple[Any, ...]]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _condition_text(name: str, values: tuple[Any, ...]) -> str:
    if not values:
        return f"{name} is set"
    counts = [str(value.count) for value in values if isinstance(value, ItemCount)]
    plain = [_json(value) for value in values if not isinstance(value, ItemCount)]
    words = [f"is {' or '.join(plain)}"] if plain else []
    if counts:
        words.append(f"has {' or '.join(counts)} item{'' if counts == ['1'] else 's'}")
    return f"{name} {' or '.join(words)}"


@attrs.frozen(kw_only=True)
class CrossRule:
    """One rule across fields (or one narrowing of a field) for some model ids.

    ``kind`` decides the meaning:

    - ``excludes``: ``field`` cannot be combined with any of ``others``;
    - ``needs_one_of``: ``field`` needs at least one of ``others``;
    - ``requires``: ``field`` needs every one of ``others``;
    - ``required``: ``field`` must be set (unless one of ``others`` is);
    - ``forbidden``: ``field`` is not taken by these ids;
    - ``max_total``: the items of ``others`` (lists; an integer counts as its value) add up
      to at most ``limit`` ``noun``;
    - ``item_sum``: the ``others[0]`` key of the objects in the list ``field`` adds up to
      at most ``limit``;
    - ``only_values``: ``field`` may only be one of ``values``;
    - ``length``: the string ``field`` has ``values == (min, max)`` characters;
    - ``items``: the list ``field`` has ``values == (min, max)`` items;
    - ``greater_than``: the number ``field`` is greater than the number ``others[0]``;
    - ``size``: a custom ``WIDTHxHEIGHT`` string ``field`` satisfies ``values == (multiple
      of, max edge, max long/short ratio, min pixels, max pixels)``; presets pass.

    ``when`` makes any rule conditional: it applies only while every condition holds.
    ``each`` makes a rule that names a ``field`` apply to every object of the list ``each``
    instead: ``field``, ``others`` and ``when`` then name keys of the item, and an issue
    names the item, e.g. ``$.input.kling_elements[1].element_input_urls``.
    ``fix`` is what the user should do instead, shown in the error message.
    """

    kind: RuleKind
    models: tuple[str, ...]
    page: str
    field: str = ""
    others: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()
    limit: int = 0
    noun: str = "files"
    when: tuple[Condition, ...] = ()
    each: str = ""
    fix: str = ""
    note: str = ""

    def condition_text(self) -> str:
        """Return the ``when`` conditions as words (empty when the rule always applies)."""
        parts = [_condition_text(name, values) for name, values in self.when]
        return f"when {' and '.join(parts)}" if parts else ""

    def describe(self) -> str:
        """Return the rule as one sentence naming its page."""
        if self.kind == "excludes":
            text = f"{self.field} cannot be combined with {', '.join(self.others)}"
        elif self.kind == "needs_one_of":
            text = f"{self.field} needs at least one of {', '.join(self.others)}"
        elif self.kind == "requires":
            text = f"{self.field} needs {' and '.join(self.others)}"
        elif self.kind == "required":
            unless = f" unless {' or '.join(self.others)} is set" if self.others else ""
            text = f"{self.field} is required{unless}"
        elif self.kind == "forbidden":
            text = f"{self.field} is not supported"
        elif self.kind == "max_total":
            text = f"{' + '.join(self.others)} hold at most {self.limit} {self.noun} in total"
        elif self.kind == "item_sum":
            text = f"the {self.others[0]}s of the {self.field} items add up to at most {self.limit}"
        elif self.kind == "only_values":
            shown = [value if isinstance(value, str) else _json(value) for value in self.values]
            text = f"{self.field} must be {'one of ' if len(shown) > 1 else ''}{', '.join(shown)}"
        elif self.kind == "length":
            text = f"{self.field} has {self.values[0]}–{self.values[1]} characters"
        elif self.kind == "items":
            low, high = self.values
            count = f"exactly {low}" if low == high else f"{low}–{high}"
            text = f"{self.field} has {count} item{'' if high == 1 else 's'}"
        elif self.kind == "greater_than":
            text = f"{self.field} must be greater than {self.others[0]}"
        else:
            multiple, edge, ratio, low, high = self.values
            text = (
                f"a custom WIDTHxHEIGHT {self.field} has both edges divisible by {multiple}, "
                f"at most {edge} px, a ratio of at most {ratio}:1 and {low}–{high} pixels"
            )
        if self.each:
            text = f"in each {self.each} item, {text}"
        condition = self.condition_text()
        condition = f" {condition}" if condition else ""
        note = f"; {self.note}" if self.note else ""
        return f"{text}{condition} ({self.page}{note})"
