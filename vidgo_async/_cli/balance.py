"""``vidgo-async balance``: the account's credits, read with one request."""

from __future__ import annotations

import argparse
import json
import sys

from .._errors import AuthenticationError, PermissionDeniedError, VidgoError
from .._models import Balance
from . import _loop
from ._preflight import add_api_options, check_api_options, display_base_url

__all__ = ["register"]

_DESCRIPTION = """\
Read the account's credit balance (GET /api/user/balance) and print it. The key comes from
VIDGO_API_KEY, the server from --base-url or VIDGO_BASE_URL.
Exit status: 0 when the API answered, 1 when it did not (network, refused key, API error),
2 for a usage error (no key, a bad URL).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``balance`` command."""
    parser = subparsers.add_parser(
        "balance",
        help="show the account's credit balance",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_api_options(parser)
    parser.add_argument("--json", action="store_true", help="print the balance as JSON")
    parser.set_defaults(handler=_run)


def _say(text: str) -> None:
    sys.stderr.write(f"vidgo-async balance: {text}\n")


def _run(args: argparse.Namespace) -> int:
    problem = check_api_options(args)
    if problem is not None:
        _say(problem)
        return 2
    from .._client import VidgoClient  # imported on use: other commands need no HTTP stack

    async def query() -> Balance:
        async with VidgoClient(
            base_url=args.base_url, allow_insecure=args.allow_insecure
        ) as client:
            return await client.balance()

    try:
        balance = _loop.run(query)
    except (AuthenticationError, PermissionDeniedError) as exc:
        _say(f"the API refused the key ({exc}). HINT: check VIDGO_API_KEY.")
        return 1
    except VidgoError as exc:
        _say(f"no answer: {exc}")
        return 1
    if args.json:
        data = {"credits": balance.credits_amount, "email": balance.email}
        sys.stdout.write(json.dumps(data) + "\n")
        return 0
    where = display_base_url(args.base_url)
    sys.stdout.write(f"credits: {balance.credits_amount:g}\n")
    if balance.email:
        sys.stdout.write(f"account: {balance.email}\n")
    if where is not None:
        sys.stdout.write(f"server:  {where}\n")
    return 0
