"""Tests of ``vidgo-async models`` and of unknown model ids in ``vidgo-async batch``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidgo_async import list_models
from vidgo_async._cli import main


def test_models_lists_every_documented_id_with_its_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without MODEL every catalogued id is printed with its kind."""
    assert main(["models"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(list_models()) + 1
    assert "seedance-2.0/reference-to-video" in {line.split()[0] for line in out}
    assert any(line.split() == ["seedream-5.0-lite", "image"] for line in out)


def test_models_json_lists_ids_and_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints a list of {id, kind}."""
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"id": "seedance-2", "kind": "video"} in data
    assert len(data) == len(list_models())


def test_models_shows_one_models_fields_limits_and_rules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With MODEL the fields, limits, required flags and prose rules are shown."""
    assert main(["models", "seedance-2"]) == 0
    out = capsys.readouterr().out
    assert "duration              integer 4–15 (required)" in out
    assert '"1080p", "4k"' in out
    assert "at most 12 files in total" in out
    assert "seedance-2.mdx" in out


def test_models_says_when_a_models_submit_needs_a_callback_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A model whose submit schema requires callback_url says so, in text and JSON."""
    assert main(["models", "generate-lyrics"]) == 0
    assert "the submit needs a callback_url" in capsys.readouterr().out
    assert main(["models", "generate-lyrics", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["callback_required"] is True
    assert main(["models", "seedance-2"]) == 0
    assert "callback_url" not in capsys.readouterr().out


def test_models_json_of_one_model_has_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    """--json with MODEL prints the catalog entry."""
    assert main(["models", "seedance-2.0-mini/image-to-video", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "seedance-2.0-mini/image-to-video"
    fields = {field["name"]: field for field in data["fields"]}
    assert fields["resolution"]["default"] == "720p"
    assert fields["image_urls"]["max_items"] == 2
    assert any("auto" in rule for rule in data["rules"])


def test_unknown_model_exits_2_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown MODEL exits 2 and suggests the closest id."""
    assert main(["models", "seedance2"]) == 2
    assert "did you mean seedance-2" in capsys.readouterr().err


def test_batch_refuses_an_unknown_model_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A batch line with an unknown id is a bad line; --allow-unknown-model lets it through."""
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"id": "a", "model": "seedance-3", "input": {"prompt": "a fox"}}\n')
    out = tmp_path / "out"
    assert main(["batch", str(source), "--out", str(out), "--emulator"]) == 2
    assert "did you mean" in capsys.readouterr().err
    args = ["batch", str(source), "--out", str(out), "--emulator", "--dry-run"]
    assert main([*args, "--allow-unknown-model"]) == 0
    assert "seedance-3" in capsys.readouterr().out


def test_batch_on_the_emulator_runs_an_unknown_model_when_allowed(tmp_path: Path) -> None:
    """``--emulator --allow-unknown-model`` passes the choice to the emulator: the job finishes."""
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"id": "a", "model": "seedance-3", "input": {"prompt": "a fox"}}\n')
    out = tmp_path / "out"
    args = ["batch", str(source), "--out", str(out), "--emulator", "--allow-unknown-model"]
    assert main([*args, "--no-download", "-q"]) == 0
    row = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert row["status"] == "finished"
