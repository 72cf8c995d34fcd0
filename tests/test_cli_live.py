"""The batch's live view, summary and ``--json`` output."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from vidgo_async._cli import main
from vidgo_async._cli._live import LiveView, group_counts, render_line
from vidgo_async._cli._output import JsonStream, Problem, counts_text, summary_lines
from vidgo_async._jobs import JobState, Progress

COUNTS = {
    "queued": 122,
    "submitting": 1,
    "in_flight": 15,
    "finished": 60,
    "failed": 1,
    "timeout": 1,
}


@pytest.mark.parametrize("width", [20, 40, 60, 80, 120, 200])
def test_the_line_fits_the_width_and_shows_rate_and_eta(width: int) -> None:
    line = render_line(COUNTS, 200, 20.0, width)
    assert len(line) <= width
    assert line.startswith("62/200")
    if width >= 60:
        assert "3.1/s" in line
        assert "ETA 0:45" in line  # 138 left at 3.1 jobs a second


def test_ends_whose_task_may_still_run_are_lost_track_not_failed() -> None:
    """Timed out, lost and unknown jobs are grouped as lost track, never as failed."""
    grouped = group_counts({**COUNTS, "lost": 3, "unknown": 2, "cancelled": 4})
    assert grouped == {
        "finished": 60,
        "failed": 5,
        "lost track": 6,
        "in flight": 16,
        "queued": 122,
    }
    assert counts_text({"finished": 2, "failed": 0, "lost": 1, "unknown": 0}) == (
        "2 finished, 0 failed, 1 lost"
    )


def test_every_state_is_grouped_by_the_one_definition_of_terminal() -> None:
    """A state counts as done exactly when ``JobState.is_terminal`` says it has ended."""
    for state in JobState:
        grouped = group_counts({state.value: 1})
        done = grouped["finished"] + grouped["failed"] + grouped["lost track"]
        assert done == int(state.is_terminal), (state, grouped)


def test_a_job_in_doubt_is_in_flight_not_failed_nor_done() -> None:
    """A submit waiting in doubt for its callback is shown in flight and not counted done."""
    counts = {name: int(n) for name, n in attrs.asdict(Progress(in_doubt=3, finished=1)).items()}
    grouped = group_counts(counts)
    assert grouped["failed"] == 0
    assert grouped["in flight"] == 3
    line = render_line(counts, total=4, elapsed=10.0, width=200, bar=False)
    assert line.startswith("1/4 ")
    assert "lost track 0" in line


def test_a_lost_track_job_is_shown_apart_from_failed_ones() -> None:
    """The line names lost-track jobs in their own group, long and short."""
    counts = {"finished": 1, "failed": 1, "lost": 2, "timeout": 1}
    assert "failed 1 · lost track 3 ·" in render_line(counts, 5, 10.0, 200, bar=False)
    assert "✗1 ?3 " in render_line(counts, 5, 10.0, 45, bar=False)


def test_the_rate_leaves_out_jobs_done_before_the_clock_started() -> None:
    line = render_line({"finished": 100, "queued": 10}, 110, 10.0, 200, base=90)
    assert "1.0/s" in line
    assert "ETA 0:10" in line
    assert "done in" in render_line({"finished": 5}, 5, 65.0, 200)


def test_on_a_terminal_the_view_redraws_and_ends_on_the_final_state() -> None:
    stream = io.StringIO()
    counts = {"queued": 2, "finished": 0}
    now = [0.0]
    view = LiveView(3, lambda: counts, stream=stream, tty=True, clock=lambda: now[0])
    with view:
        now[0] = 1.0
        counts.update(queued=0, finished=3)
        view.close()  # the batch closes it before the summary; the exit adds nothing
    text = stream.getvalue()
    assert text.count("\n") == 1  # one line, redrawn: nothing printed after it
    assert "\x1b[" in text  # drawn in place with control sequences
    final = text.split("\r\x1b[2K")[-1]  # the last redraw of the line
    assert final.startswith("3/3")
    assert "done in 0:01" in final


def test_off_a_terminal_lines_are_periodic_and_the_last_state_is_printed() -> None:
    stream = io.StringIO()
    counts = {"queued": 2, "finished": 0}
    now = [0.0]
    view = LiveView(2, lambda: counts, stream=stream, tty=False, interval=5, clock=lambda: now[0])
    with view:
        view.refresh()  # first line
        counts.update(queued=1, finished=1)
        now[0] = 1.0
        view.refresh()  # too soon: nothing
        counts.update(queued=0, finished=2)
        now[0] = 2.0
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("0/2")
    assert lines[1].startswith("2/2")
    assert "\x1b" not in stream.getvalue()


def test_the_summary_names_failed_jobs_and_the_results_path() -> None:
    problems = [
        Problem(id=f"j{n}", task_id=f"t{n}", state="failed", reason="content policy")
        for n in range(7)
    ]
    lines = summary_lines(
        {"finished": 3, "failed": 7},
        problems,
        results="out/results.jsonl",
        wall=2.0,
        videos=3,
        seconds=15,
        download_failures=0,
        emulator=True,
    )
    assert lines[0].startswith("vidgo-async batch: 3 finished, 7 failed in 2.0 s")
    assert "  failed: j0 (t0): content policy" in lines
    assert any("2 more" in line for line in lines)
    assert "  results: out/results.jsonl" in lines
    assert any("rerun submits" in line for line in lines)


def test_json_stream_prints_each_job_once_then_the_summary() -> None:
    stream = io.StringIO()
    output = JsonStream(True, stream)
    output.row({"id": "a", "status": "finished"})
    output.rows([{"id": "a", "status": "finished"}, {"id": "b", "status": "failed"}])
    output.summary({"counts": {"finished": 1, "failed": 1}})
    objects = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [o.get("id") for o in objects] == ["a", "b", None]
    assert objects[-1]["summary"]["counts"] == {"finished": 1, "failed": 1}


def test_batch_json_streams_rows_and_a_summary_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "jobs.jsonl"
    lines = [
        {"id": "ok", "prompt": "a fox in snow"},
        {"id": "bad", "prompt": 'a fox [[vidgo-emulator: seconds=1 fail="content policy"]]'},
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    code = main(["batch", str(source), "--emulator", "--out", str(out), "--json", "-q"])
    captured = capsys.readouterr()
    objects = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1
    rows = {o["id"]: o for o in objects[:-1]}
    assert set(rows) == {"ok", "bad"}
    written = {
        row["id"]: row for row in map(json.loads, (out / "results.jsonl").read_text().splitlines())
    }
    assert rows == written
    assert objects[-1]["summary"]["counts"] == {"finished": 1, "failed": 1}
    assert "bad (task-" in captured.err  # the summary names the failed job and its task


def test_importing_the_library_does_not_import_rich() -> None:
    code = "import sys, vidgo_async, vidgo_async._cli; print('rich' in sys.modules)"
    result = subprocess.run(  # noqa: S603 - a fixed command line of this test
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_the_command_restores_the_log_level_it_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    logger = logging.getLogger("vidgo_async")
    before, handlers = logger.level, list(logger.handlers)
    source = tmp_path / "jobs.jsonl"
    source.write_text('{"id": "a", "prompt": "a fox in snow"}\n')
    assert main(["batch", str(source), "--emulator", "--out", str(tmp_path / "o"), "-q"]) == 0
    capsys.readouterr()
    assert (logger.level, logger.handlers) == (before, handlers)
