"""Typed inputs of the Seedance families (every other model takes a plain mapping).

Each typed input is a frozen attrs class checked by the one validation engine
(``_validation.validate_input``) when it is built, so a bad value fails at the line that
made it, before any request. A class serves several model ids (e.g. ``seedance-2`` and
``seedance-2-fast``): it is built if it suits at least one of them, and checked again for
the exact id at submit. Optional fields left unset are omitted from the JSON body, never
sent as ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs

from ._errors import InputValidationError
from ._validation import validate_input

__all__ = [
    "ModelInput",
    "Seedance2Input",
    "Seedance10ProInput",
    "Seedance15ProInput",
    "Seedance20ImageToVideoInput",
    "Seedance20ReferenceToVideoInput",
    "Seedance20TextToVideoInput",
    "Seedance25ImageToVideoInput",
    "Seedance25ReferenceToVideoInput",
    "Seedance25TextToVideoInput",
]

AspectRatio = Literal["auto", "1:1", "21:9", "4:3", "3:4", "16:9", "9:16"]
LegacyAspectRatio = Literal["1:1", "21:9", "4:3", "3:4", "16:9", "9:16"]
Resolution = Literal["480p", "720p", "1080p", "4k"]
FastResolution = Literal["480p", "720p"]


def _url_tuple(value: object) -> object:
    """Store URL lists as tuples (so inputs stay immutable); leave anything else to the rules."""
    if isinstance(value, list | tuple):
        return tuple(value)
    return value


def _urls() -> Any:
    return attrs.field(default=None, converter=_url_tuple)


class ModelInput:
    """Base of the typed inputs. ``to_dict()`` gives the JSON ``input`` object."""

    MODELS: ClassVar[tuple[str, ...]]

    def __attrs_post_init__(self) -> None:
        _check_for_any(type(self), self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """Return the ``input`` object as sent: unset (``None``) fields are left out."""
        out: dict[str, Any] = {}
        for field in attrs.fields(type(self)):  # type: ignore[arg-type]  # subclasses are attrs classes
            value = getattr(self, field.name)
            if value is None:
                continue
            out[field.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, model: str | None = None) -> ModelInput:
        """Build the input from a plain mapping, reporting every broken rule at once."""
        body = validate_input(model, data) if model is not None else _check_for_any(cls, data)
        unknown = set(body) - {field.name for field in attrs.fields(cls)}  # type: ignore[arg-type]  # subclasses are attrs classes
        if unknown:  # pragma: no cover - the catalog refuses fields the class lacks
            raise TypeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
        return cls(**body)


def _check_for_any(cls: type[ModelInput], data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``data`` for the first of ``cls.MODELS`` it suits; raise the first's issues."""
    first: InputValidationError | None = None
    for model in cls.MODELS:
        try:
            return validate_input(model, data)
        except InputValidationError as exc:
            first = first or exc
    assert first is not None  # noqa: S101 - every class names at least one model
    raise first


@attrs.frozen(kw_only=True)
class Seedance2Input(ModelInput):
    """The input of the legacy ids ``seedance-2`` and ``seedance-2-fast``.

    ``duration`` (4–15 s) and ``resolution`` decide the price, so they are required;
    ``1080p`` and ``4k`` are for ``seedance-2`` only. ``image_urls`` (first and last frame,
    at most 2) cannot be combined with the ``reference_*_urls`` fields (at most 9 images,
    3 videos, 3 audios, 12 in total; audio needs an image or video reference).
    New integrations should prefer the ``seedance-2.0*/…`` ids (the docs call these legacy).
    """

    MODELS: ClassVar[tuple[str, ...]] = ("seedance-2", "seedance-2-fast")

    prompt: str
    duration: int
    resolution: Resolution
    aspect_ratio: AspectRatio | None = None
    generate_audio: bool | None = None
    return_last_frame: bool | None = None
    web_search: bool | None = None
    seed: int | None = None
    image_urls: Sequence[str] | None = _urls()
    reference_image_urls: Sequence[str] | None = _urls()
    reference_video_urls: Sequence[str] | None = _urls()
    reference_audio_urls: Sequence[str] | None = _urls()


_V20 = ("seedance-2.0", "seedance-2.0-fast", "seedance-2.0-mini")


@attrs.frozen(kw_only=True)
class Seedance20TextToVideoInput(ModelInput):
    """The input of ``seedance-2.0/text-to-video`` and its ``-fast`` and ``-mini`` ids.

    ``resolution`` is required except on ``-mini`` (default 720p); ``-fast`` and ``-mini``
    have no 1080p/4k. No media fields.
    """

    MODELS: ClassVar[tuple[str, ...]] = tuple(f"{family}/text-to-video" for family in _V20)

    prompt: str
    duration: int
    resolution: Resolution | None = None
    aspect_ratio: AspectRatio | None = None
    generate_audio: bool | None = None
    return_last_frame: bool | None = None
    web_search: bool | None = None
    seed: int | None = None


@attrs.frozen(kw_only=True)
class Seedance20ImageToVideoInput(ModelInput):
    """The input of ``seedance-2.0/image-to-video`` and its ``-fast`` and ``-mini`` ids.

    ``image_urls`` holds a start frame and an optional end frame (1–2); ``aspect_ratio``
    may only be ``auto``.
    """

    MODELS: ClassVar[tuple[str, ...]] = tuple(f"{family}/image-to-video" for family in _V20)

    prompt: str
    duration: int
    image_urls: Sequence[str] = attrs.field(converter=_url_tuple)
    resolution: Resolution | None = None
    aspect_ratio: Literal["auto"] | None = None
    generate_audio: bool | None = None
    return_last_frame: bool | None = None
    web_search: bool | None = None
    seed: int | None = None


@attrs.frozen(kw_only=True)
class Seedance20ReferenceToVideoInput(ModelInput):
    """The input of ``seedance-2.0/reference-to-video`` and its ``-fast`` and ``-mini`` ids.

    At least one reference image or video; at most 9 images, 3 videos and 3 audios, 12
    files in total; audio needs an image or video reference.
    """

    MODELS: ClassVar[tuple[str, ...]] = tuple(f"{family}/reference-to-video" for family in _V20)

    prompt: str
    duration: int
    resolution: Resolution | None = None
    aspect_ratio: AspectRatio | None = None
    generate_audio: bool | None = None
    return_last_frame: bool | None = None
    web_search: bool | None = None
    seed: int | None = None
    reference_image_urls: Sequence[str] | None = _urls()
    reference_video_urls: Sequence[str] | None = _urls()
    reference_audio_urls: Sequence[str] | None = _urls()


@attrs.frozen(kw_only=True)
class Seedance25TextToVideoInput(ModelInput):
    """The input of ``seedance-2.5/text-to-video``: 4–30 s, 480p or 720p, no media."""

    MODELS: ClassVar[tuple[str, ...]] = ("seedance-2.5/text-to-video",)

    prompt: str
    duration: int
    resolution: FastResolution
    aspect_ratio: AspectRatio | None = None
    generate_audio: bool | None = None


@attrs.frozen(kw_only=True)
class Seedance25ImageToVideoInput(ModelInput):
    """The input of ``seedance-2.5/image-to-video``: 1–2 ``image_urls``, ``auto`` ratio only."""

    MODELS: ClassVar[tuple[str, ...]] = ("seedance-2.5/image-to-video",)

    prompt: str
    duration: int
    resolution: FastResolution
    image_urls: Sequence[str] = attrs.field(converter=_url_tuple)
    aspect_ratio: Literal["auto"] | None = None
    generate_audio: bool | None = None


@attrs.frozen(kw_only=True)
class Seedance25ReferenceToVideoInput(ModelInput):
    """The input of ``seedance-2.5/reference-to-video``.

    At least one reference image or video; at most 30 images, 10 videos and 10 audios,
    50 files in total; audio needs an image or video reference.
    """

    MODELS: ClassVar[tuple[str, ...]] = ("seedance-2.5/reference-to-video",)

    prompt: str
    duration: int
    resolution: FastResolution
    aspect_ratio: AspectRatio | None = None
    generate_audio: bool | None = None
    reference_image_urls: Sequence[str] | None = _urls()
    reference_video_urls: Sequence[str] | None = _urls()
    reference_audio_urls: Sequence[str] | None = _urls()


@attrs.frozen(kw_only=True)
class Seedance15ProInput(ModelInput):
    """The input of ``seedance-1.5-pro`` (its Vidgo page and schema).

    ``aspect_ratio`` and ``duration`` (4, 8 or 12) are required; ``resolution`` is
    480p/720p/1080p; at most 2 ``image_urls`` (first/last frame).
    """

    MODELS: ClassVar[tuple[str, ...]] = ("seedance-1.5-pro",)

    prompt: str
    aspect_ratio: LegacyAspectRatio
    duration: Literal[4, 8, 12]
    resolution: Literal["480p", "720p", "1080p"] | None = None
    fixed_lens: bool | None = None
    generate_audio: bool | None = None
    image_urls: Sequence[str] | None = _urls()


@attrs.frozen(kw_only=True)
class Seedance10ProInput(ModelInput):
    """The input of ``seedance-1.0-pro`` (its Vidgo page and schema).

    Prompt up to 10000 characters, ``duration`` 5 or 10, ``resolution`` 720p or 1080p,
    at most 1 ``image_urls`` entry (image-to-video).
    """

    MODELS: ClassVar[tuple[str, ...]] = ("seedance-1.0-pro",)

    prompt: str
    duration: Literal[5, 10] | None = None
    resolution: Literal["720p", "1080p"] | None = None
    image_urls: Sequence[str] | None = _urls()
