"""The prose rules of the Seedance families (``api-manual/video-series/seedance-*``), as data.

Where the docs contradict themselves we are strict in what we send, and the rule says so.
"""

from __future__ import annotations

from ._cross_rule import CrossRule

__all__ = ["SEEDANCE_MODELS", "SEEDANCE_RULES"]

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

SEEDANCE_RULES = (
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
