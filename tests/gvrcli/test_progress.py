"""Progress display: a live Rich display in a real terminal, plain lines everywhere else, JSON events;
all moving with the work (every sampler step), with a heartbeat and an ETA."""

from __future__ import annotations

import io
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from tests.clips import write_video

from gvrcli.progress import JsonEvents, PlainEvents, RichEvents
from gvrcli.report import FAILED, BatchReport, FileResult
from tests.progress_checks import from_json, from_plain, from_screen, run_in_pty, verdict

COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|9[0-7]|38;[25])[;m]")


@pytest.fixture(scope="module")
def two_clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress_in")
    write_video(root / "a.mp4", frames=10, size=(96, 64))
    write_video(root / "shots" / "b.mp4", frames=6, size=(96, 64))
    return root


def test_a_terminal_gets_the_live_rich_display(gvr_cmd, cli_env, two_clips, tmp_path, fake_model):
    env = {**cli_env, "TERM": "xterm-256color", "COLUMNS": "110", "LINES": "30"}
    env.pop("NO_COLOR", None)
    code, screen = run_in_pty([*gvr_cmd, "upscale", str(two_clips), str(tmp_path / "out"), "--model", str(fake_model), "--steps", "20"], env)
    assert code == 0, screen
    assert "━" in screen, "a progress bar was drawn"
    assert "files" in screen and "fps" in screen
    assert "\x1b[" in screen, "redrawn in place with terminal control sequences"
    assert "2 done, 0 skipped, 0 failed" in screen
    assert "Progress:" not in screen, "no plain progress lines on a terminal"


def test_no_color_is_honoured_in_a_terminal(gvr_cmd, cli_env, two_clips, tmp_path, fake_model):
    env = {**cli_env, "TERM": "xterm-256color", "COLUMNS": "110", "NO_COLOR": "1"}
    code, screen = run_in_pty([*gvr_cmd, "upscale", str(two_clips), str(tmp_path / "out"), "--model", str(fake_model)], env)
    assert code == 0
    assert "━" in screen and not COLOUR.search(screen)


def test_without_a_terminal_progress_is_plain_lines(gvr_cmd, cli_env, two_clips, tmp_path, fake_model):
    done = subprocess.run(
        [*gvr_cmd, "upscale", str(two_clips), str(tmp_path / "out"), "--model", str(fake_model), "--progress-interval", "0", "--openjd"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "\r" not in out and "\x1b" not in out and "\x1b" not in done.stderr
    lines = out.splitlines()
    progress = [int(line.split()[1].rstrip("%")) for line in lines if line.startswith("Progress: ")]
    assert progress == sorted(progress) and progress[-1] == 100, "Deadline-style lines, rising to 100%"
    assert "openjd_progress: 100.0" in lines
    assert any(line.startswith("done: ") and "fps" in line for line in lines)
    assert lines[-1].startswith("gvr: 2 done, 0 skipped, 0 failed")


def test_plain_progress_lines_are_rate_limited(gvr_cmd, cli_env, two_clips, tmp_path, fake_model):
    done = subprocess.run(
        [*gvr_cmd, "upscale", str(two_clips), str(tmp_path / "out"), "--model", str(fake_model), "--progress-interval", "3600"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    progress = [line for line in done.stdout.splitlines() if line.startswith("Progress:")]
    assert len(progress) <= 2 and progress[-1] == "Progress: 100%"


# --- Progress that never looks stuck (issue #16): every sampler step moves it, a heartbeat, an ETA.
# The full-size run (480x270, 40 steps, the real process in all three modes) is
# benchmarks/progress_check.py; here the same checks (tests/progress_checks.py) on a tiny clip.


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("steps_in")
    write_video(root / "clip.mp4", frames=10, size=(64, 48))
    return root


@pytest.fixture
def slow_steps(monkeypatch):
    """Each model graph run takes at least 30 ms, as a real model's would: the checks then see every
    step through a 10 ms heartbeat on any machine."""
    from gvrcli.inference.engine import Upscaler

    timed = Upscaler._timed

    def slowed(self, bound):
        time.sleep(0.03)
        return timed(self, bound)

    monkeypatch.setattr(Upscaler, "_timed", slowed)


def upscale_with(events, clip_dir, out_dir, model):
    from gvrcli.batch.options import UpscaleOptions
    from gvrcli.batch.upscale import upscale

    report = upscale([clip_dir], UpscaleOptions(output_dir=out_dir, model=model, steps=8), events)
    events.finished(report)
    assert report.exit_code == 0
    assert not [t for t in threading.enumerate() if t.name == "gvr-progress" and t.is_alive()], "the heartbeat ended"


def test_json_progress_moves_with_each_sampler_step_before_any_frame_is_written(tiny_clip, tmp_path, fake_model, slow_steps):
    out = io.StringIO()
    upscale_with(JsonEvents(out, io.StringIO(), interval=0.01), tiny_clip, tmp_path / "out", fake_model)
    lines = out.getvalue().splitlines()
    readings = from_json(lines)
    assert verdict(readings, rising=5) == []
    progress = [json.loads(line) for line in lines if '"progress"' in line]
    assert {"percent", "frames", "eta_seconds", "stage", "status", "files"} <= set(progress[0])
    assert any(re.match(r"model step 3/8 of chunk 1/\d", e["status"] or "") for e in progress)
    assert json.loads(lines[-1])["event"] == "summary", "nothing after the summary"


def test_plain_progress_keeps_its_farm_format_and_names_the_stage(tiny_clip, tmp_path, fake_model, slow_steps):
    out = io.StringIO()
    upscale_with(PlainEvents(out, io.StringIO(), interval=0.01, openjd=True), tiny_clip, tmp_path / "out", fake_model)
    lines = out.getvalue().splitlines()
    assert verdict(from_plain(lines), rising=5) == []
    assert all(re.fullmatch(r"Progress: \d+%", line) for line in lines if line.startswith("Progress"))
    assert all(re.fullmatch(r"openjd_progress: \d+\.\d", line) for line in lines if line.startswith("openjd_progress"))
    assert any(line.startswith("openjd_status: clip.mp4: model step") for line in lines)
    assert lines[-1].startswith("gvr: 1 done"), "nothing after the summary"


def test_the_rich_display_has_a_bar_per_file_that_moves_with_each_step(tiny_clip, tmp_path, fake_model, slow_steps):
    from rich.console import Console

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system="standard")
    upscale_with(RichEvents(console, Console(file=io.StringIO()), period=0.01), tiny_clip, tmp_path / "out", fake_model)
    text = screen.getvalue()
    assert "━" in text and "\x1b[" in text
    assert verdict(from_screen(text), rising=5) == []
    assert "1 done, 0 skipped, 0 failed" in text


def test_the_heartbeat_repeats_while_nothing_moves_and_stops_with_the_summary():
    out = io.StringIO()
    events = PlainEvents(out, io.StringIO(), interval=0.05)
    events.plan(1, 10)
    events.file_started(Path("stuck.mp4"), 10)
    time.sleep(0.4)
    lines = out.getvalue().splitlines()
    assert lines.count("Progress: 0%") >= 3, "a line every interval though the percentage stands still"
    assert "status: stuck.mp4: starting; 0/10 frames; ETA ?" in lines
    events.file_finished(FileResult(Path("stuck.mp4"), Path("out.mp4"), FAILED, reason="stuck.mp4: broken"))
    events.finished(BatchReport())
    ended = out.getvalue()
    time.sleep(0.2)
    assert out.getvalue() == ended and ended.splitlines()[-1].startswith("gvr: 0 done")


def test_close_stops_the_heartbeat_of_a_run_that_ends_in_an_error():
    out = io.StringIO()
    events = JsonEvents(out, io.StringIO(), interval=0.02)
    events.plan(1, 10)
    events.file_started(Path("a.mp4"), 10)
    time.sleep(0.1)
    events.close()
    ended = out.getvalue()
    time.sleep(0.1)
    assert out.getvalue() == ended and '"progress"' in ended
    assert not [t for t in threading.enumerate() if t.name == "gvr-progress" and t.is_alive()]


# ---- a run that ends by itself ends at 100%, and the plan comes first -----------------------------


def _upscale(gvr_cmd, cli_env, *args):
    done = subprocess.run([*gvr_cmd, "upscale", *map(str, args)], env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_rerun_with_every_file_skipped_ends_at_100_percent_after_its_plan(gvr_cmd, cli_env, two_clips, tmp_path, fake_model):
    common = (two_clips, tmp_path / "out", "--model", fake_model)
    _upscale(gvr_cmd, cli_env, *common)
    plain = _upscale(gvr_cmd, cli_env, *common)
    assert plain[0] == "gvr: 0 video(s), 0 frames to upscale", "the plan line first, then the skipped files"
    assert sorted(line for line in plain if line.startswith("skipped: ")) == [
        f"skipped: {two_clips / 'a.mp4'} (output exists)", f"skipped: {two_clips / 'shots' / 'b.mp4'} (output exists)"
    ]
    assert [line for line in plain if line.startswith("Progress: ")] == ["Progress: 100%"]
    assert plain[-2:] == ["Progress: 100%", plain[-1]] and plain[-1].startswith("gvr: 0 done, 2 skipped")
    events = [json.loads(line) for line in _upscale(gvr_cmd, cli_env, *common, "--json")]
    assert [e["event"] for e in events] == ["plan", "file", "file", "progress", "summary"]
    assert events[0]["files"] == 0 and events[-2]["percent"] == 100


def test_a_dry_run_ends_at_100_percent(gvr_cmd, cli_env, two_clips, tmp_path, fake_model):
    common = (two_clips, tmp_path / "out", "--model", fake_model, "--dry-run")
    plain = _upscale(gvr_cmd, cli_env, *common)
    assert plain[0] == "gvr: 2 video(s), 16 frames to upscale" and plain[-2] == "Progress: 100%"
    events = [json.loads(line) for line in _upscale(gvr_cmd, cli_env, *common, "--json")]
    assert [e["event"] for e in events] == ["plan", "planned", "planned", "progress", "summary"]
    assert events[-2]["percent"] == 100 and not (tmp_path / "out").exists()


def test_files_settled_outside_the_plan_do_not_move_it_and_a_stopped_run_stays_short():
    out = io.StringIO()
    events = JsonEvents(out, io.StringIO(), interval=60)
    events.plan(2, 20, sources=[Path("a.mp4"), Path("b.mp4")])
    events.file_finished(FileResult(Path("old.mp4"), Path("o/old.mp4"), "skipped", reason="output exists"))
    assert events.ledger.snapshot().fraction == 0.0, "a skipped file outside the plan is not half of it"
    events.file_started(Path("a.mp4"), 10)
    events.file_finished(FileResult(Path("a.mp4"), Path("o/a.mp4"), "done", frames=10))
    events.finished(BatchReport(interrupted=15))  # SIGTERM: b.mp4 was never done
    last = [json.loads(line) for line in out.getvalue().splitlines() if '"progress"' in line][-1]
    assert last["percent"] == 50
