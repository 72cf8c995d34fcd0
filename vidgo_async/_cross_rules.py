"""The input rules that only the prose pages of the docs state, written once, as data.

The OpenAPI schemas (the catalog) cannot say "this field excludes that one" or "at most
12 files across three fields"; the ``.mdx`` page of each model does (and, now and then, a
field's ``description`` in the schema). Each rule here names the page it comes from (paths
relative to the docs' ``api-manual/``) and the model ids it applies to. ``_cross_checks``
compiles them per model at load; ``vidgo-async models MODEL`` prints them.

Where the docs contradict themselves we are strict in what we send, and the rule says so.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Literal

import attrs

__all__ = ["CROSS_RULES", "SEEDANCE_MODELS", "CrossRule", "rules_for"]

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

# A precondition: (field, values) holds when the field's value, or its documented default
# when it is left out, is one of ``values``; ``()`` means "when the field is set".
Condition = tuple[str, tuple[Any, ...]]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


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
    fix: str = ""
    note: str = ""

    def condition_text(self) -> str:
        """Return the ``when`` conditions as words (empty when the rule always applies)."""
        parts = [
            f"{name} is set"
            if not values
            else f"{name} is {' or '.join(_json(value) for value in values)}"
            for name, values in self.when
        ]
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
        condition = self.condition_text()
        condition = f" {condition}" if condition else ""
        note = f"; {self.note}" if self.note else ""
        return f"{text}{condition} ({self.page}{note})"


# -- the Seedance families -----------------------------------------------------------------

_SEEDANCE_RULES = (
    # -- the legacy ids (one schema for both; the prose narrows per id) ---------------
    CrossRule(
        kind="excludes",
        models=_LEGACY,
        page="video-series/seedance-2.mdx",
        field="image_urls",
        others=_REFERENCES,
        fix="use first/last frames or references, not both",
    ),
    CrossRule(
        kind="only_values",
        models=("seedance-2-fast",),
        page="video-series/seedance-2.mdx",
        field="resolution",
        values=("480p", "720p"),
        note="the shared schema lists 1080p and 4k for seedance-2 only",
    ),
    CrossRule(
        kind="length",
        models=_LEGACY,
        page="video-series/seedance-2-0-text-to-video.mdx",
        field="prompt",
        values=(1, 20000),
        note="the legacy page states no bound; the same provider variants take 1–20000",
    ),
    # -- reference sets ---------------------------------------------------------------
    CrossRule(
        kind="needs_one_of",
        models=(*_LEGACY, *_V20_REF, *_V25_REF),
        page="video-series/seedance-2.mdx, video-series/seedance-2-0*-reference-to-video.mdx, "
        "video-series/seedance-2-5-reference-to-video.mdx",
        field="reference_audio_urls",
        others=_VISUAL_REFERENCES,
    ),
    CrossRule(
        kind="max_total",
        models=(*_LEGACY, *_V20_REF),
        page="video-series/seedance-2.mdx, video-series/seedance-2-0*-reference-to-video.mdx",
        others=_REFERENCES,
        limit=12,
    ),
    CrossRule(
        kind="max_total",
        models=_V25_REF,
        page="video-series/seedance-2-5-reference-to-video.mdx",
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
        page="video-series/seedance-2-0*-image-to-video.json, "
        "video-series/seedance-2-5-image-to-video.json",
        field="aspect_ratio",
        values=("auto",),
        note="the prose pages list every ratio, the schema only auto: strict in what we send",
    ),
    # Reference-to-video "needs an image or video reference" and the per-family
    # duration (4–15, 2.5: 4–30) and prompt (1–20000) bounds are in the new ids'
    # schemas (anyOf, minimum/maximum, minLength/maxLength), so not repeated here.
)

# -- the other video families ----------------------------------------------------------------

_VEO_OFFICIAL = ("veo3.1-fast-official", "veo3.1-lite-official", "veo3.1-quality-official")
_VEO_LITE = ("veo3.1-lite-official",)
_KLING_16 = ("kling-1.6/pro", "kling-1.6/standard")
_KLING_30 = ("kling-3.0/pro", "kling-3.0/standard")
_MULTI_SHOTS: tuple[Condition, ...] = (("multi_shots", (True,)),)

_VIDEO_RULES = (
    # -- veo-3-1-official.mdx --------------------------------------------------------------
    CrossRule(
        kind="length",
        models=_VEO_OFFICIAL,
        page="video-series/veo-3-1-official.mdx",
        field="prompt",
        values=(1, 1000),
    ),
    CrossRule(
        kind="only_values",
        models=_VEO_LITE,
        page="video-series/veo-3-1-official.mdx",
        field="resolution",
        values=("720p", "1080p"),
        note="the shared schema lists 4k for the fast and quality ids only",
    ),
    CrossRule(
        kind="items",
        models=_VEO_LITE,
        page="video-series/veo-3-1-official.mdx",
        field="image_urls",
        values=(1, 2),
    ),
    CrossRule(
        kind="only_values",
        models=_VEO_LITE,
        page="video-series/veo-3-1-official.mdx",
        field="generation_type",
        values=("frame",),
    ),
    CrossRule(
        kind="only_values",
        models=_VEO_OFFICIAL,
        page="video-series/veo-3-1-official.mdx",
        field="duration",
        values=(8,),
        when=(("generation_type", ("reference",)),),
    ),
    CrossRule(
        kind="only_values",
        models=_VEO_LITE,
        page="video-series/veo-3-1-official.mdx",
        field="duration",
        values=(8,),
        when=(("resolution", ("1080p",)),),
        note="1080p is the default resolution",
    ),
    CrossRule(
        kind="only_values",
        models=_VEO_OFFICIAL,
        page="video-series/veo-3-1-official.mdx",
        field="aspect_ratio",
        values=("16:9", "9:16"),
        when=(("generation_type", ("reference",)),),
        note="auto is for one-image and two-image workflows",
    ),
    CrossRule(
        kind="requires",
        models=_VEO_OFFICIAL,
        page="video-series/veo-3-1-official.mdx",
        field="aspect_ratio",
        others=("image_urls",),
        when=(("aspect_ratio", ("auto",)),),
        fix="use 16:9 or 9:16 for text-to-video",
    ),
    # -- kling-1-6.mdx ---------------------------------------------------------------------
    CrossRule(
        kind="excludes",
        models=_KLING_16,
        page="video-series/kling-1-6.mdx",
        field="image_urls",
        others=("start_image_url", "end_image_url", "cfg_scale"),
        fix="Elements with image_urls take no frames and no cfg_scale",
    ),
    CrossRule(
        kind="requires",
        models=_KLING_16,
        page="video-series/kling-1-6.mdx",
        field="end_image_url",
        others=("start_image_url",),
    ),
    CrossRule(
        kind="forbidden",
        models=("kling-1.6/standard",),
        page="video-series/kling-1-6.mdx",
        field="end_image_url",
        fix="use kling-1.6/pro for a last frame",
    ),
    CrossRule(
        kind="excludes",
        models=("kling-1.6/standard",),
        page="video-series/kling-1-6.mdx",
        field="aspect_ratio",
        others=("start_image_url",),
        fix="image-to-video follows the start image",
    ),
    # -- kling-2-1.mdx, kling-2-6.mdx ------------------------------------------------------
    CrossRule(
        kind="forbidden",
        models=("kling-2.1/standard",),
        page="video-series/kling-2-1.mdx",
        field="end_image_url",
        fix="use kling-2.1/pro for a last frame",
    ),
    CrossRule(
        kind="only_values",
        models=("kling-2.6",),
        page="video-series/kling-2-6.mdx",
        field="sound",
        values=(False,),
        when=(("end_image_url", ()),),
    ),
    CrossRule(
        kind="requires",
        models=("kling-2.6",),
        page="video-series/kling-2-6.mdx",
        field="end_image_url",
        others=("image_urls",),
        note="a last frame is for image-to-video requests",
    ),
    # -- kling-3-0.mdx (and the multi_prompt, prompt and image_urls descriptions) -----------
    CrossRule(
        kind="only_values",
        models=_KLING_30,
        page="video-series/kling-3-0.mdx",
        field="sound",
        values=(True,),
        when=_MULTI_SHOTS,
    ),
    CrossRule(
        kind="required",
        models=_KLING_30,
        page="video-series/kling-3-0.json",
        field="multi_prompt",
        when=_MULTI_SHOTS,
    ),
    CrossRule(
        kind="required",
        models=_KLING_30,
        page="video-series/kling-3-0.json",
        field="prompt",
        when=(("multi_shots", (False,)),),
        note="multi_shots is false by default",
    ),
    CrossRule(
        kind="item_sum",
        models=_KLING_30,
        page="video-series/kling-3-0.json",
        field="multi_prompt",
        others=("duration",),
        limit=15,
    ),
    CrossRule(
        kind="items",
        models=_KLING_30,
        page="video-series/kling-3-0.json",
        field="image_urls",
        values=(1, 2),
        note="a start frame and an optional end frame",
    ),
    CrossRule(
        kind="items",
        models=_KLING_30,
        page="video-series/kling-3-0.json",
        field="image_urls",
        values=(1, 1),
        when=_MULTI_SHOTS,
        note="multi-shot takes the start frame only",
    ),
    # -- grok-imagine-video-1-5.mdx ---------------------------------------------------------
    CrossRule(
        kind="excludes",
        models=("grok-imagine-video-1.5",),
        page="video-series/grok-imagine-video-1-5.mdx",
        field="image_urls",
        others=("reference_image_urls",),
        fix="a first frame or references, not both",
    ),
    CrossRule(
        kind="excludes",
        models=("grok-imagine-video-1.5",),
        page="video-series/grok-imagine-video-1-5.mdx",
        field="aspect_ratio",
        others=("image_urls",),
        fix="image-to-video follows the first frame",
    ),
    CrossRule(
        kind="only_values",
        models=("grok-imagine-video-1.5",),
        page="video-series/grok-imagine-video-1-5.mdx",
        field="resolution",
        values=("480p", "720p"),
        when=(("reference_image_urls", ()),),
    ),
    # -- hailuo-02.json, hailuo-2-3.mdx -----------------------------------------------------
    CrossRule(
        kind="only_values",
        models=("hailuo-02-pro",),
        page="video-series/hailuo-02.mdx",
        field="duration",
        values=(6,),
        note="6 or 10 seconds is for hailuo-02 only",
    ),
    CrossRule(
        kind="forbidden",
        models=("hailuo-02-pro",),
        page="video-series/hailuo-02.json",
        field="resolution",
        fix="hailuo-02-pro renders 1080P",
    ),
    CrossRule(
        kind="requires",
        models=("hailuo-02", "hailuo-02-pro"),
        page="video-series/hailuo-02.json",
        field="end_image_url",
        others=("image_urls",),
        note="a last frame is for image-to-video",
    ),
    CrossRule(
        kind="only_values",
        models=("hailuo-2.3",),
        page="video-series/hailuo-2-3.mdx",
        field="duration",
        values=(6,),
        when=(("resolution", ("1080p",)),),
    ),
    # -- happy-horse.mdx --------------------------------------------------------------------
    CrossRule(
        kind="excludes",
        models=("happy-horse",),
        page="video-series/happy-horse.mdx",
        field="image_urls",
        others=("reference_image_urls", "video_url"),
        fix="image_urls is for image-to-video only",
    ),
    CrossRule(
        kind="items",
        models=("happy-horse",),
        page="video-series/happy-horse.mdx",
        field="reference_image_urls",
        values=(1, 9),
    ),
    CrossRule(
        kind="items",
        models=("happy-horse",),
        page="video-series/happy-horse.mdx",
        field="reference_image_urls",
        values=(1, 5),
        when=(("video_url", ()),),
    ),
    CrossRule(
        kind="required",
        models=("happy-horse",),
        page="video-series/happy-horse.mdx",
        field="prompt",
        others=("image_urls",),
    ),
    CrossRule(
        kind="requires",
        models=("happy-horse",),
        page="video-series/happy-horse.mdx",
        field="audio_setting",
        others=("video_url",),
        note="audio_setting is for video-edit only",
    ),
    CrossRule(
        kind="excludes",
        models=("happy-horse",),
        page="video-series/happy-horse.mdx",
        field="aspect_ratio",
        others=("image_urls", "video_url"),
        fix="aspect_ratio is for text-to-video and reference-to-video only",
    ),
    CrossRule(
        kind="excludes",
        models=("happy-horse",),
        page="video-series/happy-horse.mdx",
        field="duration",
        others=("video_url",),
        fix="video-edit takes the source video's duration",
    ),
    # -- sora-2-pro-official.mdx ------------------------------------------------------------
    CrossRule(
        kind="requires",
        models=("sora-2-pro-official",),
        page="video-series/sora-2-pro-official.mdx",
        field="aspect_ratio",
        others=("image_urls",),
        when=(("aspect_ratio", ("auto",)),),
        fix="use 16:9 or 9:16 for text-to-video",
    ),
    # -- wan-2-6.json, wan-2-6.mdx ----------------------------------------------------------
    CrossRule(
        kind="forbidden",
        models=("wan2.6-text-to-video", "wan2.6-video-to-video"),
        page="video-series/wan-2-6.json",
        field="image_urls",
        fix="use wan2.6-image-to-video for an image",
    ),
    CrossRule(
        kind="forbidden",
        models=("wan2.6-text-to-video", "wan2.6-image-to-video"),
        page="video-series/wan-2-6.json",
        field="video_urls",
        fix="use wan2.6-video-to-video for a video",
    ),
    CrossRule(
        kind="required",
        models=("wan2.6-image-to-video",),
        page="video-series/wan-2-6.mdx",
        field="image_urls",
        note="the page says it animates a reference image; strict in what we send",
    ),
    CrossRule(
        kind="required",
        models=("wan2.6-video-to-video",),
        page="video-series/wan-2-6.mdx",
        field="video_urls",
        note="the page says it edits an input video; strict in what we send",
    ),
    CrossRule(
        kind="only_values",
        models=("wan2.6-video-to-video",),
        page="video-series/wan-2-6.mdx",
        field="duration",
        values=(5, 10),
    ),
)

# -- the image families ----------------------------------------------------------------------

_EDIT_NEEDS_IMAGES = (
    (("flux-2-pro-edit", "flux-2-flex-edit"), "image-series/flux-2.json"),
    (("flux-kontext-pro-edit", "flux-kontext-max-edit"), "image-series/flux-kontext.mdx"),
    (("gpt-image-2-edit",), "image-series/gpt-image-2.mdx"),
    (("seedream-4-edit",), "image-series/seedream-4.mdx"),
    (("seedream-4.5-edit",), "image-series/seedream-4-5.json"),
)

_IMAGE_RULES = (
    *(
        CrossRule(kind="required", models=models, page=page, field="image_urls")
        for models, page in _EDIT_NEEDS_IMAGES
    ),
    CrossRule(
        kind="forbidden",
        models=("gpt-image-2",),
        page="image-series/gpt-image-2.mdx",
        field="image_urls",
        fix="use gpt-image-2-edit to edit images",
    ),
    CrossRule(
        kind="size",
        models=("gpt-image-2", "gpt-image-2-edit"),
        page="image-series/gpt-image-2.mdx",
        field="size",
        values=(16, 3840, 3, 655_360, 8_294_400),
    ),
    CrossRule(
        kind="max_total",
        models=("seedream-4", "seedream-4-edit"),
        page="image-series/seedream-4.mdx",
        others=("image_urls", "n"),
        limit=15,
        noun="images (inputs plus outputs)",
    ),
    CrossRule(
        kind="items",
        models=("nano-banana-2-new", "nano-banana-2-new-edit"),
        page="image-series/nano-banana-2-new.mdx",
        field="image_urls",
        values=(1, 14),
    ),
)

# -- the music endpoints ---------------------------------------------------------------------

_CUSTOM: tuple[Condition, ...] = (("custom_mode", (True,)),)
_SIMPLE: tuple[Condition, ...] = (("custom_mode", (False,)),)
_CUSTOM_PARAMS: tuple[Condition, ...] = (("default_param_flag", (True,)),)


def _custom_mode_rules(
    model: str, page: str, mode: tuple[Condition, ...], *, persona: bool = True
) -> tuple[CrossRule, ...]:
    """Style and title are required in custom mode; a persona needs custom mode."""
    required = tuple(
        CrossRule(kind="required", models=(model,), page=page, field=name, when=mode)
        for name in ("style", "title")
    )
    if not persona:
        return required
    flag = mode[0][0]
    return (
        *required,
        CrossRule(
            kind="only_values",
            models=(model,),
            page=page,
            field=flag,
            values=(True,),
            when=(("persona_id", ()),),
            note="a persona is for custom mode only",
        ),
    )


def _simple_mode_rules(model: str, page: str) -> tuple[CrossRule, ...]:
    """Without custom mode the prompt is at most 500 characters and style and title stay out."""
    return (
        CrossRule(
            kind="length", models=(model,), page=page, field="prompt", values=(1, 500), when=_SIMPLE
        ),
        *(
            CrossRule(
                kind="forbidden",
                models=(model,),
                page=page,
                field=name,
                when=_SIMPLE,
                fix="set custom_mode to true to give a style and a title",
            )
            for name in ("style", "title")
        ),
    )


def _v4_limits(model: str, page: str, **limits: int) -> tuple[CrossRule, ...]:
    """The V4 model's shorter texts, where the schema gives the V4_5/V5 bound."""
    return tuple(
        CrossRule(
            kind="length",
            models=(model,),
            page=page,
            field=name,
            values=(1, limit),
            when=(("mv", ("V4", "V4_5ALL") if name == "title" else ("V4",)),),
        )
        for name, limit in limits.items()
    )


_GENERATE = "music-series/generate-music.mdx"
_COVER = "music-series/upload-and-cover-audio.mdx"
_EXTEND = "music-series/extend-music.mdx"
_UPLOAD_EXTEND = "music-series/upload-and-extend-audio.mdx"

_MUSIC_RULES = (
    CrossRule(
        kind="greater_than",
        models=("replace-section",),
        page="music-series/replace-section.mdx",
        field="infill_end_s",
        others=("infill_start_s",),
    ),
    # The schemas require ``prompt`` always, which is stricter than the pages; kept.
    *_custom_mode_rules("generate-music", _GENERATE, _CUSTOM),
    *_simple_mode_rules("generate-music", _GENERATE),
    *_v4_limits("generate-music", _GENERATE, prompt=3000, style=200),
    *_custom_mode_rules("upload-and-cover-audio", _COVER, _CUSTOM),
    *_simple_mode_rules("upload-and-cover-audio", _COVER),
    *_v4_limits("upload-and-cover-audio", _COVER, prompt=3000),
    *_custom_mode_rules("extend-music", _EXTEND, _CUSTOM_PARAMS),
    *(
        CrossRule(
            kind="required", models=("extend-music",), page=_EXTEND, field=name, when=_CUSTOM_PARAMS
        )
        for name in ("prompt", "continue_at")
    ),
    *_custom_mode_rules("upload-and-extend-audio", _UPLOAD_EXTEND, _CUSTOM_PARAMS, persona=False),
    CrossRule(
        kind="required",
        models=("upload-and-extend-audio",),
        page=_UPLOAD_EXTEND,
        field="prompt",
        when=(*_CUSTOM_PARAMS, ("instrumental", (False,))),
    ),
    *_v4_limits("upload-and-extend-audio", _UPLOAD_EXTEND, prompt=3000, style=200, title=80),
)

CROSS_RULES: tuple[CrossRule, ...] = (*_SEEDANCE_RULES, *_VIDEO_RULES, *_IMAGE_RULES, *_MUSIC_RULES)


@functools.cache
def rules_for(model: str) -> tuple[CrossRule, ...]:
    """Return the prose rules of ``model`` (none for some models)."""
    return tuple(rule for rule in CROSS_RULES if model in rule.models)
