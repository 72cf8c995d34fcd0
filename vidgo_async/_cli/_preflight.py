"""``vidgo-async batch``'s pre-flight: every check that can fail before anything is spent.

Each check returns one line for stderr (or ``None``), so a bad start costs nothing and
leaves nothing behind: the output directory is tried with a real temporary file and every
directory the check created is removed again. The checks touch no network.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from pathlib import Path

from .._config import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, given_base_url

# How a journal names the tasks of ``--emulator`` runs (its port changes at every run).
EMULATOR_SERVER = "the built-in emulator (--emulator)"

__all__ = [
    "add_api_options",
    "check_api_options",
    "check_base_url",
    "check_input",
    "check_journal",
    "check_key",
    "check_options",
    "check_out",
    "display_base_url",
]


def _probe_directory(directory: Path, what: str, option: str) -> str | None:
    """Create ``directory`` (and missing parents) if needed, write a file in it, undo both."""
    created: list[Path] = []
    try:
        if directory.exists() and not directory.is_dir():
            return f"{option} {directory}: is a file, not a directory. HINT: pass a directory for {what}."
        missing = directory
        while not missing.exists():
            created.append(missing)
            if missing.parent == missing:
                break
            missing = missing.parent
        directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".vidgo-preflight-", dir=directory)
        try:
            os.write(handle, b"ok")
        finally:
            os.close(handle)
            os.unlink(name)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return (
            f"{option} {directory}: cannot write {what} there ({reason}). "
            f"HINT: pass a {option} in a directory you can write to."
        )
    finally:
        for path in created:  # innermost first: only what this check made
            with contextlib.suppress(OSError):
                path.rmdir()
    return None


def check_out(out: Path) -> str | None:
    """``--out`` must be a directory we can create and write a file in."""
    return _probe_directory(out, "the videos and results.jsonl", "--out")


def check_journal(journal: Path | None) -> str | None:
    """``--journal`` must not be a directory, and its directory must be writable."""
    if journal is None:
        return None  # it goes to OUT, which check_out tried
    if journal.is_dir():
        return (
            f"--journal {journal}: is a directory. HINT: pass a file path, "
            "e.g. --journal runs/journal.sqlite."
        )
    if journal.exists():
        if not os.access(journal, os.R_OK | os.W_OK):
            return f"--journal {journal}: cannot read and write it. HINT: check its permissions."
        return None
    return _probe_directory(journal.parent, "the journal", "--journal")


def check_base_url(url: str | None, *, allow_insecure: bool) -> str | None:
    """The base URL (``--base-url``, else ``VIDGO_BASE_URL``) must be one the client accepts."""
    from .._http import normalise_base_url

    text = given_base_url(url)
    source = "--base-url" if url else BASE_URL_ENV
    try:
        normalise_base_url(text, allow_insecure=True)
    except ValueError:
        return (
            f"{source} {text!r} is not an http(s) URL with a host. "
            "HINT: use the form https://api.example.com"
        )
    try:  # the client's own rule: plain http only to this machine, unless told otherwise
        normalise_base_url(text, allow_insecure=allow_insecure)
    except ValueError:  # the shape passed above: what is left is plain http elsewhere
        return (
            f"{source} {text!r} uses plain http to a host that is not this machine, so the "
            "key would travel in clear. HINT: use https, or pass --allow-insecure if you mean it."
        )
    return None


def add_api_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--base-url`` and ``--allow-insecure`` for a command that makes one API call."""
    parser.add_argument(
        "--base-url", default=None, help="API base URL (default VIDGO_BASE_URL or the real API)"
    )
    parser.add_argument(
        "--allow-insecure",
        action="store_true",
        help="accept a plain http --base-url on another machine (the key travels in clear)",
    )


def check_api_options(args: argparse.Namespace) -> str | None:
    """The key is set and the base URL (of :func:`add_api_options`) is one the client accepts."""
    return check_key(emulator=False) or check_base_url(
        args.base_url, allow_insecure=args.allow_insecure
    )


def display_base_url(url: str | None) -> str | None:
    """The base URL a run uses when it is not the production one, else ``None``."""
    text = given_base_url(url).strip().rstrip("/")
    return None if text == DEFAULT_BASE_URL else text


def server_of(args: argparse.Namespace) -> str:
    """The server a run's tasks live on, as its journal records it (checked base URL)."""
    from .._http import normalise_base_url

    if args.emulator:
        return EMULATOR_SERVER
    return normalise_base_url(given_base_url(args.base_url), allow_insecure=True)


def check_key(*, emulator: bool) -> str | None:
    """A real run needs ``VIDGO_API_KEY``."""
    if emulator or os.environ.get(API_KEY_ENV, "").strip():
        return None
    return f"no API key. HINT: set {API_KEY_ENV}, or try --emulator."


_OPTION_FIELDS = {
    "$.input.duration": "--duration",
    "$.input.resolution": "--resolution",
    "$.input.aspect_ratio": "--aspect-ratio",
}


def check_options(model: str, duration: int, resolution: str, aspect_ratio: str) -> str | None:
    """The shorthand options must be valid for ``--model``: one error, not one per line."""
    from .._errors import InputValidationError
    from .._validation import validate_input

    values = {"duration": duration, "resolution": resolution, "aspect_ratio": aspect_ratio}
    try:
        # Only the options are judged here: an unknown model is reported by the line checks.
        validate_input(model, {"prompt": "an option check", **values}, allow_unknown_models=True)
    except InputValidationError as exc:
        for issue in exc.issues:
            option = _OPTION_FIELDS.get(issue.field)
            if option is not None:
                return f"{option} {issue.value}: {issue.rule} for --model {model}"
    return None


def check_input(path: Path) -> str | None:
    """The input must be a readable file of UTF-8 text."""
    try:
        with path.open("rb") as handle:
            data = handle.read()
    except IsADirectoryError:
        return f"{path}: is a directory. HINT: pass a JSONL file, one job a line."
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror or exc}. HINT: check the path."
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return (
            f"{path}: line {line} is not UTF-8 text (byte {data[exc.start]:#04x}). "
            "HINT: save the file as UTF-8."
        )
    del text
    return None
