"""``vidgo-async status TASK_ID``: one status query, for a task id from a journal or a log."""

from __future__ import annotations

import argparse
import json
import sys

from .._converter import converter
from .._errors import NotFoundError, VidgoError
from .._models import Task
from . import _loop
from ._preflight import add_api_options, check_api_options

__all__ = ["register"]

_DESCRIPTION = """\
Ask the Vidgo API for the status of one task (GET /api/generate/status/TASK_ID) and print
it. The key comes from VIDGO_API_KEY, the server from --base-url or VIDGO_BASE_URL.
Exit status: 0 when the API answered, 1 when it did not (not found, network, API error),
2 for a usage error (no key, a bad URL).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``status`` command."""
    parser = subparsers.add_parser(
        "status",
        help="show the status of one task",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("task_id", metavar="TASK_ID", help="the task id a submit returned")
    add_api_options(parser)
    parser.add_argument("--json", action="store_true", help="print the task as JSON")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from .._client import VidgoClient  # imported on use: other commands need no HTTP stack

    problem = check_api_options(args)
    if problem is not None:  # a command-line hint, not the client's Python one
        sys.stderr.write(f"vidgo-async status: {problem}\n")
        return 2
    try:
        client = VidgoClient(base_url=args.base_url, allow_insecure=args.allow_insecure)
    except (VidgoError, ValueError) as exc:
        sys.stderr.write(f"vidgo-async status: error: {exc}\n")
        return 2

    async def query() -> Task:
        async with client:
            return await client.get_task(args.task_id)

    try:
        task = _loop.run(query)
    except NotFoundError:
        sys.stderr.write(
            f"vidgo-async status: task {args.task_id} was not found. HINT: check the id, and "
            "that --base-url and VIDGO_API_KEY are the ones it was submitted with.\n"
        )
        return 1
    except VidgoError as exc:
        sys.stderr.write(f"vidgo-async status: error: {exc}\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps(converter.unstructure(task), indent=2) + "\n")
    else:
        sys.stdout.write(_describe(task))
    return 0


def _describe(task: Task) -> str:
    status = task.status.value
    if task.progress is not None and not task.is_terminal:
        status += f" ({task.progress}%)"
    lines = [f"task_id: {task.task_id}", f"status:  {status}"]
    if task.created_time is not None:
        lines.append(f"created: {task.created_time.isoformat()}")
    if task.credits_amount is not None:
        lines.append(f"credits: {task.credits_amount:g}")
    if task.error_message:
        lines.append(f"error:   {task.error_message}")
    for file in task.files:
        lines.append(f"file:    {file.file_type} {file.file_url}")
    return "\n".join(lines) + "\n"
