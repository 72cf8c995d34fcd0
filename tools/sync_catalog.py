"""Derive vidgo-async's model catalog from the official Vidgo API docs.

Usage::

    python tools/sync_catalog.py DOCS_DIR [--out PATH]

``DOCS_DIR`` is a checkout of the official docs source (``coolhackboy/mintlify-docs``,
the snapshot in ``../shared/vidgo-docs``). Every ``api-manual/**/*.json`` OpenAPI file
that describes ``POST /api/generate/submit`` is read; its ``SubmitRequest`` schema (with
``oneOf``/discriminator variants resolved per model id) becomes one catalog entry per
model id: facts only (types, enums, bounds, list sizes, required, closed objects), and the
request's own required fields besides ``model`` and ``input`` (``submit_requires``: only
``callback_url`` is known; any other fails the sync). Rules that only the prose pages state
live in ``vidgo_async/_cross_rules.py``, not here.

The output is deterministic (sorted keys and models, fixed formatting), so a test can
regenerate it and compare byte for byte. Default output: ``vidgo_async/_catalog.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

SUBMIT_PATH = "/api/generate/submit"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "vidgo_async" / "_catalog.json"
FORMAT_VERSION = 1

# The JSON-schema keywords kept (facts that validation uses); prose is dropped.
_SCALAR_KEYWORDS = {
    "type": "type",
    "enum": "enum",
    "minimum": "minimum",
    "maximum": "maximum",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_items",
    "maxItems": "max_items",
    "pattern": "pattern",
    "format": "format",
    "default": "default",
}
# Keywords read elsewhere in this script (structure) and prose that carries no rule.
_STRUCTURE_KEYWORDS = {"items", "properties", "required", "additionalProperties", "oneOf", "anyOf"}
_PROSE_KEYWORDS = {"description", "title", "example", "examples", "deprecated"}


class CatalogError(Exception):
    """The docs hold something this script does not understand (fail loudly)."""


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    """Follow local ``$ref`` pointers; sibling keywords of a ``$ref`` win over the target."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
            raise CatalogError(f"unsupported or cyclic $ref {ref!r}")
        seen.add(ref)
        target: Any = doc
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _field(doc: dict[str, Any], node: Any, where: str) -> dict[str, Any]:
    """Normalise one schema node to the catalog's field form."""
    node = _resolve(doc, node)
    if not isinstance(node, dict):
        raise CatalogError(f"{where}: schema is not an object")
    # A keyword this script does not know may be a rule (exclusiveMaximum, multipleOf,
    # uniqueItems, not, ...) that the catalog would silently drop: fail instead.
    unknown = sorted(set(node) - _SCALAR_KEYWORDS.keys() - _STRUCTURE_KEYWORDS - _PROSE_KEYWORDS)
    if unknown:
        raise CatalogError(
            f"{where}: unsupported JSON-schema keywords {unknown}; teach this script "
            "and the validation what they mean before syncing"
        )
    out: dict[str, Any] = {}
    for key, name in _SCALAR_KEYWORDS.items():
        if key in node:
            out[name] = node[key]
    if "items" in node:
        out["items"] = _field(doc, node["items"], where + "[]")
    if "properties" in node or node.get("type") == "object":
        out.update(_object(doc, node, where))
    if "oneOf" in node or "anyOf" in node:
        variants = node.get("oneOf", node.get("anyOf"))
        if all(isinstance(v, dict) and set(v) == {"required"} for v in variants):
            out["any_of_required"] = [sorted(v["required"]) for v in variants]
        else:
            out["one_of"] = [_field(doc, v, f"{where}|{i}") for i, v in enumerate(variants)]
    return out


def _object(doc: dict[str, Any], node: dict[str, Any], where: str) -> dict[str, Any]:
    properties = node.get("properties", {})
    required = node.get("required", [])
    unknown = sorted(set(required) - set(properties))
    if unknown:
        raise CatalogError(f"{where}: required fields without a schema: {unknown}")
    additional = node.get("additionalProperties", True)
    if not isinstance(additional, bool):
        raise CatalogError(f"{where}: only boolean additionalProperties is supported")
    return {
        "properties": {
            name: _field(doc, sub, f"{where}.{name}") for name, sub in sorted(properties.items())
        },
        "required": sorted(required),
        "additional_properties": additional,
    }


# The request fields besides model and input that a schema may require (the client sends them).
_SUBMIT_FIELDS = frozenset({"callback_url"})


def _requires(request: dict[str, Any], where: str) -> list[str]:
    """The request's required fields besides ``model`` and ``input``."""
    extra = sorted(set(request.get("required", ())) - {"model", "input"})
    unknown = [name for name in extra if name not in _SUBMIT_FIELDS]
    if unknown:
        raise CatalogError(
            f"{where}: the submit request requires fields the client does not send: {unknown}"
        )
    return extra


def _variants(
    doc: dict[str, Any], request: Any, where: str
) -> list[tuple[list[str], Any, list[str]]]:
    """Return ``(model ids, input schema, required request fields)`` of each variant."""
    request = _resolve(doc, request)
    if "oneOf" in request:
        out = []
        for index, variant in enumerate(request["oneOf"]):
            out.extend(_variants(doc, variant, f"{where}|{index}"))
        mapping = request.get("discriminator", {}).get("mapping", {})
        ids = {model for models, _, _ in out for model in models}
        if mapping and set(mapping) != ids:
            raise CatalogError(f"{where}: discriminator mapping disagrees with the variants")
        return out
    models = _resolve(doc, request["properties"]["model"]).get("enum")
    if not models:
        raise CatalogError(f"{where}: the model property has no enum of ids")
    return [(list(models), request["properties"]["input"], _requires(request, where))]


def _docs_commit(docs: Path) -> str:
    text = (docs / "SOURCE.md").read_text(encoding="utf-8")
    match = re.search(r"at commit `([0-9a-f]{7,40})`", text)
    if match is None:
        raise CatalogError("SOURCE.md does not name the docs commit (at commit `...`)")
    return match.group(1)


def build_catalog(docs: Path) -> dict[str, Any]:
    """Read the docs at ``docs`` and return the catalog as a JSON-ready dict."""
    manual = docs / "api-manual"
    models: dict[str, dict[str, Any]] = {}
    for path in sorted(manual.rglob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        operation = doc.get("paths", {}).get(SUBMIT_PATH, {}).get("post")
        if operation is None:
            continue
        source = path.relative_to(docs).as_posix()
        series = path.relative_to(manual).parts[0]
        kind = series.removesuffix("-series")
        request = doc["components"]["schemas"]["SubmitRequest"]
        for ids, input_schema, requires in _variants(doc, request, source):
            schema = _field(doc, input_schema, f"{source}:input")
            for model in ids:
                if model in models:
                    raise CatalogError(f"{model} is described twice ({source})")
                models[model] = {
                    "id": model,
                    "kind": kind,
                    "source": source,
                    "page": source.removesuffix(".json") + ".mdx",
                    "input": schema,
                }
                if requires:
                    models[model]["submit_requires"] = requires
    if not models:
        raise CatalogError(f"no submit schemas under {manual}")
    return {
        "format": FORMAT_VERSION,
        "docs_repository": "coolhackboy/mintlify-docs",
        "docs_commit": _docs_commit(docs),
        "generated_by": "tools/sync_catalog.py",
        "models": [models[model] for model in sorted(models)],
    }


def render(catalog: dict[str, Any]) -> str:
    """Return the catalog's canonical text (what is committed)."""
    return json.dumps(catalog, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("docs_dir", type=Path, help="the official docs checkout")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the catalog")
    args = parser.parse_args(argv)
    try:
        text = render(build_catalog(args.docs_dir))
    except (CatalogError, OSError, KeyError, ValueError) as exc:
        print(f"sync_catalog: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    args.out.write_text(text, encoding="utf-8")
    count = text.count('"page":')
    print(f"wrote {count} models to {args.out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
