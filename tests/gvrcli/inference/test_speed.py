"""The speed planner (``gvrcli.inference.speed``): the fastest plan that fits, not the fewest pixels;
window-aligned tiles on a tie; the first chunk's correction; the per-machine cache read safely."""

from __future__ import annotations

import dataclasses
import json
import os
import threading

import numpy as np
import pytest

from gvrcli.inference import speed
from gvrcli.inference.ort_backend import OrtBackend
from gvrcli.inference.engine import Upscaler
from gvrcli.inference.settings import EngineSettings
from gvrcli.inference.memory import MemoryModel, plan_tiles
from gvrcli.inference.modelfile import read_manifest
from gvrcli.inference.speed import MachineCache, SpeedModel, Timing, chunk_lengths, choose_cpu_backend
from gvrcli.inference.tiling import window_starts
from tests.fake_model import build_fake_onnx, fake_manifest

MEM = MemoryModel(scale=2, channels=3, factor=100, fixed_model_mb=100, baseline_mb=300)
# Every pixel costs 100 ns and every padded attention token as much (padding_share 1), no fixed
# cost: a tile's time is its padded size; windows of 16 x 64 HR pixels.
PADDED = Timing(SpeedModel("ort-cpu", 0.0, ((1.0, 100.0),), 0.0, 1.0), 1, (16, 64), 1)


def seconds_of(timing: Timing, frames: int, h: int, w: int, th: int, tw: int, overlap: int) -> float:
    tiles = len(window_starts(h, th, overlap)) * len(window_starts(w, tw, overlap))
    return tiles * timing.tile_seconds(frames, (2 * th, 2 * tw))


def test_the_plan_is_the_fastest_grid_that_fits_not_the_one_computing_fewest_pixels():
    budget = MEM.peak_mb(8, 120, 200, 60, 100)
    fast = plan_tiles(MEM, 8, 120, 200, budget_mb=budget, overlap=8, multiple=8, timing=PADDED)
    fewest = plan_tiles(MEM, 8, 120, 200, budget_mb=budget, overlap=8, multiple=8)
    assert fast.fits and fast.estimate_mb <= budget
    assert fast.seconds == pytest.approx(seconds_of(PADDED, 8, 120, 200, *fast.tile, 8))
    # The fewest-pixels grid pads its tiles to whole windows and is slower by the same model.
    assert seconds_of(PADDED, 8, 120, 200, *fewest.tile, 8) > 1.1 * fast.seconds
    for th in range(9, 121):  # every tile the engine could run (sides wider than the overlap)
        for tw in range(9, 201):
            if MEM.peak_mb(8, 120, 200, th, tw) <= budget:
                assert fast.seconds <= seconds_of(PADDED, 8, 120, 200, th, tw, 8) * (1 + 1e-9)


def test_a_window_aligned_tile_wins_a_tie():
    # 60 rows in two tiles: 34 rows (the least) and 36 rows (whole 72-px windows at x2) both pad to
    # one window and cost the same; the aligned one is taken.
    timing = dataclasses.replace(PADDED, window=(72, 96))
    assert timing.tile_seconds(4, (68, 96)) == timing.tile_seconds(4, (72, 96))
    budget = MEM.peak_mb(4, 60, 48, 36, 48)
    plan = plan_tiles(MEM, 4, 60, 48, budget_mb=budget, overlap=8, multiple=2, timing=timing)
    assert plan.tile == (36, 48) and plan.grid == (2, 1) and timing.aligned((72, 96))


@pytest.mark.parametrize(("frames", "lengths"), [(0, []), (12, [12]), (20, [20]), (21, [20, 6]), (35, [20, 20]), (36, [20, 20, 6])])
def test_chunk_lengths_follow_the_streaming_upscaler(frames, lengths):
    assert chunk_lengths(frames, 20, 5) == lengths


@pytest.fixture(scope="module")
def wide_window_model(tmp_path_factory):
    """A pointwise fake model whose manifest declares 4 x 24 attention windows (patch 1)."""
    path = tmp_path_factory.mktemp("speed") / "fake.onnx"
    return build_fake_onnx(path, manifest=fake_manifest(window=[4, 24]))


def test_the_first_chunk_corrects_the_speed_model_and_the_later_plan(wide_window_model):
    model = OrtBackend(wide_window_model, provider="cpu").load()
    memory = MemoryModel(scale=2, channels=3, factor=100, fixed_model_mb=100, baseline_mb=300)
    settings = EngineSettings.from_manifest(model.manifest, memory_budget_mb=436, tile_overlap=8)
    up = Upscaler(model, settings)
    up.memory = memory
    # Calls cost 2 ms and pixels almost nothing: the fewest tiles win (2 x 13 of 28 columns, whose
    # 56 HR columns pad to 72).
    up.speed = SpeedModel("ort-cpu", 2.0, ((1.0, 1.0),), 0.0, 1.0)
    told = []
    up.on_speed = told.append
    assert up.tile_size(4, 64, 256) == (36, 28)
    before = up.predict_seconds(4, 64, 256)
    t = up.timing()
    # The first chunk measured pixels 40x dearer than the table: padding now costs more than a call.
    measured = 0.002 + 40 * up.speed.pixel_seconds(4, (72, 56), t.window, t.unit)
    up._measure_speed(4, (72, 56), [measured])
    assert up.speed.scale == pytest.approx(40) and up.speed.source == "first chunk" and told == [up.speed]
    assert up.tile_size(4, 64, 256) == (28, 36)  # whole windows (72 HR columns), one tile more
    after = up.timing()  # the file's one chunk, in its new plan, at the corrected speed
    predicted = up.predict_seconds(4, 64, 256)
    assert predicted == pytest.approx(3 * 9 * after.tile_seconds(4, (56, 72))) and predicted > 1.2 * before
    up._measure_speed(4, (56, 72), [1.0])  # once per upscaler: later chunks do not move it again
    assert up.speed.scale == pytest.approx(40) and len(told) == 1


def test_a_real_chunk_measures_the_speed_once(wide_window_model):
    model = OrtBackend(wide_window_model, provider="cpu").load()
    up = Upscaler(model, EngineSettings.from_manifest(model.manifest))
    assert up.speed is not None and up.speed.source == "table"
    told = []
    up.on_speed = told.append
    lr = np.random.default_rng(0).uniform(0, 1, (4, 16, 24, 3)).astype(np.float32)
    up.upscale_chunk(lr, 0)
    up.upscale_chunk(lr, 4)
    assert len(told) == 1 and told[0].source == "first chunk" and up.speed is told[0]


# --------------------------------------------------------------------------------------------------
# The per-machine cache and the probe
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_manifest_and_settings(fake_model):
    manifest = read_manifest(fake_model)
    return manifest, EngineSettings.from_manifest(manifest)


def bad_cache(kind: str, cache: MachineCache) -> None:
    """Put a ``kind`` of bad file where ``cache`` reads."""
    path = cache.path
    path.parent.mkdir(parents=True, exist_ok=True)
    good = {"schema": speed.SCHEMA, "key": cache.key, "backends": {"ort-cpu": 2.0}}
    if kind == "corrupt":
        path.write_bytes(b"{\"schema\": 1, \"key\": \xff\xfe")
    elif kind == "huge":
        path.write_text(json.dumps(good) + " " * speed.CACHE_MAX_BYTES)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink":
        target = path.parent / "elsewhere.json"
        target.write_text(json.dumps(good))
        path.symlink_to(target)
    elif kind == "foreign-schema":
        path.write_text(json.dumps({**good, "schema": 99}))
    elif kind == "foreign-key":
        path.write_text(json.dumps({**good, "key": "another CPU"}))
    elif kind == "bad-values":
        path.write_text(json.dumps({**good, "backends": {"ort-cpu": "fast", "openvino": 1e9, "mystery": 1.0}}))
    elif kind == "not-an-object":
        path.write_text("[1, 2, 3]")


KINDS = ["corrupt", "huge", "fifo", "directory", "symlink", "foreign-schema", "foreign-key", "bad-values", "not-an-object"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_cache_file_reads_as_absent_without_blocking(tmp_path, kind):
    cache = MachineCache(tmp_path / "speed", "this CPU")
    bad_cache(kind, cache)
    result = []
    reader = threading.Thread(target=lambda: result.append(cache.read()), daemon=True)
    reader.start()
    reader.join(timeout=10)  # a blocking open of a FIFO would never return
    assert not reader.is_alive() and result == [{}]


@pytest.mark.parametrize("kind", ["corrupt", "huge", "fifo", "foreign-schema", "bad-values"])
def test_a_bad_cache_file_is_measured_again_and_replaced(tmp_path, monkeypatch, fake_model, fake_manifest_and_settings, kind):
    manifest, settings = fake_manifest_and_settings
    cache = MachineCache(tmp_path / "speed", speed.machine_key(manifest))
    bad_cache(kind, cache)
    monkeypatch.setattr(speed, "PROBE_WORTH_S", 0.0)
    monkeypatch.delenv("GVR_SPEED_PROBE", raising=False)
    asked = []

    def probe(path, names):  # ort-cpu measured 3x slower than openvino at the probe's tile
        asked.append(sorted(names))
        frames, _, hr = speed.probe_shape(manifest)
        window = speed.window_of(manifest)
        base = {name: speed.table_model(name).call_seconds(frames, hr, window, manifest.temporal_unit) for name in names}
        return {"ort-cpu": 3 * base["ort-cpu"], "openvino": base["openvino"]}

    choice = choose_cpu_backend(fake_model, manifest, settings, (8, 96, 160), cache, probe=probe)
    assert asked == [["openvino", "ort-cpu"]]
    assert choice.backend == "openvino" and choice.predicted["ort-cpu"] > choice.predicted["openvino"]
    assert "predicted fastest" in choice.reason and "probe" in choice.reason
    kept = cache.read()
    assert set(kept) == {"ort-cpu", "openvino"} and kept["ort-cpu"] > kept["openvino"]
    # Next time the cache answers and nothing is probed; a machine where ONNX Runtime is faster
    # gets ONNX Runtime: nothing is assumed about which backend wins.
    cache.write({"ort-cpu": 0.2, "openvino": 5.0})
    again = choose_cpu_backend(fake_model, manifest, settings, (8, 96, 160), cache, probe=probe)
    assert len(asked) == 1 and again.backend == "ort-cpu" and again.models["ort-cpu"].source == "cache"


def test_a_backend_not_measured_here_takes_the_measured_ones_factor(tmp_path):
    cache = MachineCache(tmp_path / "speed", "this CPU")
    assert {m.scale for m in speed.machine_models(cache).values()} == {1.0}
    cache.write({"ort-cpu": 4.0})
    models = speed.machine_models(cache)
    assert (models["ort-cpu"].scale, models["ort-cpu"].source) == (4.0, "cache")
    assert (models["openvino"].scale, models["openvino"].source) == (4.0, "table")  # a guess: still probed when it matters


def test_small_jobs_and_gvr_speed_probe_off_never_probe(tmp_path, monkeypatch, fake_model, fake_manifest_and_settings):
    manifest, settings = fake_manifest_and_settings
    cache = MachineCache(tmp_path / "speed", speed.machine_key(manifest))

    def probe(path, names):
        raise AssertionError("probed")

    choose_cpu_backend(fake_model, manifest, settings, (8, 96, 160), cache, probe=probe)  # far below PROBE_WORTH_S
    monkeypatch.setattr(speed, "PROBE_WORTH_S", 0.0)
    monkeypatch.setenv("GVR_SPEED_PROBE", "off")
    choice = choose_cpu_backend(fake_model, manifest, settings, (8, 96, 160), cache, probe=probe)
    assert choice.backend in speed.CPU_BACKENDS and cache.read() == {}


def test_the_probe_child_times_a_backend_and_leaves_out_what_cannot_run(fake_model):
    measured = speed.run_probe(fake_model, ["ort-cpu", "no-such-backend"])
    assert set(measured) == {"ort-cpu"} and measured["ort-cpu"] > 0
