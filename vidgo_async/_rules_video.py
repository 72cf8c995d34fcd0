"""The prose rules of the other video families (Veo, Kling, Grok, Hailuo, Happy Horse, Sora, Wan).

Each rule names its page (relative to the docs' ``api-manual/``). Where the docs
contradict themselves we are strict in what we send, and the rule says so.
"""

from __future__ import annotations

from ._cross_rule import Condition, CrossRule

__all__ = ["VIDEO_RULES"]

_VEO_OFFICIAL = ("veo3.1-fast-official", "veo3.1-lite-official", "veo3.1-quality-official")
_VEO_LITE = ("veo3.1-lite-official",)
_KLING_16 = ("kling-1.6/pro", "kling-1.6/standard")
_KLING_30 = ("kling-3.0/pro", "kling-3.0/standard")
_MULTI_SHOTS: tuple[Condition, ...] = (("multi_shots", (True,)),)

VIDEO_RULES = (
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
