"""Tests of the typed inputs and validate_input: every documented rule, typed and as a mapping."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidgo_async import (
    InputValidationError,
    Seedance2Input,
    Seedance10ProInput,
    Seedance15ProInput,
)
from vidgo_async import validate_input as prepare_input

IMG = "https://example.com/a.png"
VID = "https://example.com/a.mp4"
AUD = "https://example.com/a.mp3"
S2 = {"prompt": "a fox runs", "duration": 5, "resolution": "720p"}
S15 = {"prompt": "a fox runs", "duration": 4, "aspect_ratio": "16:9"}
S10 = {"prompt": "a fox runs"}

# (model, input class, valid base, overrides, the field path named in the error)
BROKEN: list[tuple[str, type[Any], dict[str, Any], dict[str, Any], str]] = [
    ("seedance-2", Seedance2Input, S2, {"prompt": "   "}, "prompt"),
    ("seedance-2", Seedance2Input, S2, {"prompt": "x" * 20001}, "prompt"),
    ("seedance-2", Seedance2Input, S2, {"prompt": 5}, "prompt"),
    ("seedance-2", Seedance2Input, S2, {"duration": 3}, "duration"),
    ("seedance-2", Seedance2Input, S2, {"duration": 16}, "duration"),
    ("seedance-2", Seedance2Input, S2, {"duration": 5.5}, "duration"),
    ("seedance-2", Seedance2Input, S2, {"duration": True}, "duration"),
    ("seedance-2", Seedance2Input, S2, {"resolution": "8k"}, "resolution"),
    ("seedance-2", Seedance2Input, S2, {"image_urls": []}, "image_urls"),
    ("seedance-2", Seedance2Input, S2, {"prompt": "a \ud800 fox"}, "prompt"),
    ("seedance-2", Seedance2Input, S2, {"aspect_ratio": "2:1"}, "aspect_ratio"),
    ("seedance-2", Seedance2Input, S2, {"generate_audio": "yes"}, "generate_audio"),
    ("seedance-2", Seedance2Input, S2, {"seed": "42"}, "seed"),
    ("seedance-2", Seedance2Input, S2, {"image_urls": [IMG, IMG, IMG]}, "image_urls"),
    ("seedance-2", Seedance2Input, S2, {"image_urls": ["not-a-url"]}, "image_urls"),
    (
        "seedance-2",
        Seedance2Input,
        S2,
        {"reference_image_urls": [IMG] * 10},
        "reference_image_urls",
    ),
    ("seedance-2", Seedance2Input, S2, {"reference_video_urls": [VID] * 4}, "reference_video_urls"),
    (
        "seedance-2",
        Seedance2Input,
        S2,
        {"reference_audio_urls": [AUD] * 4, "reference_image_urls": [IMG]},
        "reference_audio_urls",
    ),
    ("seedance-2", Seedance2Input, S2, {"reference_audio_urls": [AUD]}, "reference_audio_urls"),
    (
        "seedance-2",
        Seedance2Input,
        S2,
        {"image_urls": [IMG], "reference_image_urls": [IMG]},
        "image_urls",
    ),
    ("seedance-1.5-pro", Seedance15ProInput, S15, {"duration": 5}, "duration"),
    ("seedance-1.5-pro", Seedance15ProInput, S15, {"aspect_ratio": "auto"}, "aspect_ratio"),
    ("seedance-1.5-pro", Seedance15ProInput, S15, {"resolution": "4k"}, "resolution"),
    ("seedance-1.5-pro", Seedance15ProInput, S15, {"image_urls": [IMG] * 3}, "image_urls"),
    ("seedance-1.0-pro", Seedance10ProInput, S10, {"prompt": "x" * 10001}, "prompt"),
    ("seedance-1.0-pro", Seedance10ProInput, S10, {"duration": 8}, "duration"),
    ("seedance-1.0-pro", Seedance10ProInput, S10, {"resolution": "480p"}, "resolution"),
    ("seedance-1.0-pro", Seedance10ProInput, S10, {"image_urls": [IMG, IMG]}, "image_urls"),
]


@pytest.mark.parametrize(("model", "cls", "base", "change", "field"), BROKEN)
def test_typed_input_rejects_each_broken_rule(
    model: str, cls: type[Any], base: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    """Building a typed input that breaks a rule raises, naming the field."""
    with pytest.raises(InputValidationError) as info:
        cls(**{**base, **change})
    assert any(issue.field.startswith(f"$.input.{field}") for issue in info.value.issues)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("model", "cls", "base", "change", "field"), BROKEN)
def test_mapping_input_rejects_each_broken_rule(
    model: str, cls: type[Any], base: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    """The same rule applies to a plain mapping for a typed model."""
    with pytest.raises(InputValidationError) as info:
        prepare_input(model, {**base, **change})
    assert any(issue.field.startswith(f"$.input.{field}") for issue in info.value.issues)


@pytest.mark.parametrize(
    ("model", "base"),
    [
        ("seedance-2", S2),
        ("seedance-2-fast", S2),
        ("seedance-1.5-pro", S15),
        ("seedance-1.0-pro", S10),
    ],
)
def test_valid_inputs_pass_and_omit_unset_fields(model: str, base: dict[str, Any]) -> None:
    """A valid mapping is sent with exactly its fields."""
    assert prepare_input(model, {**base, "image_urls": None}) == base


@pytest.mark.parametrize("missing", ["prompt", "duration", "resolution"])
def test_seedance2_required_fields(missing: str) -> None:
    """prompt, duration and resolution are required (the price is always explicit)."""
    data = {key: value for key, value in S2.items() if key != missing}
    with pytest.raises(InputValidationError, match=missing):
        prepare_input("seedance-2", data)


def test_unknown_field_of_a_typed_model_is_rejected() -> None:
    """Typos are caught: an unknown field of a typed model is an error."""
    with pytest.raises(InputValidationError, match="durration"):
        prepare_input("seedance-2", {**S2, "durration": 5})


def test_typed_input_for_the_wrong_model_is_rejected() -> None:
    """A Seedance2Input cannot be sent to seedance-1.0-pro."""
    with pytest.raises(InputValidationError, match="Seedance2Input"):
        prepare_input("seedance-1.0-pro", Seedance2Input(**S2))


def test_typed_input_to_dict_is_the_body() -> None:
    """to_dict sends lists as lists and leaves unset fields out."""
    value = Seedance2Input(**S2, reference_image_urls=(IMG,), generate_audio=False)
    assert value.to_dict() == {**S2, "generate_audio": False, "reference_image_urls": [IMG]}


def test_error_reports_every_issue() -> None:
    """All broken rules are listed, the first in field/rule/value."""
    with pytest.raises(InputValidationError) as info:
        prepare_input("seedance-2", {"prompt": " ", "duration": 99, "resolution": "8k"})
    assert len(info.value.issues) == 3
    assert {issue.field for issue in info.value.issues} == {
        "$.input.prompt",
        "$.input.duration",
        "$.input.resolution",
    }
    assert "3 input errors" in str(info.value)


def test_passthrough_model_is_sent_as_given() -> None:
    """A model without a typed input passes its mapping through, minus None values."""
    body = {"prompt": "x", "size": {"width": 1, "height": 2}, "n": 2, "mask_url": None}
    assert prepare_input("seedream-5.0-lite", body) == {
        "prompt": "x",
        "size": {"width": 1, "height": 2},
        "n": 2,
    }


@pytest.mark.parametrize("value", [{"x": float("nan")}, {"x": object()}, ["not", "a", "map"]])
def test_passthrough_must_be_a_json_object(value: Any) -> None:
    """A passthrough input must be a JSON-serialisable mapping."""
    with pytest.raises(InputValidationError):
        prepare_input("kling-2.6", value)


@pytest.mark.parametrize("model", ["", " ", "a b", "x" * 500, None])
def test_bad_model_ids_are_rejected(model: Any) -> None:
    """An empty or malformed model id fails before sending."""
    with pytest.raises(InputValidationError):
        prepare_input(model, {"prompt": "x"})


@given(
    st.dictionaries(
        st.sampled_from(
            ["prompt", "duration", "resolution", "aspect_ratio", "seed", "image_urls", "extra"]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-10, 30),
            st.text(max_size=30),
            st.lists(st.text(max_size=20), max_size=4),
        ),
    )
)
def test_arbitrary_mappings_never_crash(data: dict[str, Any]) -> None:
    """Any mapping either prepares cleanly or raises InputValidationError (Hypothesis)."""
    issues: list[Any] = []
    body: dict[str, Any] | None = None
    try:
        body = prepare_input("seedance-2", data)
    except InputValidationError as exc:
        issues = exc.issues
    if body is None:
        assert issues
    else:
        assert 4 <= body["duration"] <= 15
        assert body["resolution"] in ("480p", "720p", "1080p", "4k")


def _reference_body(cls: type[Any], model: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The input as the typed class builds it from ``data`` (``None`` when it is refused)."""
    try:
        body: dict[str, Any] = cls(**{k: v for k, v in data.items() if v is not None}).to_dict()
        return body
    except (InputValidationError, TypeError):
        return None


URLS = st.lists(st.sampled_from([IMG, VID, AUD, "not-a-url"]), max_size=3)


@given(
    st.fixed_dictionaries(
        {"prompt": st.sampled_from(["a fox runs", "hi", None]), "duration": st.integers(3, 16)},
        optional={
            "resolution": st.sampled_from(["480p", "720p", "1080p", None]),
            "aspect_ratio": st.sampled_from(["16:9", "2:1", None]),
            "generate_audio": st.booleans() | st.none(),
            "seed": st.integers(-5, 5) | st.none(),
            "image_urls": URLS | st.tuples(st.just(IMG)) | st.none(),
            "reference_image_urls": URLS | st.none(),
            "reference_video_urls": URLS | st.none(),
            "reference_audio_urls": URLS | st.none(),
        },
    )
)
def test_mapping_is_checked_once_with_the_typed_class_outcome(data: dict[str, Any]) -> None:
    """A mapping gives exactly the typed class's body, or an error when the class refuses it."""
    expected = _reference_body(Seedance2Input, "seedance-2", data)
    try:
        body: dict[str, Any] | None = prepare_input("seedance-2", data)
    except InputValidationError:
        body = None
    assert body == expected
    if expected is not None:
        built = Seedance2Input.from_mapping(data)
        assert built == Seedance2Input(**{k: v for k, v in data.items() if v is not None})
        assert built.to_dict() == expected


def test_from_mapping_still_reports_every_rule() -> None:
    """from_mapping refuses a broken mapping with the same issues as before."""
    with pytest.raises(InputValidationError) as info:
        Seedance15ProInput.from_mapping({"prompt": "", "duration": 5}, model="seedance-1.5-pro")
    assert {issue.field for issue in info.value.issues} == {
        "$.input.duration",
        "$.input.aspect_ratio",
    }


def test_from_mapping_keeps_url_lists_immutable_and_refuses_empty_ones() -> None:
    """URL lists become tuples on the instance; an empty list is refused, not sent."""
    built = Seedance10ProInput.from_mapping({"prompt": "p", "image_urls": [IMG]})
    assert built.image_urls == (IMG,)
    with pytest.raises(InputValidationError, match="empty list"):
        prepare_input("seedance-1.0-pro", {"prompt": "p", "image_urls": []})


def test_typed_construction_still_validates() -> None:
    """Building a typed input directly keeps checking its rules."""
    with pytest.raises(InputValidationError, match="duration"):
        Seedance2Input(prompt="a fox runs", duration=99, resolution="720p")


def test_none_is_absent_and_empty_lists_or_floats_are_named() -> None:
    """None values are never sent; an empty list, a missing field and a float are each named."""
    base = {"prompt": "a paper boat on a river", "duration": 5, "resolution": "720p"}
    assert prepare_input("seedance-2", {**base, "seed": None}) == base
    with pytest.raises(InputValidationError) as info:
        prepare_input("seedance-2", {**base, "prompt": None, "duration": 5.0, "seed": []})
    assert [(i.field, i.rule) for i in info.value.issues] == [
        ("$.input.duration", "must be an integer, not a float (use 5)"),
        ("$.input.seed", "must be an integer"),
        ("$.input.prompt", "is required"),
    ]


@pytest.mark.parametrize("model", ["my-model", "x", "seedance-3/text-to-video"])
def test_plausible_unknown_ids_pass_only_when_allowed(model: str) -> None:
    """An id the catalog lacks is refused by default and sent as JSON when allowed."""
    with pytest.raises(InputValidationError, match="not a model Vidgo documents"):
        prepare_input(model, {"prompt": "x"})
    assert prepare_input(model, {"prompt": "x", "n": None}, allow_unknown_models=True) == {
        "prompt": "x"
    }
