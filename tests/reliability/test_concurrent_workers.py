"""Several workers on one shared output directory, with kills in between: in the end every file
is done exactly once, a dead worker's lock is recovered, and nothing is left behind.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import time
from collections import Counter
from pathlib import Path

import pytest
from gvr_harness import gvr, kill_group, leftovers, output_ok, outputs, parse_events, start_gvr
from media_cases import hash_tree, write_video

SIZE, FRAMES, COUNT = (96, 64), 12, 8
ARGS = ["--json", "--steps", "40", "--progress-interval", "0"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared-in")
    for i in range(COUNT):
        write_video(root / f"d{i % 3}" / f"clip{i}.mp4", frames=FRAMES, size=SIZE)
    return root


def _collect(procs) -> list[dict]:
    events = []
    for p in procs:
        stdout, _ = p.communicate(timeout=240)
        events += parse_events(stdout)
    return events


@pytest.mark.parametrize("workers", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_workers_with_kills_in_between_do_each_file_exactly_once(clips, tmp_path, fake_model, workers):
    rng = random.Random(workers)
    out = tmp_path / "shared-out"
    before = hash_tree(clips)
    events: list[dict] = []
    procs = [start_gvr("upscale", clips, out, "--model", fake_model, *ARGS) for _ in range(workers)]
    for _ in range(2):
        # A random live worker is SIGKILLed inside a file; a replacement joins while the others run
        # and must recover the dead worker's lock.
        victim = rng.choice([p for p in procs if p.poll() is None] or procs)
        for line in victim.stdout:
            events += parse_events(line)
            if '"file_start"' in line:
                break
        time.sleep(rng.uniform(0.05, 0.4))
        kill_group(victim, signal.SIGKILL)
        procs.append(start_gvr("upscale", clips, out, "--model", fake_model, *ARGS))
    killed = 2
    events += _collect(procs)
    # A final worker finishes whatever the kills left.
    final = gvr("upscale", clips, out, "--model", fake_model, "--json", timeout=180)
    assert final.returncode == 0, final.stderr
    events += final.events

    done = Counter(e["source"] for e in events if e.get("event") == "file" and e["status"] == "done")
    assert max(done.values()) == 1, f"no file is done twice: {done}"
    assert len(done) >= COUNT - killed, "at most one finished-but-unreported file per killed worker"
    assert len(outputs(out)) == COUNT
    for dst in outputs(out):
        assert output_ok(dst, FRAMES, SIZE) == "", dst
    assert not any(e.get("status") == "failed" for e in events), [e for e in events if e.get("status") == "failed"]
    assert leftovers(out) == [], "stale locks recovered and removed, partials gone"
    assert hash_tree(clips) == before


def _plant_lock(out, output, host: str, pid: int, age: float) -> None:
    """A lock as another worker would have left it (same layout the runtime's ClaimBoard writes)."""
    from gvrcli.farm.claims import ClaimBoard  # the library: the lock's file name is its business

    path = ClaimBoard(out).lock_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"pid": pid, "host": host, "token": "f" * 32, "output": str(output), "started": time.time() - age}
    path.write_text(json.dumps(body))
    os.utime(path, (time.time() - age, time.time() - age))


def _dead_pid() -> int:
    pid = os.getpid() + 400000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        pid += 1


@pytest.mark.parametrize(
    "owner,age",
    [
        ("dead-local", 0),  # our host, a pid that no longer exists: stale at once
        ("remote-silent", 600),  # another host, heartbeat 10 minutes old: stale
    ],
)
def test_stale_locks_are_recovered(tmp_path, fake_model, owner, age):
    root = tmp_path / "in"
    write_video(root / "a.mp4", frames=2)
    write_video(root / "b.mp4", frames=2)
    out = tmp_path / "out"
    host = socket.gethostname() if owner == "dead-local" else "render-node-17"
    _plant_lock(out, out / "a.mp4", host, _dead_pid() if owner == "dead-local" else 4242, age)
    run = gvr("upscale", root, out, "--model", fake_model, "--json", timeout=60)
    assert run.returncode == 0, run.stderr
    status = {e["source"]: e["status"] for e in run.files()}
    assert status == {str(root / "a.mp4"): "done", str(root / "b.mp4"): "done"}
    assert leftovers(out) == []


def test_a_live_workers_lock_is_respected_and_waited_for(tmp_path, fake_model):
    """Exit 0 means every input is done: a file another live worker holds is neither redone nor
    called done while that worker works on it; this worker waits, and reports it skipped once the
    other worker's output is there. (When the other worker gives up instead, this worker does the
    file: hostile case "live-lock-of-another-host".)"""
    root = tmp_path / "in"
    a = write_video(root / "a.mp4", frames=2)
    write_video(root / "b.mp4", frames=2)
    out = tmp_path / "out"
    _plant_lock(out, out / "a.mp4", "render-node-17", 4242, 0)
    proc = start_gvr("upscale", root, out, "--model", fake_model, "--json")
    events = []
    for line in proc.stdout:
        events += parse_events(line)
        if any(e.get("event") == "file" for e in events):
            break
    time.sleep(2.0)
    assert proc.poll() is None, "it waits for the other worker instead of exiting"
    assert not (out / "a.mp4").exists(), "a file a live worker holds is not processed"
    (out / "a.mp4").write_bytes(a.read_bytes())  # the other worker publishes its output ...
    next((out / ".gvr-locks").glob("*.lock")).unlink()  # ... and releases its lock
    stdout, stderr = proc.communicate(timeout=60)
    events += parse_events(stdout)
    assert proc.returncode == 0, stderr
    status = {Path(e["source"]).name: (e["status"], e["reason"]) for e in events if e.get("event") == "file"}
    assert status["b.mp4"][0] == "done"
    assert status["a.mp4"] == ("skipped", "output exists (done by another worker)")
    assert "waiting for other workers" in stderr
    assert events[-1]["event"] == "summary" and events[-1]["exit_code"] == 0
