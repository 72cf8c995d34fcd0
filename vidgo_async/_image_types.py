"""The image types Vidgo's upload endpoints accept, read from a file's first bytes.

Shared by the client's upload checks and the emulator's upload endpoints (a pure rule,
like the input rules): "Supported formats: JPEG, PNG, GIF, WebP" on each upload page.
"""

from __future__ import annotations

__all__ = ["ALLOWED_IMAGE_TYPES", "sniff_image_type"]

ALLOWED_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def sniff_image_type(data: bytes) -> str | None:
    """Return the MIME type of a JPEG, PNG, GIF or WebP image from its first bytes, else ``None``."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None
