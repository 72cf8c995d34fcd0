"""Tests of the validation engine over every catalogued model and every Seedance prose rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _client_support import SUBMIT_URL, call_count, envelope, make_client, task_data
from _emulator_support import fast_client
from aioresponses import aioresponses
from hypothesis import given
from hypothesis import strategies as st

from vidgo_async import (
    BadRequestError,
    FieldSpec,
    InputValidationError,
    ModelSpec,
    Orchestrator,
    Seedance2Input,
    Seedance20ImageToVideoInput,
    Seedance20ReferenceToVideoInput,
    Seedance20TextToVideoInput,
    Seedance25ReferenceToVideoInput,
    UnknownModelError,
    list_models,
    validate_input,
)
from vidgo_async._cross_rules import CROSS_RULES, SEEDANCE_MODELS, rules_for
from vidgo_async.testing import Emulator

MODELS = {spec.id: spec for spec in list_models()}
IMG = "https://example.com/a.png"
VID = "https://example.com/a.mp4"
AUD = "https://example.com/a.mp3"


def sample(field: FieldSpec) -> Any:
    """Return a value the field's documented schema accepts."""
    if field.one_of:
        return sample(field.one_of[0])
    if field.enum is not None:
        return field.enum[0]
    if field.type == "string":
        if field.format == "uri":
            return IMG
        return "a" * max(field.min_length or 0, 12) if field.max_length is None else "a test"
    if field.type in ("integer", "number"):
        if field.minimum is not None:
            return int(field.minimum) if field.type == "integer" else field.minimum
        return int(field.maximum) if field.maximum is not None else 1
    if field.type == "boolean":
        return True
    if field.type == "array":
        assert field.items is not None
        return [sample(field.items)] * max(field.min_items or 1, 1)
    if field.type == "object":
        return {sub.name: sample(sub) for sub in field.fields if sub.required}
    return "any"


def valid_input(spec: ModelSpec) -> dict[str, Any]:
    """Required fields set (by the schema or a prose rule), one value for each enum field.

    An optional enum field that a prose rule refuses for this id (``audio_setting``
    without ``video_url``, ``aspect_ratio: auto`` without an image) is left out.
    """
    wanted = {field.name for field in spec.fields if field.required or field.enum is not None}
    if spec.any_of_required:
        wanted.update(spec.any_of_required[0])
    wanted.update(rule.field for rule in rules_for(spec.id) if rule.kind == "required")
    data = {field.name: sample(field) for field in spec.fields if field.name in wanted}
    try:
        validate_input(spec.id, data)
    except InputValidationError as error:
        required = set(spec.required)
        refused_optional = {issue.field.removeprefix("$.input.") for issue in error.issues}
        data = {k: v for k, v in data.items() if k in required or k not in refused_optional}
    return data


def refused(model: str, data: Any) -> InputValidationError:
    with pytest.raises(InputValidationError) as info:
        validate_input(model, data)
    return info.value


def fields_of(error: InputValidationError) -> set[str]:
    return {issue.field for issue in error.issues}


def first_field(spec: ModelSpec, test: Any) -> FieldSpec | None:
    return next((field for field in spec.fields if test(field)), None)


def models_with(test: Any) -> list[str]:
    return [model for model, spec in MODELS.items() if first_field(spec, test) is not None]


# -- every catalogued model --------------------------------------------------------------


def test_the_catalog_holds_every_documented_family() -> None:
    """The catalog lists over 100 ids of every kind, and each Seedance id the rules name."""
    assert len(MODELS) > 100
    assert {spec.kind for spec in MODELS.values()} == {"video", "image", "music"}
    assert set(SEEDANCE_MODELS) <= set(MODELS)
    for rule in CROSS_RULES:
        assert set(rule.models) <= set(MODELS), rule


@pytest.mark.parametrize("model", sorted(MODELS))
def test_an_input_built_from_the_schema_is_accepted(model: str) -> None:
    """Required fields and one enum value each: accepted and returned as sent."""
    data = valid_input(MODELS[model])
    assert validate_input(model, {**data, "not_sent": None}) == data


@pytest.mark.parametrize("model", models_with(lambda f: f.enum is not None))
def test_an_unlisted_enum_value_is_refused(model: str) -> None:
    """A value outside a field's enum is refused, naming the field."""
    field = first_field(MODELS[model], lambda f: f.enum is not None)
    assert field is not None
    bad = "not-a-listed-value" if field.type == "string" else 987654
    error = refused(model, {**valid_input(MODELS[model]), field.name: bad})
    assert f"$.input.{field.name}" in fields_of(error)
    assert "must be one of" in error.rule


@pytest.mark.parametrize(
    "model", models_with(lambda f: f.minimum is not None or f.maximum is not None)
)
def test_a_number_out_of_bounds_is_refused(model: str) -> None:
    """A number below its minimum (or above its maximum) is refused."""
    field = first_field(MODELS[model], lambda f: f.minimum is not None or f.maximum is not None)
    assert field is not None
    bad = field.minimum - 1 if field.minimum is not None else field.maximum + 1  # type: ignore[operator]
    if field.type == "integer":
        bad = int(bad)
    error = refused(model, {**valid_input(MODELS[model]), field.name: bad})
    assert fields_of(error) == {f"$.input.{field.name}"}


@pytest.mark.parametrize("model", [m for m, spec in MODELS.items() if spec.required])
def test_a_missing_required_field_is_refused(model: str) -> None:
    """Leaving out a required field is refused with "is required"."""
    name = MODELS[model].required[0]
    data = {k: v for k, v in valid_input(MODELS[model]).items() if k != name}
    error = refused(model, data)
    assert (f"$.input.{name}", "is required") in {(i.field, i.rule) for i in error.issues}


@pytest.mark.parametrize("model", sorted(MODELS))
def test_an_unknown_field_is_refused_for_every_model(model: str) -> None:
    """A field the schema does not list is refused, open schema or not: it would be billed."""
    error = refused(model, {**valid_input(MODELS[model]), "not_a_field": 1})
    assert fields_of(error) == {"$.input.not_a_field"}
    assert "is not a field of" in error.rule


@pytest.mark.parametrize(
    ("model", "typo", "meant"),
    [
        ("sora-2", "aspect_ratios", "aspect_ratio"),
        ("veo3.1-fast-official", "resolutin", "resolution"),
        ("kling-2.6", "end_image", "end_image_url"),
        ("seedream-5.0-lite", "image_url", "image_urls"),
    ],
)
def test_a_misspelt_field_of_an_open_schema_is_refused_with_a_hint(
    model: str, typo: str, meant: str
) -> None:
    """An open schema's misspelt field is refused, naming the model's closest field."""
    assert MODELS[model].additional_properties
    data = {**valid_input(MODELS[model]), typo: "x"}
    error = refused(model, data)
    assert error.field == f"$.input.{typo}"
    assert f"did you mean `{meant}`?" in error.rule


def test_an_unknown_field_without_a_close_name_says_to_leave_it_out() -> None:
    """With no close field name, the message lists the known fields and says to leave it out."""
    error = refused("seedream-5.0-lite", {"prompt": "x", "extra": [1]})
    assert error.field == "$.input.extra"
    assert "leave it out (known fields: image_urls, n, prompt, size)" in error.rule
    assert validate_input("seedream-5.0-lite", {"prompt": "x", "extra": None}) == {"prompt": "x"}


LEGACY = {"prompt": "a fox runs", "duration": 5, "resolution": "720p"}
V20_REF = [f"{family}/reference-to-video" for family in ("seedance-2.0", "seedance-2.0-fast")]
V20_IMG = [
    f"{f}/image-to-video" for f in ("seedance-2.0", "seedance-2.0-fast", "seedance-2.0-mini")
]
NEW = {"prompt": "a fox runs", "duration": 5, "resolution": "720p"}


@pytest.mark.parametrize("model", ["seedance-2", "seedance-2-fast"])
def test_image_urls_exclude_every_reference_field(model: str) -> None:
    """Frames and references cannot be combined (seedance-2.mdx)."""
    for reference in ("reference_image_urls", "reference_video_urls", "reference_audio_urls"):
        data = {**LEGACY, "image_urls": [IMG], reference: [IMG], "reference_video_urls": [VID]}
        error = refused(model, data)
        assert error.field == "$.input.image_urls"
        assert "seedance-2.mdx" in error.rule


@pytest.mark.parametrize(
    "model",
    ["seedance-2", "seedance-2-fast", *V20_REF, "seedance-2.0-mini/reference-to-video"],
)
def test_reference_audio_needs_an_image_or_video_reference(model: str) -> None:
    """Reference audio alone is refused; with an image reference it is accepted."""
    base = NEW if "/" in model else LEGACY
    assert "$.input.reference_audio_urls" in fields_of(
        refused(model, {**base, "reference_audio_urls": [AUD]})
    )
    validate_input(model, {**base, "reference_audio_urls": [AUD], "reference_image_urls": [IMG]})


def test_seedance_2_5_reference_audio_needs_an_image_or_video_reference() -> None:
    """The 2.5 page states the same audio rule."""
    error = refused("seedance-2.5/reference-to-video", {**NEW, "reference_audio_urls": [AUD]})
    assert "$.input.reference_audio_urls" in fields_of(error)


@pytest.mark.parametrize("model", ["seedance-2", "seedance-2-fast", *V20_REF])
def test_thirteen_reference_files_are_refused(model: str) -> None:
    """9 images + 3 videos + 1 audio (13) is over the 12-file total; 12 is accepted."""
    base = NEW if "/" in model else LEGACY
    twelve = {"reference_image_urls": [IMG] * 9, "reference_video_urls": [VID] * 3}
    validate_input(model, {**base, **twelve})
    error = refused(model, {**base, **twelve, "reference_audio_urls": [AUD]})
    assert error.rule.startswith("must hold at most 12 files in total")
    assert error.value == 13


def test_seedance_2_5_takes_its_own_larger_reference_set() -> None:
    """2.5 takes 30 images, 10 videos and 10 audios (50 files); 31 images are refused."""
    data = {
        **NEW,
        "reference_image_urls": [IMG] * 30,
        "reference_video_urls": [VID] * 10,
        "reference_audio_urls": [AUD] * 10,
    }
    validate_input("seedance-2.5/reference-to-video", data)
    error = refused("seedance-2.5/reference-to-video", {**data, "reference_image_urls": [IMG] * 31})
    assert error.field == "$.input.reference_image_urls"


@pytest.mark.parametrize("model", [*V20_IMG, "seedance-2.5/image-to-video"])
def test_image_to_video_needs_one_or_two_frames_and_only_auto(model: str) -> None:
    """image_urls is required (1–2) and aspect_ratio may only be auto."""
    assert "$.input.image_urls" in fields_of(refused(model, NEW))
    assert "$.input.image_urls" in fields_of(refused(model, {**NEW, "image_urls": [IMG] * 3}))
    error = refused(model, {**NEW, "image_urls": [IMG], "aspect_ratio": "16:9"})
    assert error.field == "$.input.aspect_ratio"
    assert "'auto'" in error.rule
    for frames in ([IMG], [IMG, IMG]):
        validate_input(model, {**NEW, "image_urls": frames, "aspect_ratio": "auto"})


@pytest.mark.parametrize(
    "model", [*V20_REF, "seedance-2.0-mini/reference-to-video", "seedance-2.5/reference-to-video"]
)
def test_reference_to_video_needs_an_image_or_video_reference(model: str) -> None:
    """Without a reference image or video the input is refused; either one is enough."""
    error = refused(model, NEW)
    assert error.field == "$.input"
    assert "reference_image_urls" in error.rule
    validate_input(model, {**NEW, "reference_video_urls": [VID]})
    validate_input(model, {**NEW, "reference_image_urls": [IMG]})


@pytest.mark.parametrize("model", ["seedance-2.0/text-to-video", "seedance-2.5/text-to-video"])
def test_text_to_video_takes_no_media(model: str) -> None:
    """Text-only ids refuse media fields."""
    assert refused(model, {**NEW, "image_urls": [IMG]}).field == "$.input.image_urls"


@pytest.mark.parametrize("resolution", ["1080p", "4k"])
def test_seedance_2_takes_1080p_and_4k_and_fast_does_not(resolution: str) -> None:
    """seedance-2 accepts 1080p/4k; seedance-2-fast and the 2.0-fast ids refuse them."""
    validate_input("seedance-2", {**LEGACY, "resolution": resolution})
    validate_input("seedance-2.0/text-to-video", {**NEW, "resolution": resolution})
    for fast in ("seedance-2-fast", "seedance-2.0-fast/text-to-video"):
        assert refused(fast, {**LEGACY, "resolution": resolution}).field == "$.input.resolution"


def test_seedance_fast_with_1080p_names_the_page() -> None:
    """The legacy fast refusal names seedance-2.mdx."""
    error = refused("seedance-2-fast", {**LEGACY, "resolution": "1080p"})
    assert error.rule == (
        "must be one of '480p', '720p' for seedance-2-fast (per video-series/seedance-2.mdx)"
    )


@pytest.mark.parametrize(
    ("model", "longest"),
    [
        ("seedance-2", 15),
        ("seedance-2.0/text-to-video", 15),
        ("seedance-2.0-mini/text-to-video", 15),
        ("seedance-2.5/text-to-video", 30),
    ],
)
def test_per_family_duration_bounds(model: str, longest: int) -> None:
    """Durations run from 4 to 15 s (2.5: 30 s)."""
    validate_input(model, {**NEW, "duration": longest})
    validate_input(model, {**NEW, "duration": 4})
    assert refused(model, {**NEW, "duration": longest + 1}).field == "$.input.duration"
    assert refused(model, {**NEW, "duration": 3}).field == "$.input.duration"


@pytest.mark.parametrize("model", ["seedance-2", "seedance-2.0/text-to-video"])
def test_per_family_prompt_bounds(model: str) -> None:
    """Prompts hold 1–20000 characters, not blank."""
    validate_input(model, {**NEW, "prompt": "x" * 20000})
    assert refused(model, {**NEW, "prompt": "x" * 20001}).field == "$.input.prompt"
    assert refused(model, {**NEW, "prompt": "  "}).field == "$.input.prompt"


@pytest.mark.parametrize("name", ["return_last_frame", "web_search"])
def test_documented_switches_are_accepted_where_listed(name: str) -> None:
    """return_last_frame and web_search pass where the schema lists them, else refused."""
    listed = [m for m, spec in MODELS.items() if spec.field(name) is not None]
    assert {"seedance-2", "seedance-2.0/text-to-video"} <= set(listed)
    for model in listed:
        data = {**valid_input(MODELS[model]), name: True}
        assert validate_input(model, data)[name] is True
    assert refused("seedance-2.5/text-to-video", {**NEW, name: True}).field == f"$.input.{name}"


def test_auto_aspect_ratio_is_accepted_where_listed() -> None:
    """aspect_ratio auto passes for every id whose schema lists it (with an image if asked)."""
    listed = [
        m
        for m, spec in MODELS.items()
        if (field := spec.field("aspect_ratio")) is not None and "auto" in (field.enum or ())
    ]
    assert "seedance-2" in listed
    for model in listed:
        data = {**valid_input(MODELS[model]), "aspect_ratio": "auto"}
        if any(
            rule.field == "aspect_ratio" for rule in rules_for(model) if rule.kind == "requires"
        ):
            data["image_urls"] = [IMG]  # the page takes auto for image workflows only
        validate_input(model, data)


# -- typed inputs --------------------------------------------------------------------------


def test_typed_inputs_match_the_current_docs() -> None:
    """The typed classes take the new fields and check through the same engine."""
    legacy = Seedance2Input(
        **LEGACY | {"resolution": "4k"},
        aspect_ratio="auto",
        return_last_frame=True,
        web_search=True,
    )
    assert validate_input("seedance-2", legacy)["resolution"] == "4k"
    assert refused("seedance-2-fast", legacy).field == "$.input.resolution"
    mini = Seedance20TextToVideoInput(prompt="a fox", duration=5)
    assert validate_input("seedance-2.0-mini/text-to-video", mini) == {
        "prompt": "a fox",
        "duration": 5,
    }
    assert "$.input.resolution" in fields_of(refused("seedance-2.0/text-to-video", mini))
    frames = Seedance20ImageToVideoInput(
        prompt="a fox", duration=5, resolution="720p", image_urls=[IMG]
    )
    assert frames.image_urls == (IMG,)
    with pytest.raises(InputValidationError, match="auto"):
        Seedance20ImageToVideoInput(
            prompt="a fox",
            duration=5,
            image_urls=[IMG],
            aspect_ratio="16:9",  # type: ignore[arg-type]
        )
    with pytest.raises(InputValidationError, match="12 files"):
        Seedance20ReferenceToVideoInput(
            prompt="a fox",
            duration=5,
            reference_image_urls=[IMG] * 9,
            reference_video_urls=[VID] * 3,
            reference_audio_urls=[AUD],
        )
    refs = Seedance25ReferenceToVideoInput(
        prompt="a fox", duration=30, resolution="480p", reference_image_urls=[IMG] * 20
    )
    assert refused("seedance-2.0/reference-to-video", refs).rule.startswith("is a Seedance25")


# -- unknown models ------------------------------------------------------------------------


@pytest.mark.parametrize(("typo", "meant"), [("seedance2", "seedance-2"), ("sora", "sora-2")])
def test_unknown_models_suggest_the_closest_ids(typo: str, meant: str) -> None:
    """An unknown id raises UnknownModelError with "did you mean"."""
    with pytest.raises(UnknownModelError) as info:
        validate_input(typo, {"prompt": "x"})
    assert meant in info.value.suggestions
    assert f"did you mean '{meant}'" in str(info.value)
    assert isinstance(info.value, InputValidationError)
    assert info.value.field == "$.model"


def test_allow_unknown_models_checks_only_json() -> None:
    """An unknown id is sent when allowed, after a JSON-only check."""
    assert validate_input("new-model", {"a": [1, {"b": None}]}, allow_unknown_models=True) == {
        "a": [1, {}]
    }
    for bad in ({"a": float("nan")}, {"a": object()}, {1: "x"}, ["x"], {"a": "\ud800"}):
        with pytest.raises(InputValidationError):
            validate_input("new-model", bad, allow_unknown_models=True)  # type: ignore[arg-type]


async def test_submit_of_a_typo_raises_before_any_request() -> None:
    """submit("seedance2", …) raises UnknownModelError naming seedance-2; nothing is sent."""
    async with make_client() as client:
        with aioresponses() as mocked:
            with pytest.raises(UnknownModelError, match="seedance-2"):
                await client.submit("seedance2", LEGACY)
            assert call_count(mocked) == 0


async def test_a_client_that_allows_unknown_models_sends_them() -> None:
    """allow_unknown_models=True on the client sends an unknown id as given."""
    async with make_client(allow_unknown_models=True) as client:
        assert client.allow_unknown_models
        with aioresponses() as mocked:
            mocked.post(SUBMIT_URL, payload=envelope(task_data("t9", "not_started")))
            task = await client.submit("seedance-3/text-to-video", {"prompt": "x", "n": None})
            (call,) = [c for key, cs in mocked.requests.items() for c in cs]
    assert task.task_id == "t9"
    assert json.loads(call.kwargs["data"])["input"] == {"prompt": "x"}


# -- arbitrary input -----------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
SEEDANCE_KEYS = st.sampled_from(
    ["prompt", "duration", "resolution", "aspect_ratio", "image_urls", "reference_audio_urls", "x"]
)


@given(
    st.sampled_from([*sorted(MODELS), "seedance2", "", "x y"]),
    st.dictionaries(SEEDANCE_KEYS | st.text(max_size=6), JSON, max_size=6) | JSON,
    st.booleans(),
)
def test_arbitrary_json_never_crashes(model: str, data: Any, allow: bool) -> None:
    """Any JSON input returns a dict or raises InputValidationError, nothing else (Hypothesis)."""
    issues: list[Any] = []
    body: Any = None
    try:
        body = validate_input(model, data, allow_unknown_models=allow)
    except InputValidationError as exc:
        issues = exc.issues
    if body is None:
        assert issues
    else:
        assert isinstance(body, dict)
        assert None not in body.values()
        json.dumps(body, allow_nan=False)


async def test_the_orchestrator_and_the_emulator_use_the_same_catalog() -> None:
    """The orchestrator refuses a typo unsent; the emulator refuses it too when allowed."""
    async with Emulator(time_scale=0.01) as emu:
        async with fast_client(emu) as client, Orchestrator(client) as orch:
            with pytest.raises(UnknownModelError, match="seedance-2"):
                await orch.generate("seedance2", LEGACY)
        assert emu.stats.submit_attempts == 0
        async with fast_client(emu, allow_unknown_models=True) as client:
            with pytest.raises(BadRequestError, match="did you mean"):
                await client.submit("seedance2", LEGACY)
        assert emu.stats.submit_attempts == 1
