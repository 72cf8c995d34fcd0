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
