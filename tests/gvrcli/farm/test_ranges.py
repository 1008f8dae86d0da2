"""Frame ranges (``gvrcli.farm.ranges``): the chunk grid is the engine's, and a range started at
its window reproduces the single run's frames bit for bit, at any range, cut or chunk setting."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gvrcli.errors import UsageError
from gvrcli.farm import ranges
from gvrcli.inference.streaming import StreamingUpscaler
from gvrcli.inference.settings import EngineSettings

CASES = [(1, 20, 5, []), (20, 20, 5, []), (21, 20, 5, []), (36, 20, 5, []), (50, 20, 5, [20]), (50, 20, 5, [7, 30]),
         (40, 10, 0, [10, 25]), (60, 20, 5, [35, 50]), (45, 8, 3, [16, 17 + 8])]


class PositionUpscaler:
    """Stands in for ``Upscaler``: each chunk's output depends on its own frames, its noise and
    each frame's place in the chunk (as attention makes it), so a wrong chunk grid or blend shows."""

    latent = False

    def __init__(self, length: int, overlap: int):
        self.settings = EngineSettings(steps=1, noise_aug=0.0, chunk_frames=length, chunk_overlap=overlap)
        self.chunks: list[tuple[int, int]] = []

    def frame_noise(self, index, height, width):
        rng = np.random.default_rng(index)
        return rng.random((3, height, width), np.float32), rng.random((3, height, width), np.float32)

    def upscale_planar(self, lr, lr_noise, hr_noise):
        T = lr.shape[1]
        mean = lr.mean(axis=1)
        return [lr[:, k] * np.float32(1 + k / T) + mean + hr_noise[:, k] * np.float32(0.1) for k in range(T)]


def run(frames: int, length: int, overlap: int, cuts: list[int], window: ranges.Window | None = None):
    up = PositionUpscaler(length, overlap)
    engine = StreamingUpscaler(up)
    stream = ranges.RangeStream(engine, window) if window else engine
    first, stop = (window.first, window.stop) if window else (0, frames)
    inside = window.cuts if window else cuts
    video = np.random.default_rng(7).random((frames, 2, 3, 3), np.float32)
    out = []
    for i in range(first, stop):
        if i in inside:
            out += stream.cut()
        out += stream.push(video[i], up.frame_noise(i, 2, 3))
    out += stream.finish()
    return dict(out), engine.chunk_starts


@pytest.mark.parametrize("frames, length, overlap, cuts", CASES)
def test_the_chunk_grid_is_the_chunks_the_streaming_engine_runs(frames, length, overlap, cuts):
    _, starts = run(frames, length, overlap, cuts)
    assert [c.start for c in ranges.chunk_grid(frames, cuts, length, overlap)] == starts


@pytest.mark.parametrize("frames, length, overlap, cuts", CASES)
def test_every_range_reproduces_the_single_runs_frames_bit_for_bit(frames, length, overlap, cuts):
    single, _ = run(frames, length, overlap, cuts)
    for segments in (2, 3, 5):
        parts = ranges.split(frames, cuts, length, overlap, segments)
        assert parts[0][0] == 0 and parts[-1][1] == frames and len(parts) == min(segments, frames)
        for a, b in [*parts, (frames // 3, frames // 3 + 1), (1, frames)] if frames > 1 else parts:
            window = ranges.window_of(a, b, frames, cuts, length, overlap)
            got, _ = run(frames, length, overlap, cuts, window)
            assert sorted(got) == list(range(a, b))
            for i in range(a, b):
                assert np.array_equal(got[i], single[i]), (a, b, i)


def test_ranges_cut_at_shots_when_near_and_cost_one_chunk_elsewhere():
    # 120 frames, a cut at 62, chunks of 20 overlapping 5: 2 ranges split at the cut, with no context.
    (first, second) = ranges.split(120, [62], 20, 5, 2)
    assert first == (0, 62) and second == (62, 120)
    assert ranges.window_of(0, 62, 120, [62], 20, 5).context == 0
    assert ranges.window_of(62, 120, 120, [62], 20, 5).context == 0
    # Without the cut the boundary is a chunk start; the next range decodes one chunk before it.
    (first, second) = ranges.split(120, [], 20, 5, 2)
    assert first[1] % 15 == 0
    assert ranges.window_of(*second, 120, [], 20, 5).first == second[0] - 15


def test_a_plan_round_trips_and_a_bad_one_is_one_usage_error(tmp_path):
    plan = ranges.Plan(
        {"path": "/x.mp4", "frames": 40, "width": 64, "height": 48, "bit_depth": 8, "size": 10, "mtime_ns": 1, "sample_sha256": "ab"},
        {"seed": 1, "backend": "ort-cpu", "tile": [64, 24]}, (10, 2), [25], [(0, 25), (25, 40)],
    )
    path = tmp_path / "p.json"
    ranges.write_plan(path, plan)
    back = ranges.read_plan(path)
    assert back.ranges == plan.ranges and back.cuts == [25] and back.chunk == (10, 2) and len(back.sha256) == 64
    assert back.options == plan.options
    body = json.loads(path.read_text())

    def frozen(**options):  # options that hash right, so only what they freeze is wrong
        changed = {**body["options"], **options}
        return {**body, "options": changed, "options_sha256": ranges.options_digest(changed)}

    for broken in (
        {**body, "version": 99},
        {**body, "version": 1},  # from before the plan froze the backend and tile
        frozen(backend="auto"), frozen(backend=None), frozen(tile=[64]), frozen(tile=[0, 24]), frozen(tile="64x24"), frozen(tile=None),
        {**body, "ranges": [[0, 20], [25, 40]]},
        {**body, "options": {"seed": 2}},
        {**body, "cuts": [45]},
        {**body, "chunk": {"frames": 4, "overlap": 4}},
    ):
        path.write_text(json.dumps(broken))
        with pytest.raises(UsageError, match="not a gvr plan"):
            ranges.read_plan(path)
    path.write_text("{" * 100000)
    with pytest.raises(UsageError, match="not a gvr plan"):
        ranges.read_plan(path)
    for seek in ([[30, 100], [20, 200]], [[10, 200], [20, 100]], [[0, 5]], [[40, 5]], [[10, 5, 1]], [[10, "5"]], {"10": 5}):
        path.write_text(json.dumps({**body, "seek": seek}))
        with pytest.raises(UsageError, match="not a gvr plan"):
            ranges.read_plan(path)
    with pytest.raises(UsageError, match="not a regular file"):
        ranges.read_plan(tmp_path)


def test_timestamps_are_stored_as_runs_and_come_back_exactly():
    for pts in ([0, 1, 2, 3], [0, 512, 1024, 1536, 3000, 3512, None, 9], [None, None], [5], [0, 0, 0]):
        assert ranges.decode_pts(ranges.encode_pts(pts), len(pts)) == pts
    assert len(ranges.encode_pts(list(range(0, 90000, 3000)))) == 1


def test_a_plan_records_where_each_chunk_starts_so_a_range_can_seek():
    plan = ranges.Plan(
        {"path": "/x.mp4", "frames": 40, "width": 64, "height": 48, "bit_depth": 8, "size": 10, "mtime_ns": 1, "sample_sha256": "ab"},
        {"seed": 1, "backend": "ort-cpu", "tile": [64, 48]}, (10, 2), [25], [(0, 25), (25, 40)],
        seek=ranges.seek_table([512 * i for i in range(40)], (c.start for c in ranges.chunk_grid(40, [25], 10, 2))),
    )
    assert plan.seek == {8: 4096, 16: 8192, 25: 12800, 33: 16896}
    assert plan.window(30, 40).seek_pts == 12800 and plan.window(0, 25).seek_pts is None
    # Timestamps that cannot name a frame (missing, repeated, going back) give no table: ranges decode from the start.
    for pts in ([None] + [512 * i for i in range(1, 40)], [0, 0] + [512 * i for i in range(2, 40)]):
        assert ranges.seek_table(pts, [8, 16]) == {}
