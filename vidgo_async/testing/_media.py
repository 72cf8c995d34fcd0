"""The video every finished emulated task serves: a bundled, tiny, playable MP4.

``data/sample.mp4`` is a 1 s, 160x90, 10 fps H.264 test pattern with a 440 Hz AAC tone
(about 7 kB), made once with ffmpeg's ``testsrc`` and ``sine`` sources.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

__all__ = ["SAMPLE_CONTENT_TYPE", "sample_sha256", "sample_video"]

SAMPLE_CONTENT_TYPE = "video/mp4"


@functools.cache
def sample_video() -> bytes:
    """Return the bytes of the bundled sample MP4."""
    return resources.files("vidgo_async.testing").joinpath("data/sample.mp4").read_bytes()


@functools.cache
def sample_sha256() -> str:
    """Return the hex sha256 of the sample MP4 (what a correct download must match)."""
    return hashlib.sha256(sample_video()).hexdigest()
