"""Faults: a killed node, Ctrl-C/SIGTERM, a full disk, a decoder that hangs.

Whatever happens, every output present is complete and valid (it decodes, every frame, scale x
the input), a rerun finishes the rest, and no input changes.
"""

from __future__ import annotations

import random
import resource
import signal
import time

import pytest
from gvr_harness import (
    HANG_IN_DECODE,
    HANG_IN_PROBE,
    clear_error_for,
    gvr,
    kill_group,
    leftovers,
    output_ok,
    outputs,
    start_gvr,
)
from media_cases import hash_tree, write_video

SIZE, FRAMES = (96, 64), 16
# Enough sampler steps that one file takes about a second on two cores, so kills land mid-file.
SLOW = ["--steps", "60", "--progress-interval", "0"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("fault-in")
    for i in range(5):
        write_video(root / f"sub{i % 2}" / f"clip{i}.mp4", frames=FRAMES, size=SIZE)
    return root


def _invalid_outputs(root, out) -> dict[str, str]:
    """Outputs present that are not complete and valid, with the reason."""
    bad = {}
    for dst in outputs(out):
        why = output_ok(dst, FRAMES, SIZE)
        if why:
            bad[dst.relative_to(out).as_posix()] = why
    return bad


def _wait_for_line(proc, prefix: str, nth: int, limit: float = 60) -> bool:
    """Read stdout until the ``nth`` line starting with ``prefix``; False if the run ended first."""
    seen, deadline = 0, time.monotonic() + limit
    for line in proc.stdout:
        if line.startswith(prefix):
            seen += 1
            if seen >= nth:
                return True
        if time.monotonic() > deadline:
            return False
    return False


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_loses_nothing(clips, tmp_path, fake_model):
    rng = random.Random(20261126)  # seeded: a failure names the point that broke it
    out = tmp_path / "out"
    before = hash_tree(clips)
    kills = [("time", rng.uniform(0.3, 1.5)), ("start", rng.randint(1, 2)), ("done", rng.randint(1, 3))]
    left_mid_file = []
    for kind, where in kills:
        proc = start_gvr("upscale", clips, out, "--model", fake_model, *SLOW)
        if kind == "time":
            time.sleep(where)  # anywhere: imports, model load, probing or the first file
        else:
            _wait_for_line(proc, f"{kind}:", where)
            time.sleep(rng.uniform(0.0, 0.5))  # then somewhere inside the next stretch of work
        kill_group(proc, signal.SIGKILL)
        proc.communicate()
        left_mid_file += leftovers(out)
        assert _invalid_outputs(clips, out) == {}, f"after kill -9 at {kind}={where}: every output complete or absent"
        assert hash_tree(clips) == before, "no input changed"
    assert left_mid_file, "at least one kill landed mid-file (left a partial or lock to recover from)"
    rerun = gvr("upscale", clips, out, "--model", fake_model, "--json", timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    s = rerun.summary
    assert s["done"] + s["skipped"] == 5 and s["failed"] == 0
    assert len(outputs(out)) == 5 and _invalid_outputs(clips, out) == {}
    assert leftovers(out) == [], "the rerun cleaned up the killed runs' partials and locks"
    assert hash_tree(clips) == before


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_sigint_sigterm_stop_cleanly_removing_partials(clips, tmp_path, fake_model, sig, code, jobs):
    out = tmp_path / "out"
    before = hash_tree(clips)
    # 100 steps: a file takes a few seconds, one chunk well under one.
    proc = start_gvr("upscale", clips, out, "--model", fake_model, "--steps", "100", "--jobs", jobs, "--progress-interval", "0")
    assert _wait_for_line(proc, "start:", jobs), "the run got going"
    time.sleep(0.3)  # inside the first file(s)
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except Exception:
        kill_group(proc)
        raise
    assert time.monotonic() - t0 < 5, "stops within a few seconds"
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert leftovers(out) == [], "partials and locks removed"
    assert _invalid_outputs(clips, out) == {}
    assert hash_tree(clips) == before
    rerun = gvr("upscale", clips, out, "--model", fake_model, "--json", timeout=180)
    assert rerun.returncode == 0 and len(outputs(out)) == 5 and _invalid_outputs(clips, out) == {}


@pytest.mark.slow
def test_a_signal_mid_chunk_still_stops_within_seconds(tmp_path, fake_model):
    src = write_video(tmp_path / "in" / "one-chunk.mp4", frames=8, size=SIZE)
    # 50000 steps: this one chunk takes 15 s or more (a step of the fake model costs ~0.3 ms on a
    # quiet machine, several on a busy one), like one chunk of a real model on a large frame.
    proc = start_gvr("upscale", src, tmp_path / "out", "--model", fake_model, "--steps", "50000", "--progress-interval", "0")
    assert _wait_for_line(proc, "start:", 1)
    time.sleep(1.0)
    assert proc.poll() is None, "the chunk must still be running when the signal comes"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == 143
    assert time.monotonic() - t0 < 5, f"stopped after {time.monotonic() - t0:.1f} s"


def _limit_file_size(limit: int):
    def preexec():
        # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG like a full disk.
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def test_a_write_failure_mid_file_fails_that_file_cleanly(tmp_path, fake_model):
    root = tmp_path / "in"
    small = write_video(root / "a-small.mp4", frames=2, size=(32, 24))
    big = write_video(root / "b-big.mp4", frames=12, size=(160, 128))
    after = write_video(root / "c-small.mp4", frames=2, size=(32, 24))
    before = hash_tree(root)
    out = tmp_path / "out"
    # FFV1 is lossless: the big file's output passes 256 KiB mid-file, the small ones stay far below.
    run = gvr("upscale", root, out, "--model", fake_model, "--codec", "ffv1", "--json", timeout=120,
              preexec_fn=_limit_file_size(256 * 1024))
    assert not run.has_traceback(), run.stderr
    assert run.returncode == 1, run.stderr
    assert clear_error_for(run, big) == "", "the failed write is one line naming the file"
    assert [e["source"] for e in run.files("failed")] == [str(big)], "the batch reports it"
    assert sorted(p.name for p in outputs(out)) == ["a-small.mkv", "c-small.mkv"]
    for src in (small, after):
        assert output_ok(out / (src.stem + ".mkv"), 2, (32, 24)) == ""
    assert leftovers(out) == [], "the partial is removed"
    assert hash_tree(root) == before


def test_the_watchdog_fails_a_file_whose_decoder_hangs(tmp_path, fake_model):
    root = tmp_path / "in"
    hang = write_video(root / "hang.mp4", frames=4)
    write_video(root / "ok.mp4", frames=4)
    run = gvr("upscale", root, tmp_path / "out", "--model", fake_model, "--stall-timeout", "4", "--json",
              prefix=HANG_IN_DECODE, timeout=60)
    assert not run.timed_out, "a hanging decoder must not hang the batch"
    assert run.returncode == 1, run.stderr
    assert clear_error_for(run, hang, "stall") == ""
    assert [p.name for p in outputs(tmp_path / "out")] == ["ok.mp4"]
    assert leftovers(tmp_path / "out") == []
    assert run.seconds < 30


@pytest.mark.slow
def test_the_watchdog_also_covers_probing(tmp_path, fake_model):
    root = tmp_path / "in"
    hang = write_video(root / "hang.mp4", frames=4)
    write_video(root / "ok.mp4", frames=4)
    run = gvr("upscale", root, tmp_path / "out", "--model", fake_model, "--stall-timeout", "4", "--json",
              prefix=HANG_IN_PROBE, timeout=20)  # 4 s: a loaded machine must not stall the good file
    assert not run.timed_out, "a file hanging FFmpeg's probe must not hang the batch"
    assert run.returncode == 1
    assert clear_error_for(run, hang, "stall") == ""
    assert [p.name for p in outputs(tmp_path / "out")] == ["ok.mp4"]
