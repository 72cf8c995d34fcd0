"""Names of downloaded result files: one per (id, file number), never a path, never shared.

A plain id (``[A-Za-z0-9._-]``, not starting with a dot, at most 100 characters, not a
reserved device name) is its own file stem; any other id is cleaned and marked with a hash
of the original; several files of one task are numbered ``~<n>``. ``~`` never occurs in a
kept id, so the mapping is one-to-one: job ``j1``'s second file can never be job ``j1-2``'s.
The extension comes from a whitelist, never from whatever the URL says.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from collections.abc import Iterable
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

__all__ = [
    "ALLOWED_EXTENSIONS",
    "INDEX_SEPARATOR",
    "case_collisions",
    "extension_for",
    "file_name_for",
]

ALLOWED_EXTENSIONS = frozenset(
    {"mp4", "mov", "webm", "png", "jpg", "jpeg", "webp", "gif", "mp3", "wav", "glb", "bin"}
)
_CONTENT_TYPES = {
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "model/gltf-binary": "glb",
}
_MAX_STEM = 100
# Separates an id from its markers (``~h<hash>``, ``~<n>``); never part of a kept id.
INDEX_SEPARATOR = "~"
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)


def file_name_for(task_id: str, index: int | None = None) -> str:
    """Return a safe file stem for a task's (or job's) file, distinct for every id and index.

    A plain id (``[A-Za-z0-9._-]``, not starting with a dot, at most 100 characters, not a
    reserved device name) is kept as it is. Any other id is cleaned (other characters
    become ``_``, cut to 100) and marked ``~h<hash of the original>``. The file number of a
    multi-file task follows as ``~<n>``. ``~`` never occurs in a kept id, so no id, cleaned
    id or numbered name can equal another's: job ``j1``'s second file is ``j1~2`` and can
    never be job ``j1-2``'s (or ``j1~2``'s, which is cleaned and hashed).
    """
    normalised = unicodedata.normalize("NFKC", task_id)
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", normalised)
    clean = re.sub(r"\.{2,}", "_", clean).strip("._-")
    changed = clean != task_id
    if len(clean) > _MAX_STEM:
        clean, changed = clean[:_MAX_STEM].rstrip("._-"), True
    if not clean or clean.split(".", 1)[0].lower() in _WINDOWS_RESERVED:
        clean, changed = f"task_{clean}".rstrip("._-"), True
    if changed:
        digest = hashlib.sha256(task_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        clean = f"{clean}{INDEX_SEPARATOR}h{digest}"
    return clean if index is None else f"{clean}{INDEX_SEPARATOR}{index}"


def case_collisions(ids: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of ids whose file names differ only in case (one file on macOS or Windows)."""
    seen: dict[str, str] = {}
    clashes: list[tuple[str, str]] = []
    for name in ids:
        folded = file_name_for(name).casefold()
        if folded in seen and seen[folded] != name:
            clashes.append((seen[folded], name))
        else:
            seen.setdefault(folded, name)
    return clashes


def extension_for(url: str, content_type: str | None = None) -> str:
    """Pick a whitelisted extension from the URL path, else the content type, else ``bin``."""
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        path = ""
    suffix = PurePosixPath(path).suffix.lower().lstrip(".")
    if suffix in ALLOWED_EXTENSIONS:
        return suffix
    if content_type:
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind in _CONTENT_TYPES:
            return _CONTENT_TYPES[kind]
        guessed = (mimetypes.guess_extension(kind) or "").lstrip(".")
        if guessed in ALLOWED_EXTENSIONS:
            return guessed
    return "bin"
