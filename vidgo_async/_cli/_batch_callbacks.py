"""Callbacks for ``vidgo-async batch``: ``--callback-base-url URL --listen HOST:PORT``.

The command runs a :class:`~vidgo_async.webhooks.CallbackReceiver` on ``HOST:PORT`` for its
own jobs. Each job's callback URL is ``URL/<token>`` and the receiver answers exactly
``POST <URL's path>/<token>``, so a tunnel or reverse proxy forwarding ``URL`` to
``HOST:PORT`` (keeping the path) is all a public setup needs. Against a local API (the
built-in emulator, or a loopback ``--base-url``) the URL may be left out: it is then
``http://HOST:PORT`` on a loopback ``HOST``.

A rerun re-registers the callback tokens its journal holds (as hashes) so that callbacks
to URLs an earlier run handed out still count: an unknown submit's callback then reveals
its task, which is journaled so that the next run polls it instead of leaving it alone.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs

from .._errors import InputValidationError
from .._hosts import is_loopback_host

if TYPE_CHECKING:
    from .._client import VidgoClient
    from .._journal import Journal
    from .._resume import ResumePlan
    from ..webhooks import CallbackReceiver, VerifiedCallback

__all__ = [
    "CallbackSettings",
    "CallbackSetupError",
    "add_arguments",
    "callback_receiver",
    "callbacks_asked",
    "reregister_tokens",
    "settings_from_args",
]

_HINT_PUBLIC = (
    "HINT: point a tunnel or reverse proxy at the --listen address and pass its https "
    "URL. Plain http on a public host needs --allow-insecure-callbacks (the token in the "
    "URL is then readable on the way); on loopback it is for testing with --emulator."
)


_WILDCARDS = ("0.0.0.0", "::")  # noqa: S104 - listening everywhere is the user's choice


class CallbackSetupError(Exception):
    """The callback options cannot work; ``lines`` say why and how to fix it."""

    def __init__(self, *lines: str) -> None:
        super().__init__(lines[0] if lines else "bad callback options")
        self.lines = lines


@attrs.frozen
class CallbackSettings:
    """Where the batch's callback receiver listens and the base URL its jobs are given."""

    host: str
    port: int
    base_url: str | None  # None: http://host:port, known once the port is bound
    allow_insecure: bool = False
    signing_key: str | None = attrs.field(default=None, repr=False)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--callback-base-url`` and ``--listen`` to the batch parser."""
    parser.add_argument(
        "--callback-base-url",
        metavar="URL",
        help="receive Vidgo callbacks: each job's callback URL is URL/<token> (public https; "
        "http only on loopback). Needs --listen",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="run the callback receiver here (plain http; URL must reach it, path kept). "
        "Without --callback-base-url, only against a local API (--emulator or a loopback "
        "--base-url): the URL is then http://HOST:PORT",
    )
    parser.add_argument(
        "--allow-insecure-callbacks",
        action="store_true",
        help="accept a plain http --callback-base-url on a public host (the callback token "
        "travels in the URL, readable by anyone on the way)",
    )
    parser.add_argument(
        "--callback-signing-key-env",
        metavar="VAR",
        help="refuse callbacks without a valid X-Webhook-Signature, with the HMAC key read "
        "from environment variable VAR (never from the command line)",
    )


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6) into host and port.

    Raises:
        CallbackSetupError: not ``HOST:PORT``, or the port is not 0-65535.
    """
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address must be bracketed: [::1]:8080
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise CallbackSetupError(
            f"vidgo-async batch: --listen must be HOST:PORT with a port from 0 to 65535 "
            f"(got {text!r}); e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080"
        )
    return host, int(port_text)


def callbacks_asked(args: argparse.Namespace) -> bool:
    """Whether the command line asks for callbacks (``--callback-base-url`` or ``--listen``)."""
    return (
        getattr(args, "callback_base_url", None) is not None
        or getattr(args, "listen", None) is not None
    )


def settings_from_args(args: argparse.Namespace) -> CallbackSettings | None:
    """Check the callback options before anything is submitted; ``None`` without them.

    Raises:
        CallbackSetupError: an option is missing, malformed, or names a URL Vidgo
            cannot call.
    """
    if not callbacks_asked(args):
        return None
    base_url: str | None = getattr(args, "callback_base_url", None)
    listen: str | None = getattr(args, "listen", None)
    if listen is None:
        raise CallbackSetupError(
            "vidgo-async batch: --callback-base-url needs --listen HOST:PORT, the address "
            "the URL forwards to: the command receives its own callbacks."
        )
    host, port = parse_listen(listen)
    insecure = bool(getattr(args, "allow_insecure_callbacks", False))
    signing_key = _signing_key(getattr(args, "callback_signing_key_env", None))
    local_api = bool(args.emulator) or (
        args.base_url is not None and is_loopback_host(urlsplit(args.base_url).hostname)
    )
    if base_url is None:
        if not local_api:
            raise CallbackSetupError(
                "vidgo-async batch: --listen needs --callback-base-url URL, the public https "
                f"URL that reaches {listen} (e.g. your tunnel's).",
                _HINT_PUBLIC,
            )
        if is_loopback_host(host):
            return CallbackSettings(host, port, None, insecure, signing_key)
        if host in _WILDCARDS and port != 0:
            # Every address includes loopback: the local API calls back through it.
            loopback = "[::1]" if ":" in host else "127.0.0.1"
            return CallbackSettings(host, port, f"http://{loopback}:{port}", insecure, signing_key)
        raise CallbackSetupError(
            f"vidgo-async batch: listening on {listen!r} needs --callback-base-url URL "
            "(the URL that reaches it); without one, listen on a loopback address such as "
            "127.0.0.1:0, or on a fixed port such as 0.0.0.0:8080."
        )
    _check_base_url(base_url, local_api=local_api, insecure=insecure)
    return CallbackSettings(host, port, base_url, insecure, signing_key)


def _signing_key(variable: str | None) -> str | None:
    if variable is None:
        return None
    key = os.environ.get(variable, "")
    if not key:
        raise CallbackSetupError(
            f"vidgo-async batch: --callback-signing-key-env {variable}: the environment "
            "variable is not set or empty; set it to the webhook HMAC key."
        )
    return key


def _check_base_url(base_url: str, *, local_api: bool, insecure: bool) -> None:
    from ..webhooks import CallbackRegistry

    try:
        CallbackRegistry(base_url, allow_insecure_callbacks=insecure)
    except InputValidationError as exc:
        raise CallbackSetupError(
            *(f"vidgo-async batch: --callback-base-url {issue.rule}" for issue in exc.issues),
            f"  (got {base_url!r})",
            _HINT_PUBLIC,
        ) from None
    if not local_api and is_loopback_host(urlsplit(base_url).hostname):
        raise CallbackSetupError(
            f"vidgo-async batch: --callback-base-url {base_url!r} is a loopback URL, which "
            "Vidgo's servers cannot call; loopback URLs are only for --emulator or a "
            "loopback --base-url.",
            _HINT_PUBLIC,
        )


@contextlib.asynccontextmanager
async def callback_receiver(
    client: VidgoClient, settings: CallbackSettings | None, say: Callable[[str], None]
) -> AsyncIterator[CallbackReceiver | None]:
    """Run the batch's receiver on its address while the block runs (``None``: no callbacks).

    Raises:
        CallbackSetupError: the address cannot be listened on (nothing was submitted yet).
    """
    if settings is None:
        yield None
        return
    from ..webhooks import CallbackReceiver

    receiver = CallbackReceiver(
        client,
        settings.base_url,
        allow_insecure_callbacks=settings.allow_insecure,
        signing_key=settings.signing_key,
    )
    async with contextlib.AsyncExitStack() as stack:
        try:
            server = await stack.enter_async_context(receiver.serve(settings.host, settings.port))
        except OSError as exc:
            raise CallbackSetupError(
                f"vidgo-async batch: cannot listen on {settings.host}:{settings.port} for "
                f"callbacks ({exc.strerror or exc}); nothing was submitted."
            ) from None
        say(
            f"  callbacks: {server.base_url}/<token>, received on "
            f"{server.host}:{server.port}; polling only as a slow fallback"
        )
        try:
            yield receiver
        finally:
            stats = receiver.stats
            refused = stats.not_found + stats.invalid + stats.too_large + stats.unsigned
            say(
                f"  callbacks: {stats.delivered} verified"
                + (f" ({stats.adopted} revealed an unknown submit)" if stats.adopted else "")
                + f", {stats.received} received, {refused} refused"
            )


async def reregister_tokens(
    receiver: CallbackReceiver | None,
    journal: Journal | None,
    plan: ResumePlan | None,
    say: Callable[[str], None],
) -> int:
    """Recognise the callback tokens an earlier run journaled (as hashes); return how many.

    A re-attached job's token is bound to its task (so no other job can adopt that task);
    an unknown submit's token gets a subscriber that journals the task its callback
    reveals, for the next run to poll.
    """
    if receiver is None or journal is None or plan is None:
        return 0
    registry = receiver.registry
    count = 0
    for request, task in plan.attach:
        entry = await journal.get(request.key or "")
        if entry is not None and entry.callback_token is not None:
            with contextlib.suppress(ValueError):  # already bound: nothing to add
                registry.register_hash(entry.callback_token, request.key, task_id=task.task_id)
                count += 1
    for request, entry in plan.in_doubt:
        if entry.callback_token is not None and entry.task_id is None:
            key = entry.key

            async def revealed(event: VerifiedCallback, key: str = key) -> None:
                if event.adopted:
                    await journal.record_submitted(key, event.task.task_id)
                    say(
                        f"  {key}: a callback revealed its task {event.task.task_id} "
                        "(journaled: the next run polls it, never submits it again)"
                    )

            registry.register_hash(entry.callback_token, request.key, subscriber=revealed)
            count += 1
    return count
