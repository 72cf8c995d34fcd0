"""``vidgo-async models [MODEL] [--json]``: the model ids Vidgo documents, and their inputs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import attrs

from .._catalog import FieldSpec, ModelSpec, catalog
from .._validation import suggest_models

__all__ = ["register"]

_DESCRIPTION = """\
List every model id Vidgo documents, with its kind (video, image, music). With MODEL,
show its input fields (type, limits, required) and the cross-field rules of its docs page.
The catalog is derived from the official docs; an id missing here can still be sent with
--allow-unknown-model (batch) or allow_unknown_models=True (the client).
Exit status: 0, or 2 for an unknown MODEL (with the closest ids).
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``models`` command."""
    parser = subparsers.add_parser(
        "models",
        help="list the documented model ids, or show one model's input fields",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", nargs="?", help="a model id to describe")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    known = catalog()
    if args.model is None:
        specs = list(known.models.values())
        if args.json:
            _print_json([{"id": spec.id, "kind": spec.kind} for spec in specs])
        else:
            width = max(len(spec.id) for spec in specs)
            for spec in specs:
                sys.stdout.write(f"{spec.id:<{width}}  {spec.kind}\n")
            sys.stdout.write(f"{len(specs)} models (docs commit {known.docs_commit})\n")
        return 0
    found = known.models.get(args.model)
    if found is None:
        suggestions = suggest_models(args.model)
        hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
        sys.stderr.write(f"vidgo-async models: unknown model {args.model!r}{hint}\n")
        return 2
    if args.json:
        _print_json(_as_json(found))
    else:
        sys.stdout.write(_describe(found))
    return 0


def _as_json(spec: ModelSpec) -> dict[str, Any]:
    def drop_defaults(field: attrs.Attribute[Any], value: Any) -> bool:
        return value != field.default or field.name in ("id", "name", "type")

    data: dict[str, Any] = attrs.asdict(spec, filter=drop_defaults)
    return data


def _describe(spec: ModelSpec) -> str:
    lines = [f"{spec.id} ({spec.kind}) from {spec.source}", "fields:"]
    width = max((len(field.name) for field in spec.fields), default=0)
    for field in spec.fields:
        lines.append(f"  {field.name:<{width}}  {_field_text(field)}")
    lines.append("other fields are refused")
    if spec.any_of_required:
        groups = " or ".join(" + ".join(group) for group in spec.any_of_required)
        lines.append(f"needs {groups}")
    if spec.callback_required:
        lines.append("the submit needs a callback_url (required by its schema)")
    if spec.rules:
        lines.append("rules:")
        lines.extend(f"  - {rule}" for rule in spec.rules)
    return "\n".join(lines) + "\n"


def _field_text(field: FieldSpec) -> str:
    text = field.describe()
    if field.required:
        text += " (required)"
    elif field.default is not None:
        text += f" (default {json.dumps(field.default)})"
    return text


def _print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
