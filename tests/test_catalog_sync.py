"""Tests of the committed catalog against the official docs snapshot (drift is a failure)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

import vidgo_async
from vidgo_async._catalog import catalog

REPO = Path(__file__).resolve().parents[1]
# The repository is cloned beside ``shared/`` (locally and in CI).
DOCS = REPO.parent / "shared" / "vidgo-docs"
CATALOG = REPO / "vidgo_async" / "_catalog.json"
REFRESH = f"python tools/sync_catalog.py {DOCS}"


def _sync_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "sync_catalog", REPO / "tools" / "sync_catalog.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def docs() -> Path:
    """The official docs snapshot; its absence fails the test (drift must not go unseen)."""
    if not (DOCS / "api-manual").is_dir():
        pytest.fail(f"the docs snapshot is missing at {DOCS}: clone the repo beside shared/")
    return DOCS


def test_committed_catalog_matches_the_docs(docs: Path) -> None:
    """Regenerating the catalog from the docs gives the committed file byte for byte."""
    tool = _sync_tool()
    fresh = tool.render(tool.build_catalog(docs))
    committed = CATALOG.read_text(encoding="utf-8")
    assert fresh == committed, f"the catalog is stale; refresh it with: {REFRESH}"


def test_catalog_lists_every_submit_schema_of_the_docs(docs: Path) -> None:
    """Every model id in a submit schema of the docs is catalogued, and nothing else."""
    documented: set[str] = set()
    for path in (docs / "api-manual").rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        if "/api/generate/submit" not in text:
            continue
        schemas = json.loads(text)["components"]["schemas"]
        for schema in schemas.values():
            model = schema.get("properties", {}).get("model", {})
            documented.update(model.get("enum", []))
    assert documented == set(catalog().models)
    assert len(documented) > 100


def test_catalog_records_the_docs_commit(docs: Path) -> None:
    """The catalog names the docs commit that SOURCE.md names."""
    source = (docs / "SOURCE.md").read_text(encoding="utf-8")
    assert f"at commit `{catalog().docs_commit}`" in source


def test_sync_tool_writes_the_catalog_where_asked(docs: Path, tmp_path: Path) -> None:
    """The command writes the same catalog to ``--out`` and exits 0."""
    out = tmp_path / "catalog.json"
    assert _sync_tool().main([str(docs), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == CATALOG.read_text(encoding="utf-8")


def test_sync_tool_fails_on_a_folder_without_docs(tmp_path: Path) -> None:
    """A folder that is not the docs is an error (exit 1), and nothing is written."""
    out = tmp_path / "catalog.json"
    assert _sync_tool().main([str(tmp_path), "--out", str(out)]) == 1
    assert not out.exists()


def test_catalog_ships_inside_the_package() -> None:
    """The catalog is package data next to the modules that read it."""
    assert (Path(vidgo_async.__file__).parent / "_catalog.json").is_file()
    models = vidgo_async.list_models()
    assert [spec.id for spec in models] == sorted(spec.id for spec in models)


@pytest.mark.parametrize(
    "rule",
    [{"exclusiveMaximum": 15}, {"multipleOf": 5}, {"uniqueItems": True}, {"not": {"enum": [15]}}],
)
def test_sync_tool_refuses_a_rule_keyword_it_does_not_know(rule: dict[str, object]) -> None:
    """A schema keyword the catalog would drop fails the sync instead of passing unseen."""
    tool = _sync_tool()
    with pytest.raises(tool.CatalogError, match="unsupported JSON-schema keywords"):
        tool._field({}, {"type": "integer", "description": "seconds", **rule}, "doc:input")


def test_sync_tool_keeps_prose_keywords_out_of_the_catalog() -> None:
    """Descriptions, titles and examples carry no rule and are left out of a field."""
    prose = {"description": "d", "title": "t", "example": 5, "examples": [5], "deprecated": False}
    field = _sync_tool()._field({}, {"type": "integer", "minimum": 4, **prose}, "doc:input")
    assert field == {"type": "integer", "minimum": 4}


def test_sync_tool_records_the_submit_fields_a_schema_requires() -> None:
    """``callback_url`` required by a submit schema is recorded; an unknown one fails the sync."""
    tool = _sync_tool()
    request = {
        "required": ["model", "callback_url", "input"],
        "properties": {"model": {"enum": ["m"]}, "input": {"type": "object"}},
    }
    assert tool._variants({}, request, "doc") == [(["m"], {"type": "object"}, ["callback_url"])]
    request["required"].append("webhook_secret")
    with pytest.raises(tool.CatalogError, match="does not send: \\['webhook_secret'\\]"):
        tool._variants({}, request, "doc")


def test_the_models_whose_submit_requires_a_callback_url_say_so(docs: Path) -> None:
    """The seven music ids whose submit schema requires callback_url, and no other."""
    required = sorted(spec.id for spec in vidgo_async.list_models() if spec.callback_required)
    assert required == [
        "convert-to-wav",
        "create-music-video",
        "generate-lyrics",
        "generate-music-cover",
        "separate-vocals",
        "stem-split",
        "upload-and-separate-vocals",
    ]
