"""Tests of the prose rules of every docs page (``_cross_rules``) as the engine applies them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from vidgo_async import InputValidationError, list_models, validate_input
from vidgo_async._cross_rules import CROSS_RULES, CrossRule

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO.parent / "shared" / "vidgo-docs" / "api-manual"
MODELS = {spec.id: spec for spec in list_models()}
IMG = "https://example.com/a.png"
VID = "https://example.com/a.mp4"

KLING_16 = {"prompt": "p", "duration": 5}
KLING_26 = {"prompt": "p", "duration": 5, "aspect_ratio": "1:1", "sound": False}
KLING_30 = {"duration": 8, "image_urls": [IMG], "multi_shots": True, "sound": True}
SHOTS = [{"prompt": "a", "duration": 4}, {"prompt": "b", "duration": 4}]
IMAGES_ELEMENT = {"name": "element_robot", "element_input_urls": [IMG, IMG]}
VIDEO_ELEMENT = {"name": "element_dancer", "element_input_video_urls": [VID]}
KLING_30_ELEMENTS = {
    **KLING_30,
    "multi_prompt": SHOTS,
    "kling_elements": [IMAGES_ELEMENT, VIDEO_ELEMENT],
}
SECTION = {
    "task_id": "t",
    "audio_id": "a",
    "prompt": "p",
    "tags": "t",
    "title": "x",
    "full_lyrics": "l",
    "infill_start_s": 10,
}
MUSIC = {"custom_mode": True, "instrumental": False, "mv": "V5", "prompt": "p"}
COVER = {**MUSIC, "upload_url": "https://example.com/a.mp3"}
EXTEND = {"audio_id": "a", "default_param_flag": False, "mv": "V5"}
UPLOAD_EXTEND = {
    "upload_url": "https://example.com/a.mp3",
    "default_param_flag": False,
    "instrumental": False,
    "continue_at": 60,
    "mv": "V5",
}

# (case id, model, an accepted input, a change that breaks one rule, the field it names)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
    # video-series/veo-3-1-official.mdx
    ("veo-lite-4k", "veo3.1-lite-official", {"prompt": "p"}, {"resolution": "4k"}, "resolution"),
    (
        "veo-lite-3-images",
        "veo3.1-lite-official",
        {"prompt": "p", "image_urls": [IMG] * 2},
        {"image_urls": [IMG] * 3},
        "image_urls",
    ),
    (
        "veo-lite-reference",
        "veo3.1-lite-official",
        {"prompt": "p", "image_urls": [IMG], "generation_type": "frame"},
        {"generation_type": "reference"},
        "generation_type",
    ),
    (
        "veo-prompt-1001",
        "veo3.1-fast-official",
        {"prompt": "p" * 1000},
        {"prompt": "p" * 1001},
        "prompt",
    ),
    (
        "veo-reference-4s",
        "veo3.1-quality-official",
        {"prompt": "p", "image_urls": [IMG] * 3, "generation_type": "reference"},
        {"duration": 4},
        "duration",
    ),
    (
        "veo-reference-auto",
        "veo3.1-fast-official",
        {"prompt": "p", "image_urls": [IMG] * 3, "generation_type": "reference"},
        {"aspect_ratio": "auto"},
        "aspect_ratio",
    ),
    # generation_type, when omitted, "is inferred from image_urls": three images are reference.
    (
        "veo-three-images-4s",
        "veo3.1-fast-official",
        {"prompt": "p", "image_urls": [IMG] * 3},
        {"duration": 4},
        "duration",
    ),
    (
        "veo-three-images-auto",
        "veo3.1-quality-official",
        {"prompt": "p", "image_urls": [IMG] * 3, "aspect_ratio": "9:16"},
        {"aspect_ratio": "auto"},
        "aspect_ratio",
    ),
    (
        "veo-three-images-frame",
        "veo3.1-fast-official",
        {"prompt": "p", "image_urls": [IMG] * 3, "generation_type": "reference"},
        {"generation_type": "frame"},
        "generation_type",
    ),
    (
        "veo-reference-two-images",
        "veo3.1-quality-official",
        {"prompt": "p", "image_urls": [IMG] * 2, "generation_type": "frame"},
        {"generation_type": "reference"},
        "image_urls",
    ),
    (
        "veo-reference-one-image",
        "veo3.1-fast-official",
        {"prompt": "p", "image_urls": [IMG]},
        {"generation_type": "reference"},
        "image_urls",
    ),
    (
        "veo-reference-no-image",
        "veo3.1-fast-official",
        {"prompt": "p", "image_urls": [IMG] * 3, "generation_type": "reference"},
        {"image_urls": None},
        "generation_type",
    ),
    (
        "veo-lite-1080p-by-default-4s",
        "veo3.1-lite-official",
        {"prompt": "p", "duration": 4, "resolution": "720p"},
        {"resolution": None},
        "duration",
    ),
    (
        "veo-auto-without-image",
        "veo3.1-fast-official",
        {"prompt": "p", "aspect_ratio": "auto", "image_urls": [IMG]},
        {"image_urls": None},
        "aspect_ratio",
    ),
    # video-series/kling-1-6.mdx
    (
        "kling16-images-and-start",
        "kling-1.6/pro",
        {**KLING_16, "image_urls": [IMG]},
        {"start_image_url": IMG},
        "image_urls",
    ),
    (
        "kling16-images-and-cfg",
        "kling-1.6/pro",
        {**KLING_16, "image_urls": [IMG]},
        {"cfg_scale": 0.5},
        "image_urls",
    ),
    (
        "kling16-standard-end",
        "kling-1.6/standard",
        {**KLING_16, "start_image_url": IMG},
        {"end_image_url": IMG},
        "end_image_url",
    ),
    (
        "kling16-end-alone",
        "kling-1.6/pro",
        {**KLING_16, "start_image_url": IMG, "end_image_url": IMG},
        {"start_image_url": None},
        "end_image_url",
    ),
    (
        "kling16-standard-i2v-ratio",
        "kling-1.6/standard",
        {**KLING_16, "start_image_url": IMG},
        {"aspect_ratio": "1:1"},
        "aspect_ratio",
    ),
    # video-series/kling-2-1.mdx, kling-2-6.mdx
    (
        "kling21-standard-end",
        "kling-2.1/standard",
        {"prompt": "p", "start_image_url": IMG},
        {"end_image_url": IMG},
        "end_image_url",
    ),
    (
        "kling26-end-with-sound",
        "kling-2.6",
        {**KLING_26, "image_urls": [IMG], "end_image_url": IMG},
        {"sound": True},
        "sound",
    ),
    (
        "kling26-end-without-image",
        "kling-2.6",
        {**KLING_26, "image_urls": [IMG], "end_image_url": IMG},
        {"image_urls": None},
        "end_image_url",
    ),
    # video-series/kling-3-0.mdx and kling-3-0.json
    (
        "kling30-multishot-silent",
        "kling-3.0/pro",
        {**KLING_30, "multi_prompt": SHOTS},
        {"sound": False},
        "sound",
    ),
    (
        "kling30-shots-over-15s",
        "kling-3.0/pro",
        {
            **KLING_30,
            "duration": 15,
            "multi_prompt": [{"prompt": "a", "duration": 12}, {"prompt": "b", "duration": 3}],
        },
        {"multi_prompt": [{"prompt": "a", "duration": 10}, {"prompt": "b", "duration": 10}]},
        "multi_prompt",
    ),
    (
        "kling30-multishot-no-shots",
        "kling-3.0/standard",
        {**KLING_30, "multi_prompt": SHOTS},
        {"multi_prompt": None},
        "multi_prompt",
    ),
    (
        "kling30-single-shot-no-prompt",
        "kling-3.0/pro",
        {**KLING_30, "multi_shots": False, "prompt": "p"},
        {"prompt": None},
        "prompt",
    ),
    (
        "kling30-multishot-two-frames",
        "kling-3.0/pro",
        {**KLING_30, "multi_prompt": SHOTS},
        {"image_urls": [IMG, IMG]},
        "image_urls",
    ),
    # kling-3-0.json: an element is "images (2-4 images) or a single video", per item
    (
        "kling30-element-one-image",
        "kling-3.0/pro",
        KLING_30_ELEMENTS,
        {"kling_elements": [IMAGES_ELEMENT, {"name": "e", "element_input_urls": [IMG]}]},
        "$.input.kling_elements[1].element_input_urls",
    ),
    (
        "kling30-element-five-images",
        "kling-3.0/standard",
        KLING_30_ELEMENTS,
        {"kling_elements": [{"name": "e", "element_input_urls": [IMG] * 5}, VIDEO_ELEMENT]},
        "$.input.kling_elements[0].element_input_urls",
    ),
    (
        "kling30-element-two-videos",
        "kling-3.0/pro",
        KLING_30_ELEMENTS,
        {"kling_elements": [IMAGES_ELEMENT, {"name": "e", "element_input_video_urls": [VID] * 2}]},
        "$.input.kling_elements[1].element_input_video_urls",
    ),
    (
        "kling30-element-images-and-video",
        "kling-3.0/standard",
        KLING_30_ELEMENTS,
        {"kling_elements": [{**IMAGES_ELEMENT, "element_input_video_urls": [VID]}]},
        "$.input.kling_elements[0].element_input_urls",
    ),
    # video-series/grok-imagine-video-1-5.mdx
    (
        "grok15-both-image-fields",
        "grok-imagine-video-1.5",
        {"prompt": "p", "image_urls": [IMG]},
        {"reference_image_urls": [IMG]},
        "image_urls",
    ),
    (
        "grok15-i2v-ratio",
        "grok-imagine-video-1.5",
        {"prompt": "p", "image_urls": [IMG]},
        {"aspect_ratio": "1:1"},
        "aspect_ratio",
    ),
    (
        "grok15-reference-1080p",
        "grok-imagine-video-1.5",
        {"prompt": "p", "reference_image_urls": [IMG], "resolution": "720p"},
        {"resolution": "1080p"},
        "resolution",
    ),
    # video-series/hailuo-02.mdx / .json, hailuo-2-3.mdx
    (
        "hailuo02pro-10s",
        "hailuo-02-pro",
        {"prompt": "p", "duration": 6},
        {"duration": 10},
        "duration",
    ),
    (
        "hailuo02pro-resolution",
        "hailuo-02-pro",
        {"prompt": "p"},
        {"resolution": "768P"},
        "resolution",
    ),
    (
        "hailuo02-end-without-image",
        "hailuo-02",
        {"prompt": "p", "image_urls": [IMG], "end_image_url": IMG},
        {"image_urls": None},
        "end_image_url",
    ),
    (
        "hailuo23-1080p-10s",
        "hailuo-2.3",
        {"prompt": "p", "resolution": "1080p", "duration": 6},
        {"duration": 10},
        "duration",
    ),
    # video-series/happy-horse.mdx
    (
        "happyhorse-both-image-fields",
        "happy-horse",
        {"prompt": "p", "image_urls": [IMG]},
        {"reference_image_urls": [IMG]},
        "image_urls",
    ),
    (
        "happyhorse-10-references",
        "happy-horse",
        {"prompt": "p", "reference_image_urls": [IMG] * 9},
        {"reference_image_urls": [IMG] * 10},
        "reference_image_urls",
    ),
    (
        "happyhorse-edit-6-references",
        "happy-horse",
        {"prompt": "p", "video_url": VID, "reference_image_urls": [IMG] * 5},
        {"reference_image_urls": [IMG] * 6},
        "reference_image_urls",
    ),
    ("happyhorse-t2v-no-prompt", "happy-horse", {"prompt": "p"}, {"prompt": None}, "prompt"),
    (
        "happyhorse-audio-setting-without-video",
        "happy-horse",
        {"prompt": "p", "video_url": VID, "audio_setting": "origin"},
        {"video_url": None},
        "audio_setting",
    ),
    (
        "happyhorse-i2v-ratio",
        "happy-horse",
        {"image_urls": [IMG]},
        {"aspect_ratio": "1:1"},
        "aspect_ratio",
    ),
    (
        "happyhorse-edit-duration",
        "happy-horse",
        {"prompt": "p", "video_url": VID},
        {"duration": 5},
        "duration",
    ),
    # video-series/sora-2-pro-official.mdx, wan-2-6.mdx / .json
    (
        "sora2pro-official-auto-without-image",
        "sora-2-pro-official",
        {"prompt": "p", "aspect_ratio": "auto", "image_urls": [IMG]},
        {"image_urls": None},
        "aspect_ratio",
    ),
    (
        "wan26-t2v-image",
        "wan2.6-text-to-video",
        {"prompt": "p"},
        {"image_urls": [IMG]},
        "image_urls",
    ),
    (
        "wan26-i2v-video",
        "wan2.6-image-to-video",
        {"prompt": "p", "image_urls": [IMG]},
        {"video_urls": [VID]},
        "video_urls",
    ),
    (
        "wan26-i2v-no-image",
        "wan2.6-image-to-video",
        {"prompt": "p", "image_urls": [IMG]},
        {"image_urls": None},
        "image_urls",
    ),
    (
        "wan26-v2v-no-video",
        "wan2.6-video-to-video",
        {"prompt": "p", "video_urls": [VID]},
        {"video_urls": None},
        "video_urls",
    ),
    (
        "wan26-v2v-15s",
        "wan2.6-video-to-video",
        {"prompt": "p", "video_urls": [VID], "duration": 10},
        {"duration": 15},
        "duration",
    ),
    # image-series (seedream-5.0-lite-edit needs image_urls by its schema already)
    (
        "gptimage2-edit-no-image",
        "gpt-image-2-edit",
        {"prompt": "p", "image_urls": [IMG]},
        {"image_urls": None},
        "image_urls",
    ),
    ("gptimage2-image", "gpt-image-2", {"prompt": "p"}, {"image_urls": [IMG]}, "image_urls"),
    (
        "gptimage2-size-not-16",
        "gpt-image-2",
        {"prompt": "p", "size": "1024x1024"},
        {"size": "1000x1000"},
        "size",
    ),
    (
        "gptimage2-size-over-3840",
        "gpt-image-2",
        {"prompt": "p", "size": "3840x2160"},
        {"size": "4000x2000"},
        "size",
    ),
    (
        "gptimage2-size-ratio",
        "gpt-image-2",
        {"prompt": "p", "size": "2304x768"},
        {"size": "2400x768"},
        "size",
    ),
    (
        "gptimage2-size-pixels",
        "gpt-image-2",
        {"prompt": "p", "size": "1024x640"},
        {"size": "640x640"},
        "size",
    ),
    (
        "flux2-edit-no-image",
        "flux-2-pro-edit",
        {"prompt": "p", "resolution": "1K", "size": "1:1", "image_urls": [IMG]},
        {"image_urls": None},
        "image_urls",
    ),
    (
        "kontext-edit-no-image",
        "flux-kontext-max-edit",
        {"prompt": "p", "image_urls": [IMG]},
        {"image_urls": None},
        "image_urls",
    ),
    (
        "seedream4-edit-no-image",
        "seedream-4-edit",
        {"prompt": "p", "image_urls": [IMG]},
        {"image_urls": None},
        "image_urls",
    ),
    (
        "seedream45-edit-no-image",
        "seedream-4.5-edit",
        {"prompt": "p", "image_urls": [IMG]},
        {"image_urls": None},
        "image_urls",
    ),
    (
        "seedream4-images-plus-n",
        "seedream-4",
        {"prompt": "p", "image_urls": [IMG] * 10, "n": 5},
        {"n": 6},
        "$.input",
    ),
    (
        "nanobanana2new-15-images",
        "nano-banana-2-new",
        {"prompt": "p", "image_urls": [IMG] * 14},
        {"image_urls": [IMG] * 15},
        "image_urls",
    ),
    # music-series
    (
        "replace-section-end-before-start",
        "replace-section",
        {**SECTION, "infill_end_s": 10.5},
        {"infill_end_s": 10},
        "infill_end_s",
    ),
    (
        "music-custom-no-style",
        "generate-music",
        {**MUSIC, "style": "s", "title": "t"},
        {"style": None},
        "style",
    ),
    (
        "music-persona-simple",
        "generate-music",
        {**MUSIC, "custom_mode": False},
        {"persona_id": "x"},
        "custom_mode",
    ),
    (
        "music-simple-501",
        "generate-music",
        {**MUSIC, "custom_mode": False, "prompt": "p" * 500},
        {"prompt": "p" * 501},
        "prompt",
    ),
    (
        "music-simple-title",
        "generate-music",
        {**MUSIC, "custom_mode": False},
        {"title": "t"},
        "title",
    ),
    (
        "music-v4-style",
        "generate-music",
        {**MUSIC, "style": "s" * 200, "title": "t", "mv": "V4"},
        {"style": "s" * 201},
        "style",
    ),
    (
        "cover-custom-no-title",
        "upload-and-cover-audio",
        {**COVER, "style": "s", "title": "t"},
        {"title": None},
        "title",
    ),
    (
        "cover-simple-style",
        "upload-and-cover-audio",
        {**COVER, "custom_mode": False},
        {"style": "s"},
        "style",
    ),
    (
        "cover-v4-prompt",
        "upload-and-cover-audio",
        {**COVER, "style": "s", "title": "t", "mv": "V4", "prompt": "p" * 3000},
        {"prompt": "p" * 3001},
        "prompt",
    ),
    (
        "extend-custom-no-continue",
        "extend-music",
        {
            **EXTEND,
            "default_param_flag": True,
            "prompt": "p",
            "style": "s",
            "title": "t",
            "continue_at": 30,
        },
        {"continue_at": None},
        "continue_at",
    ),
    ("extend-persona-simple", "extend-music", EXTEND, {"persona_id": "x"}, "default_param_flag"),
    (
        "upload-extend-custom-no-prompt",
        "upload-and-extend-audio",
        {**UPLOAD_EXTEND, "default_param_flag": True, "style": "s", "title": "t", "prompt": "p"},
        {"prompt": None},
        "prompt",
    ),
    (
        "upload-extend-v4-title",
        "upload-and-extend-audio",
        {**UPLOAD_EXTEND, "mv": "V4_5ALL", "title": "t" * 80},
        {"title": "t" * 81},
        "title",
    ),
]


def _change(data: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    merged = {**data, **change}
    return {key: value for key, value in merged.items() if value is not None}


@pytest.mark.parametrize(
    ("model", "accepted", "change", "field"),
    [case[1:] for case in CASES],
    ids=[c[0] for c in CASES],
)
def test_each_prose_rule_refuses_what_its_page_forbids(
    model: str, accepted: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    """An input the page allows is sent; one change the page forbids is refused unsent."""
    validate_input(model, accepted)
    with pytest.raises(InputValidationError) as info:
        validate_input(model, _change(accepted, change))
    path = field if field.startswith("$") else f"$.input.{field}"
    assert [issue.field for issue in info.value.issues] == [path]
    assert "(per " in info.value.rule


def test_messages_name_the_field_the_rule_the_value_and_the_fix() -> None:
    """A few whole messages, as users see them."""
    cases = [
        (
            "kling-2.6",
            {**KLING_26, "sound": True, "image_urls": [IMG], "end_image_url": IMG},
            "$.input.sound must be false for kling-2.6 when end_image_url is set "
            "(per video-series/kling-2-6.mdx) (got True)",
        ),
        (
            "kling-1.6/standard",
            {**KLING_16, "start_image_url": IMG, "end_image_url": IMG},
            "$.input.end_image_url is not supported by kling-1.6/standard (use kling-1.6/pro "
            f"for a last frame) (per video-series/kling-1-6.mdx) (got '{IMG}')",
        ),
        (
            "replace-section",
            {**SECTION, "infill_end_s": 5},
            "$.input.infill_end_s must be greater than infill_start_s (which is 10) "
            "(per music-series/replace-section.mdx) (got 5)",
        ),
        (
            "veo3.1-fast-official",
            {"prompt": "p", "image_urls": [IMG] * 3, "generation_type": "frame"},
            "$.input.generation_type must be 'reference' for veo3.1-fast-official when "
            "image_urls has 3 items (per video-series/veo-3-1-official.json) (got 'frame')",
        ),
        (
            "veo3.1-quality-official",
            {"prompt": "p", "image_urls": [IMG] * 2, "generation_type": "reference"},
            "$.input.image_urls must have exactly 3 items for veo3.1-quality-official when "
            'generation_type is "reference" (has 2) (per video-series/veo-3-1-official.json) '
            f"(got {[IMG, IMG]!r})",
        ),
        (
            "kling-3.0/pro",
            {**KLING_30_ELEMENTS, "kling_elements": [{"name": "e", "element_input_urls": [IMG]}]},
            "$.input.kling_elements[0].element_input_urls must have at least 2 items for "
            f"kling-3.0/pro (per video-series/kling-3-0.json) (got {[IMG]!r})",
        ),
        (
            "gpt-image-2",
            {"prompt": "p", "size": "1000x1000"},
            "$.input.size must have a width and a height divisible by 16 (or use a preset "
            "ratio) (per image-series/gpt-image-2.mdx) (got '1000x1000')",
        ),
    ]
    for model, data, message in cases:
        with pytest.raises(InputValidationError) as info:
            validate_input(model, data)
        assert str(info.value.issues[0]) == message


def test_a_condition_reads_the_documented_default_when_the_field_is_left_out() -> None:
    """veo3.1-lite-official renders 1080p by default, where only 8 s is documented."""
    with pytest.raises(InputValidationError, match=r"when resolution is \"1080p\""):
        validate_input("veo3.1-lite-official", {"prompt": "p", "duration": 4})
    validate_input("veo3.1-lite-official", {"prompt": "p", "duration": 8})


def test_a_rule_for_one_id_leaves_its_sibling_ids_alone() -> None:
    """kling-1.6/pro takes the end frame its standard sibling refuses; seedream-4 needs no image."""
    validate_input("kling-1.6/pro", {**KLING_16, "start_image_url": IMG, "end_image_url": IMG})
    validate_input("kling-2.1/pro", {"prompt": "p", "start_image_url": IMG, "end_image_url": IMG})
    validate_input("seedream-4", {"prompt": "p"})
    validate_input("gpt-image-2", {"prompt": "p", "size": "16:9"})


def test_the_veo_modes_and_kling_elements_the_docs_allow_are_accepted() -> None:
    """Each image count with the mode, duration and ratio its page allows; each element kind."""
    allowed = [
        # "auto is supported only for one-image and two-image workflows"
        ("veo3.1-fast-official", {"prompt": "p", "image_urls": [IMG], "aspect_ratio": "auto"}),
        ("veo3.1-lite-official", {"prompt": "p", "image_urls": [IMG] * 2, "aspect_ratio": "auto"}),
        # "Use frame for two image URLs"; only reference generation is held to 8 s
        (
            "veo3.1-quality-official",
            {
                "prompt": "p",
                "image_urls": [IMG] * 2,
                "generation_type": "frame",
                "aspect_ratio": "auto",
                "duration": 4,
            },
        ),
        ("veo3.1-fast-official", {"prompt": "p", "image_urls": [IMG] * 2, "duration": 6}),
        # three images, reference generation inferred or named, 8 s
        ("veo3.1-fast-official", {"prompt": "p", "image_urls": [IMG] * 3}),
        (
            "veo3.1-quality-official",
            {"prompt": "p", "image_urls": [IMG] * 3, "duration": 8, "aspect_ratio": "9:16"},
        ),
        (
            "veo3.1-quality-official",
            {
                "prompt": "p",
                "image_urls": [IMG] * 3,
                "generation_type": "reference",
                "duration": 8,
                "aspect_ratio": "16:9",
                "resolution": "4k",
            },
        ),
        # "Elements can be defined using images (2-4 images) or a single video"
        ("kling-3.0/pro", KLING_30_ELEMENTS),
        (
            "kling-3.0/standard",
            {
                **KLING_30_ELEMENTS,
                "kling_elements": [{"name": "e", "element_input_urls": [IMG] * 4}, VIDEO_ELEMENT],
            },
        ),
        # the schema requires only an element's name; the docs do not refuse a bare one
        ("kling-3.0/pro", {**KLING_30_ELEMENTS, "kling_elements": [{"name": "e"}]}),
    ]
    for model, data in allowed:
        validate_input(model, data)


def test_a_rule_on_an_inferred_mode_reports_once_beside_the_named_mode() -> None:
    """Three images with generation_type "reference" break both rules; the field is named once."""
    with pytest.raises(InputValidationError) as info:
        validate_input(
            "veo3.1-fast-official",
            {
                "prompt": "p",
                "image_urls": [IMG] * 3,
                "generation_type": "reference",
                "duration": 6,
                "aspect_ratio": "auto",
            },
        )
    assert [issue.field for issue in info.value.issues] == [
        "$.input.duration",
        "$.input.aspect_ratio",
    ]


def test_every_item_of_a_list_is_checked_and_named_by_its_index() -> None:
    """Each broken element is its own issue at its own path; other items are left alone."""
    elements = [
        {"name": "a", "element_input_urls": [IMG]},
        IMAGES_ELEMENT,
        {"name": "c", "element_input_video_urls": [VID, VID]},
    ]
    with pytest.raises(InputValidationError) as info:
        validate_input("kling-3.0/pro", {**KLING_30_ELEMENTS, "kling_elements": elements})
    assert [issue.field for issue in info.value.issues] == [
        "$.input.kling_elements[0].element_input_urls",
        "$.input.kling_elements[2].element_input_video_urls",
    ]
    assert "must have exactly 1 item for kling-3.0/pro" in info.value.issues[1].rule


def test_the_new_rules_read_as_sentences_in_the_model_listing() -> None:
    """``vidgo-async models MODEL`` says the image count and the list item a rule is for."""
    veo = MODELS["veo3.1-fast-official"].rules
    assert (
        "generation_type must be reference when image_urls has 3 items "
        "(video-series/veo-3-1-official.json; three images require reference generation)"
    ) in veo
    assert any(rule.startswith("duration must be 8 when image_urls has 3 items") for rule in veo)
    assert not any(
        "image_urls has 3 items" in rule for rule in MODELS["veo3.1-lite-official"].rules
    )
    assert (
        "in each kling_elements item, element_input_urls has 2–4 items "
        "(video-series/kling-3-0.json; array of 2-4 image URLs)"
    ) in MODELS["kling-3.0/standard"].rules


def test_every_rule_names_an_existing_page_and_catalogued_ids() -> None:
    """Each page path is relative to api-manual/ and exists; each model id is catalogued."""
    for rule in CROSS_RULES:
        assert set(rule.models) <= set(MODELS), rule
        for page in rule.page.split(", "):
            assert list(DOCS.glob(page)), f"{page} is not a docs page"


@pytest.mark.parametrize("rule", CROSS_RULES, ids=lambda rule: f"{rule.kind}-{rule.field}")
def test_every_rule_describes_itself_with_its_page(rule: CrossRule) -> None:
    """``describe()`` is one sentence ending with the page (and its condition, if any)."""
    text = rule.describe()
    assert text.endswith(")")
    assert f"({rule.page}" in text
    assert rule.condition_text() in text
    assert rule.describe() in MODELS[rule.models[0]].rules


def test_every_rule_reads_only_fields_its_models_have() -> None:
    """A rule that names a field its model lacks is a typo (it would never fire)."""
    for rule in CROSS_RULES:
        for model in rule.models:
            names = {field.name for field in MODELS[model].fields}
            read = {rule.field} - {""} | set(rule.others) | {name for name, _ in rule.when}
            if rule.kind == "item_sum":
                read -= set(rule.others)
            if rule.each:  # the rule reads the keys of each item of the list
                (listed,) = (field for field in MODELS[model].fields if field.name == rule.each)
                assert listed.items is not None, (model, rule)
                names = {field.name for field in listed.items.fields}
            assert read <= names, (model, rule)


# -- the docs' own request examples -----------------------------------------------------------

# Examples that break their own schema (or their page's prose), so they stay refused:
# replace-section leaves out full_lyrics, which its schema requires; grok-imagine asks for
# 16:9, outside its aspect_ratio enum; kling-3.0 leaves out image_urls, which its schema
# requires; upload-and-extend-audio's "default-params" example sets default_param_flag true
# (custom mode, per the page and the field's description) without style and title.
CONTRADICTING_EXAMPLES = {
    "music-series/replace-section.json#replace-chorus",
    "video-series/grok-imagine.json#text-to-video",
    "video-series/kling-3-0.json#kling-3.0/standard",
    "video-series/kling-3-0.json#kling-3.0/pro",
    "music-series/upload-and-extend-audio.json#default-params",
}


def _request_examples() -> list[tuple[str, dict[str, Any]]]:
    """Every submit body of the docs: the OpenAPI examples and the pages' json/curl blocks."""
    found: list[tuple[str, Any]] = []
    for path in sorted(DOCS.glob("**/*.json")):
        name = path.relative_to(DOCS).as_posix()
        for operation in json.loads(path.read_text(encoding="utf-8")).get("paths", {}).values():
            for method in operation.values():
                content = (method.get("requestBody") or {}).get("content", {})
                for media in content.values():
                    for key, example in (media.get("examples") or {}).items():
                        found.append((f"{name}#{key}", example.get("value")))
    for path in sorted(DOCS.glob("**/*.mdx")):
        name = path.relative_to(DOCS).as_posix()
        text = path.read_text(encoding="utf-8")
        blocks = re.findall(r"```(?:json|bash)[^\n]*\n(.*?)```", text, re.S)
        for index, block in enumerate(blocks):
            data = re.search(r"--data\s+'(.*?)'", block, re.S)
            try:
                found.append((f"{name}#block{index}", json.loads(data[1] if data else block)))
            except json.JSONDecodeError:
                continue
    return [
        (where, body)
        for where, body in found
        if isinstance(body, dict) and "model" in body and "input" in body
    ]


def test_the_docs_request_examples_are_accepted() -> None:
    """Every request example of the docs validates, but the few that break their own schema."""
    if not DOCS.is_dir():
        pytest.fail(f"the docs snapshot is missing at {DOCS}: clone the repo beside shared/")
    examples = _request_examples()
    assert len(examples) > 150
    refused = set()
    for where, body in examples:
        try:
            validate_input(body["model"], body["input"])
        except InputValidationError:
            refused.add(where)
    assert refused == CONTRADICTING_EXAMPLES
