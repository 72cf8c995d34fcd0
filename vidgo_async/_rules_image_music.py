"""The prose rules of the image families and the music endpoints, as data.

Each rule names its page (relative to the docs' ``api-manual/``). Where the docs
contradict themselves we are strict in what we send, and the rule says so.
"""

from __future__ import annotations

from ._cross_rule import Condition, CrossRule

__all__ = ["IMAGE_RULES", "MUSIC_RULES"]

# -- the image families ----------------------------------------------------------------------

_EDIT_NEEDS_IMAGES = (
    (("flux-2-pro-edit", "flux-2-flex-edit"), "image-series/flux-2.json"),
    (("flux-kontext-pro-edit", "flux-kontext-max-edit"), "image-series/flux-kontext.mdx"),
    (("gpt-image-2-edit",), "image-series/gpt-image-2.mdx"),
    (("seedream-4-edit",), "image-series/seedream-4.mdx"),
    (("seedream-4.5-edit",), "image-series/seedream-4-5.json"),
)

IMAGE_RULES = (
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

MUSIC_RULES = (
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
