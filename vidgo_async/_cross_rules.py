"""The input rules that only the prose pages of the docs state, written once, as data.

The OpenAPI schemas (the catalog) cannot say "this field excludes that one" or "at most
12 files across three fields"; the ``.mdx`` page of each model does. Each rule here names
the page it comes from (paths relative to the docs' ``api-manual/video-series/``) and the
model ids it applies to. ``_validation`` compiles them per model at load; ``vidgo-async
models MODEL`` prints them.

Where the docs contradict themselves we are strict in what we send, and the rule says so.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import attrs

__all__ = ["CROSS_RULES", "SEEDANCE_MODELS", "CrossRule", "rules_for"]

RuleKind = Literal["excludes", "needs_one_of", "max_total", "only_values", "length"]

_MODES = ("text-to-video", "image-to-video", "reference-to-video")
_LEGACY = ("seedance-2", "seedance-2-fast")
_V20_FAMILIES = ("seedance-2.0", "seedance-2.0-fast", "seedance-2.0-mini")


def _ids(families: tuple[str, ...], modes: tuple[str, ...] = _MODES) -> tuple[str, ...]:
    return tuple(f"{family}/{mode}" for family in families for mode in modes)


_V20 = _ids(_V20_FAMILIES)
_V25 = _ids(("seedance-2.5",))
_V20_REF = _ids(_V20_FAMILIES, ("reference-to-video",))
_V25_REF = _ids(("seedance-2.5",), ("reference-to-video",))
_IMAGE_TO_VIDEO = _ids((*_V20_FAMILIES, "seedance-2.5"), ("image-to-video",))

# Every Seedance id these rules know; a test checks each one is in the catalog.
SEEDANCE_MODELS = (*_LEGACY, *_V20, *_V25, "seedance-1.5-pro", "seedance-1.0-pro")

_REFERENCES = ("reference_image_urls", "reference_video_urls", "reference_audio_urls")
_VISUAL_REFERENCES = ("reference_image_urls", "reference_video_urls")


@attrs.frozen(kw_only=True)
class CrossRule:
    """One rule across fields (or one narrowing of a field) for some model ids.

    ``kind`` decides the meaning:

    - ``excludes``: ``field`` cannot be combined with any of ``others``;
    - ``needs_one_of``: ``field`` needs at least one of ``others``;
    - ``max_total``: the items of ``others`` (lists) add up to at most ``limit``;
    - ``only_values``: ``field`` may only be one of ``values``;
    - ``length``: the string ``field`` has ``values == (min, max)`` characters.

    Fields outside a model's schema are refused for every model (``_validation``), so no
    rule says so.
    """

    kind: RuleKind
    models: tuple[str, ...]
    page: str
    field: str = ""
    others: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()
    limit: int = 0
    note: str = ""

    def describe(self) -> str:
        """Return the rule as one sentence naming its page."""
        if self.kind == "excludes":
            text = f"{self.field} cannot be combined with {', '.join(self.others)}"
        elif self.kind == "needs_one_of":
            text = f"{self.field} needs at least one of {', '.join(self.others)}"
        elif self.kind == "max_total":
            text = f"{' + '.join(self.others)} hold at most {self.limit} files in total"
        elif self.kind == "only_values":
            text = f"{self.field} must be one of {', '.join(map(str, self.values))}"
        else:
            text = f"{self.field} has {self.values[0]}–{self.values[1]} characters"
        note = f"; {self.note}" if self.note else ""
        return f"{text} ({self.page}{note})"


CROSS_RULES: tuple[CrossRule, ...] = (
    # -- the legacy ids (one schema for both; the prose narrows per id) ---------------
    CrossRule(
        kind="excludes",
        models=_LEGACY,
        page="seedance-2.mdx",
        field="image_urls",
        others=_REFERENCES,
    ),
    CrossRule(
        kind="only_values",
        models=("seedance-2-fast",),
        page="seedance-2.mdx",
        field="resolution",
        values=("480p", "720p"),
        note="the shared schema lists 1080p and 4k for seedance-2 only",
    ),
    CrossRule(
        kind="length",
        models=_LEGACY,
        page="seedance-2-0-text-to-video.mdx",
        field="prompt",
        values=(1, 20000),
        note="the legacy page states no bound; the same provider variants take 1–20000",
    ),
    # -- reference sets ---------------------------------------------------------------
    CrossRule(
        kind="needs_one_of",
        models=(*_LEGACY, *_V20_REF, *_V25_REF),
        page="seedance-2.mdx, seedance-2-0*-reference-to-video.mdx, seedance-2-5-reference-to-video.mdx",
        field="reference_audio_urls",
        others=_VISUAL_REFERENCES,
    ),
    CrossRule(
        kind="max_total",
        models=(*_LEGACY, *_V20_REF),
        page="seedance-2.mdx, seedance-2-0*-reference-to-video.mdx",
        others=_REFERENCES,
        limit=12,
    ),
    CrossRule(
        kind="max_total",
        models=_V25_REF,
        page="seedance-2-5-reference-to-video.mdx",
        others=_REFERENCES,
        limit=50,
    ),
    # -- image-to-video ---------------------------------------------------------------
    # 1–2 ``image_urls`` (required) is in the schemas already. The schemas' description
    # says image-to-video "accepts only auto when provided" while the prose pages list
    # every ratio: the docs contradict themselves, so we send only ``auto``.
    CrossRule(
        kind="only_values",
        models=_IMAGE_TO_VIDEO,
        page="seedance-2-0*-image-to-video.json, seedance-2-5-image-to-video.json",
        field="aspect_ratio",
        values=("auto",),
        note="the prose pages list every ratio, the schema only auto: strict in what we send",
    ),
    # Reference-to-video "needs an image or video reference" and the per-family
    # duration (4–15, 2.5: 4–30) and prompt (1–20000) bounds are in the new ids'
    # schemas (anyOf, minimum/maximum, minLength/maxLength), so not repeated here.
)


@functools.cache
def rules_for(model: str) -> tuple[CrossRule, ...]:
    """Return the prose rules of ``model`` (none for most models)."""
    return tuple(rule for rule in CROSS_RULES if model in rule.models)
