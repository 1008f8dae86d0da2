"""Claims: one worker per output at a time; a dead worker's lock is recovered; nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from gvrbase import atomic
from gvrcli.farm.claims import HOST, ClaimBoard


def test_a_held_claim_excludes_other_workers(tmp_path):
    a, b = ClaimBoard(tmp_path), ClaimBoard(tmp_path)
    claim = a.try_claim(tmp_path / "x.mp4")
    assert claim is not None
    assert b.try_claim(tmp_path / "x.mp4") is None
    assert b.try_claim(tmp_path / "y.mp4") is not None
    a.release(claim)
    assert b.try_claim(tmp_path / "x.mp4") is not None
    b.close()
    assert not (tmp_path / ".gvr-locks").exists(), "the lock folder goes with the last lock"


def test_a_dead_workers_lock_is_recovered(tmp_path):
    board = ClaimBoard(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = board.lock_path(tmp_path / "x.mp4")
    lock.parent.mkdir()
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": HOST, "token": "old"}))
    assert board.is_stale(lock)
    claim = board.try_claim(tmp_path / "x.mp4")
    assert claim is not None and claim.owned()
    board.close()


def test_a_lock_without_heartbeat_from_another_host_goes_stale(tmp_path):
    board = ClaimBoard(tmp_path, stale_after=60)
    lock = board.lock_path(tmp_path / "x.mp4")
    lock.parent.mkdir()
    lock.write_text(json.dumps({"pid": 1, "host": "other-node", "token": "t"}))
    assert not board.is_stale(lock), "fresh heartbeat: the other node is alive"
    old = time.time() - 120
    os.utime(lock, (old, old))
    assert board.is_stale(lock)
    assert board.try_claim(tmp_path / "x.mp4") is not None
    board.close()


def test_heartbeat_keeps_a_long_claim_fresh(tmp_path):
    board = ClaimBoard(tmp_path, stale_after=1.0, heartbeat=0.1)
    claim = board.try_claim(tmp_path / "x.mp4")
    old = time.time() - 100
    os.utime(claim.path, (old, old))
    time.sleep(0.4)
    assert not ClaimBoard(tmp_path, stale_after=1.0).is_stale(claim.path)
    board.close()


def test_partials_are_hidden_beside_the_output_and_removable(tmp_path):
    out = tmp_path / "shot.mp4"
    p = atomic.partial_path(out, "abcdef0123456789")
    assert p.parent == tmp_path and p.name.startswith(".") and p.suffix == ".mp4"
    p.write_bytes(b"half")
    assert atomic.remove_partials(out) == 1 and not p.exists()


def test_a_finished_run_sweeps_what_dead_workers_left(tmp_path, fake_model):
    """A killed worker's lock and partial for a file outside this run's inputs are removed too."""
    from tests.clips import write_video

    from gvrcli.batch.options import UpscaleOptions
    from gvrcli.batch.upscale import upscale

    out = tmp_path / "out"
    orphan = out / "elsewhere" / "x.mp4"
    orphan.parent.mkdir(parents=True)
    partial = atomic.partial_path(orphan, "deadbeefdeadbeef")
    partial.write_bytes(b"half a video")
    board = ClaimBoard(out)
    lock = board.lock_path(orphan)
    lock.parent.mkdir()
    lock.write_text(json.dumps({"pid": 2**22 - 7, "host": HOST, "token": "dead", "output": "elsewhere/x.mp4"}))
    src = write_video(tmp_path / "in" / "a.mp4", frames=2)
    upscale([src], UpscaleOptions(output_dir=out, model=fake_model))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["a.mp4"]


def test_anything_but_a_lock_gvr_wrote_is_stale_and_never_blocks(tmp_path):
    board = ClaimBoard(tmp_path)
    lock = board.lock_path(tmp_path / "x.mp4")
    lock.parent.mkdir()
    for plant in (
        lambda p: p.write_text("[1, 2]"),
        lambda p: p.write_text(json.dumps({"pid": "7", "host": HOST, "token": "t"})),
        lambda p: p.write_text(json.dumps({"pid": -1, "host": HOST, "token": "t"})),
        lambda p: p.write_text(json.dumps({"pid": 10**30, "host": HOST, "token": "t"})),
        lambda p: os.mkfifo(p),
        lambda p: p.mkdir(),
        lambda p: p.symlink_to(tmp_path / "elsewhere"),
    ):
        plant(lock)
        assert board.is_stale(lock)
        claim = board.try_claim(tmp_path / "x.mp4")  # broken at once, claimed: no hang, no traceback
        assert claim is not None and claim.owned()
        board.release(claim)
        lock.parent.mkdir(exist_ok=True)
    lock.write_text("")  # empty: perhaps being written right now; stale only once old
    assert not board.is_stale(lock)
    old = time.time() - 3600
    os.utime(lock, (old, old))
    assert board.is_stale(lock)
    board.close()


def test_locks_are_keyed_by_the_path_relative_to_the_output_dir(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "out")
    a, b = ClaimBoard(tmp_path / "out"), ClaimBoard(tmp_path / "alias")
    assert a.lock_path(tmp_path / "out" / "s" / "x.mp4").name == b.lock_path(tmp_path / "alias" / "s" / "x.mp4").name
    claim = a.try_claim(tmp_path / "out" / "s" / "x.mp4")
    assert b.try_claim(tmp_path / "alias" / "s" / "x.mp4") is None, "one output, whichever path reaches it"
    assert json.loads(claim.path.read_text())["output"] == "s/x.mp4"
    a.close()


def test_partials_of_long_names_fit_and_stay_apart(tmp_path):
    one, two = tmp_path / ("n" * 250 + "1.mp4"), tmp_path / ("n" * 250 + "2.mp4")
    p1, p2 = atomic.partial_path(one, "a" * 32), atomic.partial_path(two, "b" * 32)
    assert len(os.fsencode(p1.name)) <= 255 and p1.suffix == ".mp4"
    p1.write_bytes(b"1")
    p2.write_bytes(b"2")
    assert atomic.partials_of(one) == [p1] and atomic.partials_of(two) == [p2]
    lookalike = tmp_path / ".x.gvr-partial-not-a-token.mp4"
    lookalike.write_bytes(b"keep")
    assert atomic.remove_partials(tmp_path / "x.mp4") == 0 and lookalike.exists()


def test_make_dirs_has_no_depth_limit(tmp_path):
    deep = tmp_path.joinpath(*["d"] * 1500)
    atomic.make_dirs(deep)
    assert deep.is_dir()
    atomic.remove_empty_dirs(tmp_path, deep)
    assert list(tmp_path.iterdir()) == []
