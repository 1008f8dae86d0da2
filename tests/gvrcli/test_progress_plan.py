"""The work ledger: progress counted as work is done, weighted by measured seconds, never backwards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gvrcli.inference.streaming import StreamingUpscaler
from gvrcli.inference.settings import EngineSettings
from gvrcli.progress_plan import DECODE, ENCODE, MODEL, BatchLedger, SamplerWork, WorkLedger, chunk_sizes


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class CountingUpscaler:
    """Stands in for ``Upscaler`` under a real ``StreamingUpscaler``: records each chunk's frames."""

    latent = False  # pixel frames (h, w, 3), not latent frames

    def __init__(self, length: int, overlap: int):
        self.settings = EngineSettings(steps=1, noise_aug=0.0, chunk_frames=length, chunk_overlap=overlap)
        self.chunks: list[int] = []

    def frame_noise(self, index, height, width):
        return np.zeros((3, height, width), np.float32), np.zeros((3, height, width), np.float32)

    def upscale_planar(self, lr, lr_noise, hr_noise):
        self.chunks.append(lr.shape[1])
        return [np.ones(lr.shape[:1] + lr.shape[2:], np.float32) for _ in range(lr.shape[1])]


@pytest.mark.parametrize(
    "frames, length, overlap, cuts",
    [(1, 20, 5, []), (20, 20, 5, []), (21, 20, 5, []), (35, 20, 5, []), (36, 20, 5, []), (132, 20, 5, []),
     (50, 20, 5, [20]), (50, 20, 5, [7, 30]), (40, 10, 0, [10, 25]), (60, 20, 5, [35, 50])],
)
def test_the_planned_chunks_are_the_chunks_the_streaming_engine_runs(frames, length, overlap, cuts):
    up = CountingUpscaler(length, overlap)
    stream = StreamingUpscaler(up)
    frame = np.zeros((2, 2, 3), np.float32)
    for i in range(frames):
        if i in cuts:
            stream.cut()
        stream.push(frame)
    stream.finish()
    bounds = [0, *cuts, frames]
    planned = []
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        planned += chunk_sizes(b - a, length, overlap, ends_in_cut=k < len(bounds) - 2)
    assert planned == up.chunks


def test_stages_weigh_by_their_measured_seconds():
    ledger = WorkLedger(frames=10, clock=Clock())
    ledger.plan(DECODE, 10, cost=1.0)
    ledger.plan(MODEL, 10, cost=1.0)
    ledger.plan(ENCODE, 10, cost=1.0)
    for _ in range(10):
        ledger.advance(DECODE, 1, seconds=0.1)  # decoding is cheap here ...
    ledger.advance(MODEL, 1, seconds=8.0)  # ... the sampler is not: 0.1 + 8 + (ENCODE at 1 s/frame as measured so far)
    snap = ledger.snapshot()
    # Cost done / cost planned: (10 x 0.1 + 1 x 8) / (10 x 0.1 + 10 x 8 + 10 x 1 x speed), where the unmeasured
    # encode's prior is scaled by how the measured stages compare with theirs: (1 + 8) / (10 + 1) seconds.
    speed = 9.0 / 11.0
    assert snap.raw == pytest.approx(9.0 / (1.0 + 80.0 + 10.0 * speed))
    assert snap.stage == MODEL and snap.status == "model 1/10"


def test_the_shown_fraction_never_goes_back_and_spreads_the_rest_when_the_plan_grows():
    ledger = WorkLedger(frames=4, clock=Clock())
    ledger.plan(MODEL, 10, cost=1.0)
    for _ in range(5):
        ledger.advance(MODEL, 1, seconds=1.0)
    before = ledger.snapshot().fraction
    ledger.plan(MODEL, 30)  # a scene cut: more chunks than planned
    held = ledger.snapshot()
    assert held.fraction == before and held.raw < before, "held where it stood, though the raw fraction fell"
    seen = [held.fraction]
    for _ in range(25):
        ledger.advance(MODEL, 1, seconds=1.0)
        seen.append(ledger.snapshot().fraction)
    ledger.frames_out(4, seconds=0.04)
    seen.append(ledger.snapshot().fraction)
    assert all(b > a for a, b in zip(seen, seen[1:])), "every unit of work moves it forward"
    assert seen[-1] == pytest.approx(1.0)


def test_eta_comes_from_the_measured_rate_and_is_none_before_the_heaviest_stage_has_one():
    clock = Clock()
    ledger = WorkLedger(frames=10, clock=clock)
    ledger.plan(DECODE, 10, cost=0.01)
    ledger.plan(MODEL, 100, cost=1.0)
    clock.now = 1.0
    ledger.advance(DECODE, 10, seconds=0.1)
    assert ledger.snapshot().eta_seconds is None, "decoding alone says nothing of the sampler's pace"
    clock.now = 3.0
    ledger.advance(MODEL, 25, seconds=2.0)
    snap = ledger.snapshot()
    # 3 s spent on (0.1 + 2.0) s of costed work; (8.0 + 10 x 0.01 x speed) s left.
    speed = 2.1 / (10 * 0.01 + 25 * 1.0)
    left = 75 * 2.0 / 25 + 10 * 0.01 * speed
    assert snap.eta_seconds == pytest.approx(3.0 * left / 2.1)


def test_the_sampler_moves_at_every_step_of_every_tile_and_names_where_it_is():
    ledger = WorkLedger(frames=30, clock=Clock())
    ticks = iter(range(1000))
    work = SamplerWork(ledger, frames=30, length=20, overlap=5, steps=4, cost=1.0, clock=lambda: float(next(ticks)))
    assert work.chunks == 2
    seen, labels = [], []
    for tile in (1, 2):
        work.on_tile(tile, 2, 20)
        for step in range(1, 5):
            work.on_step(step, 4)
            snap = ledger.snapshot()
            seen.append(snap.fraction)
            labels.append(snap.status)
    assert all(b > a for a, b in zip(seen, seen[1:]))
    assert labels[0] == "model step 1/4 of chunk 1/2, tile 1/2" and labels[-1] == "model step 4/4 of chunk 1/2, tile 2/2"
    work.cut_at(25)  # a cut found late: chunk 1 ended at frame 20, so frames 15-24 and 25-29 are two more chunks
    assert work.chunks == 3 and ledger.snapshot().fraction == seen[-1]
    work.on_tile(1, 1, 10)
    work.on_step(1, 4)
    assert ledger.snapshot().status == "model step 1/4 of chunk 2/3" and ledger.snapshot().fraction > seen[-1]


def test_the_batch_weighs_files_by_frames_and_counts_finished_files_whole():
    clock = Clock()
    batch = BatchLedger(clock=clock)
    batch.plan(files=2, frames=30)
    a = batch.start_file(Path("a.mp4"), 10)
    assert batch.snapshot().eta_seconds is None
    a.frames_out(5, seconds=1.0)
    clock.now = 2.0
    snap = batch.snapshot()
    assert snap.fraction == pytest.approx(5 / 30) and snap.frames == 5
    assert snap.eta_seconds == pytest.approx(2.0 * 25 / 5)
    batch.finish_file(Path("a.mp4"))
    assert batch.snapshot().fraction == pytest.approx(10 / 30), "a finished file counts whole"
    b = batch.start_file(Path("b.mp4"), 20)
    b.frames_out(20)
    batch.finish_file(Path("b.mp4"))
    assert batch.snapshot().fraction == 1.0 and batch.snapshot().frames == 25


def test_a_claimed_length_is_planned_in_closed_form():
    """Issue 23 item 1: the plan of a file whose header claims 10^15 frames is two numbers, not a
    list per chunk (which would need petabytes): it completes at once and counts every chunk."""
    frames, length, overlap = 10**15, 20, 5
    ledger = WorkLedger(frames)
    work = SamplerWork(ledger, frames, length, overlap, steps=4, cost=1.0)
    full = (frames - length) // (length - overlap) + 1
    left = frames - (length + (full - 1) * (length - overlap))
    assert work.chunks == full + (left > 0)
    assert chunk_sizes(35, 20, 5, ends_in_cut=False) == [20, 20]  # the list form agrees on a small shot
