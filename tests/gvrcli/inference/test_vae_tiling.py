"""The VAE in the memory plan, and its tiled runners: tiles only when the budget needs them, each
tile's causal caches carried on (in memory or through disk), a blend close to the one-piece result,
and the plan in the file's JSON report. Tiny random-weight VAE (``base_dim=16``) and tiny clips."""

import dataclasses

import av
import numpy as np
import pytest

from gvrcli.batch.options import UpscaleOptions
from gvrcli.batch.upscale import upscale
from gvrcli.inference.ort_backend import OrtBackend
from gvrcli.inference.modelfile import read_manifest, resolve_model_path
from gvrcli.inference.tiling import window_starts
from gvrcli.inference.vae import ChunkedDecoder, ChunkedEncoder, read_vae
from gvrcli.inference.vae_plan import FIRST_SHARE, GROUP, WEIGHTS_FREED, WEIGHTS_LOADED, RoleCost, RolePlan, plan_vae
from tests.clips import write_video
from tests.seams import border_band, psnr, smooth_clip

# --------------------------------------------------------------------------------------------------
# The planner (no model)
# --------------------------------------------------------------------------------------------------

# The Wan2.1 VAE's cache floats per latent cell (exact: its graphs' cache layout) and round costs.
ENC = RoleCost("vae_encoder", 89856, 150, 3600)
DEC = RoleCost("vae_decoder", 151328, 200, 4800)
LR, HR = (45, 80), (90, 160)  # 640x360 -> 1280x720


def test_the_vae_runs_in_one_piece_whenever_that_fits():
    plan = plan_vae(ENC, DEC, LR, HR, budget_mb=64000, baseline_mb=1000)
    assert plan.fits and not plan.encoder.tiled and not plan.decoder.tiled
    assert plan.decoder.tile == HR and plan.decoder.to_dict(8)["overlap"] == 0


def test_tiles_then_spilled_caches_as_the_budget_shrinks():
    one = plan_vae(ENC, DEC, LR, HR, budget_mb=64000, baseline_mb=1000).estimate_mb
    # Just below one piece: the decoder (the larger) tiles first, caches still in memory.
    tiled = plan_vae(ENC, DEC, LR, HR, budget_mb=one - 1, baseline_mb=1000)
    assert tiled.fits and tiled.decoder.tiled and not tiled.decoder.spill and tiled.estimate_mb <= one - 1
    # The decoder's caches alone (2 x 151328 floats x 14400 cells = 16.6 GiB) exceed 12 GiB: spilled.
    spilled = plan_vae(ENC, DEC, LR, HR, budget_mb=12000, baseline_mb=1000)
    assert spilled.fits and spilled.decoder.spill and spilled.estimate_mb <= 12000
    # Every budget's plan stays within it, and a smaller budget never plans fewer tiles.
    tiles = []
    for budget in (12000, 6000, 3000):
        p = plan_vae(ENC, DEC, LR, HR, budget_mb=budget, baseline_mb=1000)
        assert p.fits and p.estimate_mb <= budget
        tiles.append(p.decoder.grid[0] * p.decoder.grid[1])
    assert tiles == sorted(tiles)


def test_a_budget_nothing_meets_is_reported_and_the_leanest_plan_runs():
    plan = plan_vae(ENC, DEC, LR, HR, budget_mb=500, baseline_mb=1000)
    assert not plan.fits and plan.decoder.spill and plan.encoder.spill or not plan.encoder.tiled
    assert plan.estimate_mb > 500


def test_the_denoiser_and_the_held_caches_count_against_the_budget():
    free = plan_vae(ENC, DEC, LR, HR, budget_mb=30000, baseline_mb=1000)
    busy = plan_vae(ENC, DEC, LR, HR, budget_mb=30000, baseline_mb=1000, others_mb=20000)
    assert busy.estimate_mb <= 30000
    held = lambda p: p.encoder.held_mb + p.decoder.held_mb  # noqa: E731
    assert held(busy) < held(free)  # the denoiser's 20 GB leave the caches less room


def test_a_lean_plan_drops_the_first_chunk_graphs_when_that_saves_tiles():
    enc, dec = (dataclasses.replace(c, first_weights_mb=w) for c, w in ((ENC, 200), (DEC, 275)))
    baseline = 1000 + 1.1 * (2 * 200 + 2 * 275)  # the process with all four graphs loaded
    ample = plan_vae(enc, dec, LR, HR, budget_mb=64000, baseline_mb=baseline)
    assert ample.fits and not ample.lean  # nothing to save: no reloading
    for budget in (12000, 6000, 4000):
        full = plan_vae(ENC, DEC, LR, HR, budget_mb=budget, baseline_mb=baseline)  # no first graphs to drop
        plan = plan_vae(enc, dec, LR, HR, budget_mb=budget, baseline_mb=baseline)
        assert plan.fits and plan.estimate_mb <= budget
        tiles = lambda p: p.decoder.grid[0] * p.decoder.grid[1] + p.encoder.grid[0] * p.encoder.grid[1]  # noqa: E731
        assert (plan.decoder.spill + plan.encoder.spill, tiles(plan)) <= (full.decoder.spill + full.encoder.spill, tiles(full))
        if plan.lean:  # it was chosen because it runs fewer tiles (or spills less) than keeping every graph
            assert (plan.decoder.spill + plan.encoder.spill, tiles(plan)) < (full.decoder.spill + full.encoder.spill, tiles(full))
            assert "first-chunk graphs loaded for their chunk only" in plan.describe()
    # Where one piece just misses with four graphs loaded, dropping two of them is what makes it fit.
    one_full = plan_vae(ENC, DEC, LR, HR, budget_mb=64000, baseline_mb=baseline).estimate_mb
    edge = plan_vae(enc, dec, LR, HR, budget_mb=one_full - 100, baseline_mb=baseline)
    assert edge.lean and not edge.decoder.tiled and not edge.encoder.tiled


# --------------------------------------------------------------------------------------------------
# The tiled runners, on the bundle's exported graphs
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(onnx_bundle):
    main = resolve_model_path(onnx_bundle[0])
    manifest = read_manifest(main)
    return OrtBackend(main, provider="cpu").load(manifest), read_vae(main, manifest)


@pytest.fixture(scope="module")
def smooth_latents(loaded):
    """Latents of a smooth 9-frame 320x192 clip, encoded one piece: (16, 3, 24, 40)."""
    model, vae = loaded
    x = smooth_clip(9, 192, 320)
    enc = ChunkedEncoder(model, vae)
    return [z for t in range(9) for z in enc.push(x[:, t])] + enc.finish()


def tiles(role, h, w, tile, overlap, spill=False):
    grid = (len(window_starts(h, tile[0], overlap)), len(window_starts(w, tile[1], overlap)))
    return RolePlan(role, tile, overlap, grid, spill, 0.0, 0.0)


def decode(loaded, latents, plan):
    dec = ChunkedDecoder(*loaded, plan)
    frames = [f for z in latents for f in dec.push(z)] + dec.finish()
    return np.stack(frames, axis=1)  # (3, T, H, W)


def test_spilled_tiles_equal_tiles_kept_in_memory(loaded, smooth_latents):
    """Tile-major groups with each tile's caches written to disk and read back compute what
    chunk-by-chunk tiles with their caches in memory compute: the same graphs on the same numbers
    (bit-identical on one machine; 1e-6 allows another summation order of the blend)."""
    plan = tiles("vae_decoder", 24, 40, (16, 24), 8)
    kept = decode(loaded, smooth_latents, plan)
    spilled = decode(loaded, smooth_latents + smooth_latents[:2], tiles("vae_decoder", 24, 40, (16, 24), 8, spill=True))
    assert GROUP < len(smooth_latents) + 2  # more than one group: the caches went through disk
    assert kept.shape == (3, 9, 192, 320)
    np.testing.assert_allclose(spilled[:, :9], kept, atol=1e-6)


def test_each_tile_carries_its_own_causal_caches(loaded, smooth_latents):
    """Where only the top-left tile has weight, the tiled decode equals a one-piece decode of that
    tile's latents over the whole clip: its caches were its own, chunk after chunk. (ONNX Runtime
    on the same graph and inputs: 1e-5, float32 rounding of a few hundred accumulations.)"""
    plan = tiles("vae_decoder", 24, 40, (16, 24), 8)
    tiled = decode(loaded, smooth_latents, plan)
    alone = decode(loaded, [np.ascontiguousarray(z[:, :16, :24]) for z in smooth_latents], None)
    # The next tiles start at cell 8 (rows) and 16 (columns): before them, tile (0, 0) alone.
    np.testing.assert_allclose(tiled[:, :, : 8 * 8, : 8 * 16], alone[:, :, : 8 * 8, : 8 * 16], atol=1e-5)
    assert np.abs(tiled - decode(loaded, smooth_latents, None)).max() > 1e-4  # the rest is blended, not one piece


def test_the_tiled_decode_is_close_to_the_one_piece_decode(loaded, smooth_latents):
    """No overlap makes a tiled decode equal to the one-piece one (the mid-block attention spans the
    tile, not the frame), so this is a quality bar, not a rounding bound: the blend must stay close
    overall and at the borders, and much closer than butting tiles (overlap 0). The real Wan2.1
    configuration measures >= 40 dB (benchmarks/bench_cascade_real.py, docs/vae-tiling.md); this
    tiny random VAE's output is rougher, hence the lower bar (measured ~29 dB, CPU-independent:
    the differences are the model's, float32 rounding is 1e-6 of them)."""
    one = decode(loaded, smooth_latents, None)
    blended = decode(loaded, smooth_latents, tiles("vae_decoder", 24, 40, (16, 16), 8))
    butted = decode(loaded, smooth_latents, tiles("vae_decoder", 24, 40, (12, 20), 0))
    band = border_band(192, 320, [0, 64], [0, 128, 192], (128, 128), 32)
    assert psnr(blended, one) >= 24 and psnr(blended, one, band) >= 24
    assert psnr(blended, one) > psnr(butted, one) + 1


@pytest.mark.parametrize("plan", [None, tiles("vae_decoder", 24, 40, (16, 24), 8, spill=True)], ids=["one piece", "spilled tiles"])
def test_a_lean_run_drops_the_first_chunk_graph_after_its_chunk_and_computes_the_same(loaded, smooth_latents, plan):
    """A lean plan runs the first chunk alone (through every tile), then unloads the first-chunk
    graph: the frames are those of a run that keeps it (the same graphs on the same numbers, one
    group boundary more: 1e-6 as above), and the graph loads again for the next clip."""
    model, vae = loaded
    full = decode(loaded, smooth_latents, plan)
    dec = ChunkedDecoder(model, vae, plan, lean=True)
    out = dec.push(smooth_latents[0])
    assert len(out) == 1 and "vae_decoder_first" not in model.sessions  # dropped as soon as its chunk ran
    frames = out + [f for z in smooth_latents[1:] for f in dec.push(z)] + dec.finish()
    np.testing.assert_allclose(np.stack(frames, axis=1), full, atol=1e-6)
    np.testing.assert_allclose(decode(loaded, smooth_latents, plan), full, atol=1e-6)  # loaded again on demand
    assert "vae_decoder_first" in model.sessions


def test_a_tiled_encode_is_close_to_the_one_piece_encode(loaded):
    model, vae = loaded
    x = smooth_clip(5, 192, 320, seed=1)
    runs = []
    for plan in (None, tiles("vae_encoder", 24, 40, (16, 24), 8)):
        enc = ChunkedEncoder(model, vae, plan)
        runs.append(np.stack([z for t in range(5) for z in enc.push(x[:, t])] + enc.finish(), axis=1))
    one, tiled = runs
    assert tiled.shape == one.shape == (16, 2, 24, 40)
    # Latents are ~unit scale: the relative error of the blend is a few percent at most.
    assert np.linalg.norm(tiled - one) / np.linalg.norm(one) < 0.1


# --------------------------------------------------------------------------------------------------
# The cascade under a budget
# --------------------------------------------------------------------------------------------------


def frame_count(path):
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0)), c.streams.video[0].width


@pytest.mark.parametrize("budget, tiled", [(1, True), (0, False)])
def test_a_cascade_run_plans_the_vae_and_reports_it(onnx_bundle, tmp_path, budget, tiled):
    """--memory-budget 1 (nothing fits): the leanest plan runs, every frame comes out, the file's
    report says so; auto (0) on a tiny clip: one piece."""
    clip = write_video(tmp_path / "a.mp4", content=smooth_clip(10, 96, 128).transpose(1, 2, 3, 0), fps=24)
    report = upscale([clip], UpscaleOptions(tmp_path / "out", model=onnx_bundle[0], memory_budget_mb=budget))
    f = report.files[0]
    assert f.status == "done", f.reason
    assert frame_count(tmp_path / "out" / "a.mp4") == (10, 256)
    vae = f.to_dict()["vae"]
    assert vae["decode"]["tiled"] is tiled and vae["fits"] is (not tiled)
    assert vae["encode_s"] > 0 and vae["decode_s"] > 0
    if tiled:
        assert vae["decode"]["spill"] and vae["decode"]["overlap"] == 64 and len(vae["decode"]["tile"]) == 2
        assert any("memory-budget" in w and "VAE" in w for w in f.warnings)


def test_a_lean_first_chunk_is_charged_its_own_working_set_not_the_step_graphs():
    """A lean plan's first chunk runs alone: its first-chunk graph's weights are loaded, but the step
    graph has no working set yet, and the first chunk's own is FIRST_SHARE of it. The plan's peak is
    the largest of the four phases, never the step chunk's peak plus the first graph's weights."""
    enc, dec = (dataclasses.replace(c, first_weights_mb=w) for c, w in ((ENC, 400), (DEC, 600)))
    baseline = 1000 + 1.1 * (2 * 400 + 2 * 600)
    plan = plan_vae(enc, dec, LR, HR, budget_mb=6000, baseline_mb=baseline)
    assert plan.lean and plan.fits
    steps_only = baseline - WEIGHTS_FREED * (400 + 600)
    e, d = plan.encoder, plan.decoder
    step_phase = steps_only + max(e.peak_mb + d.held_mb, d.peak_mb + e.held_mb)
    charged_whole = steps_only + d.peak_mb + e.held_mb + WEIGHTS_LOADED * 600  # the step chunk's peak + the weights
    assert step_phase <= plan.estimate_mb < charged_whole
    assert d.first_mb == pytest.approx(d.peak_mb - (1 - FIRST_SHARE) * DEC.work_mb(*d.tile))
