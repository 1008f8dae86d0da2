"""One video as frame ranges in separate processes, joined: the single run's output, exactly
(``gvr plan``, ``gvr upscale --plan``, ``gvr join``; docs/ranges.md)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from tests.clips import write_video

BT709_TV = {"color_range": 1, "colorspace": 1, "color_primaries": 1, "color_trc": 1}


def two_shots(cut: int):
    def content(index: int, height: int, width: int):
        """Two unrelated smooth colour fields, each panning 1 px a frame: a hard cut at ``cut``."""
        rng = np.random.default_rng(1 if index < cut else 2)
        coarse = rng.random((height // 8 + 2, width // 8 + 8, 3))
        field = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)
        shift = index if index < cut else index - cut
        return field[:height, shift : shift + width]

    return content


def gvr(*args, check: int | None = 0, env=None):
    done = subprocess.run([sys.executable, "-m", "gvrcli", *map(str, args)], env=env, capture_output=True, text=True, timeout=300)
    if check is not None:
        assert done.returncode == check, done.stderr
    return done


def contents(path: Path) -> dict:
    """Everything a join must reproduce: each frame's pixels and timestamp, the audio packets,
    the colour tags."""
    with av.open(str(path)) as c:
        video = [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(c.streams.video[0])]
    with av.open(str(path)) as c:
        audio = [(p.pts, p.dts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]
    with av.open(str(path)) as c:
        first = next(c.decode(video=0))
        tags = (first.color_range, first.colorspace, first.color_primaries, first.color_trc)
    return {"pts": [p for p, _ in video], "frames": [f for _, f in video], "audio": audio, "tags": tags}


def assert_same(joined: dict, single: dict) -> None:
    assert joined["pts"] == single["pts"]
    assert len(joined["frames"]) == len(single["frames"])
    for k, (a, b) in enumerate(zip(joined["frames"], single["frames"])):
        assert np.array_equal(a, b), f"frame {k} differs"
    assert joined["audio"] == single["audio"] and joined["audio"]
    assert joined["tags"] == single["tags"] == (1, 1, 1, 1)


@pytest.fixture
def env(cli_env):
    return cli_env


def make_clip(folder: Path, frames: int, cut: int) -> Path:
    return write_video(folder / "clip.mp4", frames=frames, size=(64, 48), content=two_shots(cut), audio=True, colour=BT709_TV)


def run_ranges(clip: Path, plan: Path, out: Path, model: Path, env, order=None, codec: str = "h264") -> list[list[int]]:
    ranges = json.loads(plan.read_text())["ranges"]
    for k in order or range(len(ranges)):  # separate processes, in the order given
        gvr("upscale", clip, out, "-m", model, "--codec", codec, "--plan", plan, "--range-index", k, env=env)
    return ranges


@pytest.mark.parametrize("frames, cut", [(36, 17), pytest.param(120, 57, marks=pytest.mark.slow)])
def test_ranges_in_separate_processes_out_of_order_join_into_the_single_run(tmp_path, fake_model, env, frames, cut):
    clip = make_clip(tmp_path, frames=frames, cut=cut)
    gvr("upscale", clip, tmp_path / "single.mkv", "-m", fake_model, "--codec", "ffv1", env=env)
    plan = tmp_path / "plan.json"
    made = json.loads(gvr("plan", clip, plan, "-m", fake_model, "--codec", "ffv1", "--segments", 4, "--json", env=env).stdout)
    assert len(made["ranges"]) == 4 and made["cuts"] == [cut] and [cut] in [r[:1] for r in made["ranges"]]
    assert made["context_frames"] > 0  # two of the boundaries fall inside shots
    # The plan froze what this machine chose for a run: the backend, and whole frames (they fit).
    assert made["backend"] in ("ort-cpu", "openvino") and made["chosen"]["backend"].startswith("auto: ")
    assert made["tile"] == [64, 48] and made["chosen"]["grid"] == [1, 1]
    out = tmp_path / "joined.mkv"
    run_ranges(clip, plan, out, fake_model, env, order=[2, 0, 3, 1], codec="ffv1")
    gvr("join", plan, out, "--codec", "ffv1", env=env)
    assert_same(contents(out), contents(tmp_path / "single.mkv"))
    # A rerun of a finished range is a skip.
    again = gvr("upscale", clip, out, "-m", fake_model, "--codec", "ffv1", "--plan", plan, "--range-index", 1, "--json", env=env)
    assert json.loads(again.stdout.splitlines()[-1])["skipped"] == 1
    # h264: the join's encoder gets the single run's frames and timestamps, so it writes its output.
    gvr("upscale", clip, tmp_path / "single.mp4", "-m", fake_model, env=env)
    gvr("join", plan, tmp_path / "joined.mp4", env=env)
    h264, single = contents(tmp_path / "joined.mp4"), contents(tmp_path / "single.mp4")
    assert h264["pts"] == single["pts"] and h264["audio"] == single["audio"]
    # x264 is deterministic for the same input frames and settings (no --non-deterministic), so
    # the decoded frames match exactly, well within any codec tolerance.
    assert all(np.array_equal(a, b) for a, b in zip(h264["frames"], single["frames"]))


def test_the_plan_freezes_its_tile_and_backend_and_a_single_run_given_them_gives_the_joined_frames(tmp_path, fake_model, env):
    """A budget under whole frames: the plan records the tiled grid the planner picks on this
    machine; every range runs it (a range process would plan otherwise: its own memory, its own
    speed correction), and a single run given the plan's --backend and --tile gives its frames."""
    clip = write_video(tmp_path / "clip.mp4", frames=30, size=(128, 96), content=two_shots(13), audio=True, colour=BT709_TV)
    backend = ["--backend", "ort-cpu"]  # the backend's own memory model decides the budget below
    whole = json.loads(gvr("plan", clip, tmp_path / "whole.json", "-m", fake_model, *backend, "--segments", 1, "--json", env=env).stdout)
    assert whole["chosen"]["grid"] == [1, 1] and whole["chosen"]["tile"].startswith("planned: whole frames")
    plan = tmp_path / "plan.json"
    budget = whole["chosen"]["peak_mib"] - 40  # splitting the rows in two saves ~90 MiB of ONNX Runtime's working set
    made = json.loads(gvr("plan", clip, plan, "-m", fake_model, *backend, "--memory-budget", budget, "--segments", 3, "--json", env=env).stdout)
    assert made["backend"] == "ort-cpu" and made["chosen"]["backend"] == "given" and made["chosen"]["fits"]
    width, height = made["tile"]
    assert made["chosen"]["grid"] != [1, 1] and (width, height) != (128, 96) and width <= 128 and height <= 96
    assert made["tile"] == json.loads(plan.read_text())["options"]["tile"]
    tile = f"{width}x{height}"
    single = tmp_path / "single.mkv"
    ran = gvr("upscale", clip, single, "-m", fake_model, *backend, "--tile", tile, "--codec", "ffv1", "--json", env=env).stdout
    assert [e["plan"]["tile"] for e in map(json.loads, ran.splitlines()) if e["event"] == "file"] == [[width, height]]
    out = tmp_path / "joined.mkv"
    run_ranges(clip, plan, out, fake_model, env, order=[1, 2, 0], codec="ffv1")  # no --backend, no --tile, no budget
    gvr("join", plan, out, "--codec", "ffv1", env=env)
    assert_same(contents(out), contents(single))
    records = [json.loads(r.read_text()) for r in out.parent.glob("joined.gvr-range-*.mkv.gvr.json")]
    assert len(records) == 3 and all(r["tile"] == [width, height] and r["backend"].startswith("onnxruntime CPU") for r in records)
    # Given explicitly, the plan's tile and backend are accepted (a skip: the segment is there); another tile is refused.
    again = gvr("upscale", clip, out, "-m", fake_model, *backend, "--tile", tile, "--codec", "ffv1", "--plan", plan, "--range-index", 0, "--json", env=env)
    assert json.loads(again.stdout.splitlines()[-1])["skipped"] == 1
    other = gvr("upscale", clip, out, "-m", fake_model, "--tile", 32, "--codec", "ffv1", "--plan", plan, "--range-index", 0, check=None, env=env)
    one_line_exit_2(other, "option tile", "[32, 32]", str(made["tile"]))
    other = gvr("upscale", clip, out, "-m", fake_model, "--backend", "openvino", "--codec", "ffv1", "--plan", plan, "--range-index", 0, check=None, env=env)
    one_line_exit_2(other, "option backend", "openvino", "ort-cpu")


def one_line_exit_2(done, *words: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gvr: error: ") and all(w in lines[0] for w in words), lines


def test_a_missing_foreign_or_incomplete_segment_stops_the_join_with_nothing_written(tmp_path, fake_model, env):
    clip = make_clip(tmp_path, frames=20, cut=9)
    plan, other = tmp_path / "plan.json", tmp_path / "other.json"
    gvr("plan", clip, plan, "-m", fake_model, "--segments", 2, env=env)
    gvr("plan", clip, other, "-m", fake_model, "--segments", 2, "--seed", 5, env=env)
    out = tmp_path / "o" / "joined.mp4"
    out.parent.mkdir()
    ranges = run_ranges(clip, plan, out, fake_model, env, order=[1])
    first = out.with_name(f"joined.gvr-range-{ranges[0][0]:09d}-{ranges[0][1]:09d}.mkv")

    def nothing_written():
        assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(".")]

    one_line_exit_2(gvr("join", plan, out, check=None, env=env), "missing", first.name)
    nothing_written()
    # The same range from another plan (another seed): foreign.
    gvr("upscale", clip, tmp_path / "x" / "joined.mp4", "-m", fake_model, "--seed", 5, "--plan", other, "--range-index", 0, env=env)
    for made in (tmp_path / "x").glob("joined.gvr-range-*"):
        shutil.copy(made, out.parent / made.name)
    one_line_exit_2(gvr("join", plan, out, check=None, env=env), "foreign", "another plan")
    nothing_written()
    # A range run with options other than the plan's is refused before it starts.
    one_line_exit_2(gvr("upscale", clip, out, "-m", fake_model, "--seed", 5, "--plan", plan, "--range-index", 0, check=None, env=env), "seed")
    # The rerun replaces the foreign segment; a truncated segment is incomplete.
    gvr("upscale", clip, out, "-m", fake_model, "--plan", plan, "--range-index", 0, env=env)
    data = first.read_bytes()
    first.write_bytes(data[: len(data) // 2])
    one_line_exit_2(gvr("join", plan, out, check=None, env=env), "incomplete")
    nothing_written()
    first.write_bytes(data)
    gvr("join", plan, out, env=env)
    assert out.exists()


def test_a_killed_range_leaves_nothing_the_join_accepts_and_its_rerun_completes(tmp_path, fake_model, env):
    """What a kill can leave: a partial segment (killed while encoding), or the record published
    but not yet the segment (killed between the two renames). Neither is a segment to the join."""
    clip = make_clip(tmp_path, frames=20, cut=9)
    plan = tmp_path / "plan.json"
    gvr("plan", clip, plan, "-m", fake_model, "--segments", 2, env=env)
    out = tmp_path / "joined.mp4"
    ranges = run_ranges(clip, plan, out, fake_model, env)
    first = out.with_name(f"joined.gvr-range-{ranges[0][0]:09d}-{ranges[0][1]:09d}.mkv")
    partial = first.with_name(f".{first.stem}.gvr-partial-0123456789abcdef.mkv")
    first.rename(partial)  # killed before the rename: a partial, and the record already there
    one_line_exit_2(gvr("join", plan, out, check=None, env=env), "missing")
    assert not out.exists()
    gvr("upscale", clip, out, "-m", fake_model, "--plan", plan, "--range-index", 0, env=env)
    assert first.exists()
    gvr("join", plan, out, env=env)
    assert out.exists()


def test_a_range_killed_mid_way_leaves_no_segment_and_its_rerun_completes(tmp_path, fake_model, env):
    import os
    import signal
    import time

    clip = write_video(tmp_path / "clip.mp4", frames=240, size=(96, 64))
    plan = tmp_path / "plan.json"
    gvr("plan", clip, plan, "-m", fake_model, "--segments", 1, env=env)
    out = tmp_path / "o" / "joined.mp4"
    out.parent.mkdir()
    task = subprocess.Popen([sys.executable, "-m", "gvrcli", "upscale", clip, out, "-m", fake_model, "--plan", plan, "--range-index", "0"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not [p for p in out.parent.iterdir() if ".gvr-partial-" in p.name] and task.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(task.pid, signal.SIGKILL)  # while the segment is being written
    task.wait()
    assert task.returncode == -signal.SIGKILL, "the range finished before it could be killed"
    assert not list(out.parent.glob("joined.gvr-range-*.mkv")), "a killed range published no segment"
    one_line_exit_2(gvr("join", plan, out, check=None, env=env), "missing")
    gvr("upscale", clip, out, "-m", fake_model, "--plan", plan, "--range-index", 0, env=env)
    assert not [p for p in out.parent.iterdir() if ".gvr-partial-" in p.name], "the rerun removed the killed task's partial"
    gvr("join", plan, out, env=env)
    assert out.exists()


def test_a_bad_plan_is_one_line_exit_2(tmp_path, fake_model, env):
    clip = make_clip(tmp_path, frames=8, cut=4)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "gvr-plan", "version": 1}')
    one_line_exit_2(gvr("upscale", clip, tmp_path / "o.mp4", "-m", fake_model, "--plan", bad, "--range", "0-8", check=None, env=env), "not a gvr plan")
    one_line_exit_2(gvr("join", bad, tmp_path / "o.mp4", check=None, env=env), "not a gvr plan")
    one_line_exit_2(gvr("upscale", clip, tmp_path / "o.mp4", "--range", "0-8", check=None, env=env), "--plan")
    one_line_exit_2(gvr("plan", clip, bad, "-m", fake_model, check=None, env=env), "--segments")
