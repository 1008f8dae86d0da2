"""The engine: the sampler, temporal chunks and spatial tiles give the one-piece result."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.clips import pattern
from tests.fake_model import bilinear_up, fake_manifest

from gvrcli.inference.colorfix import bilinear_upsample
from gvrcli.inference.engine import Upscaler
from gvrcli.inference.streaming import StreamingUpscaler
from gvrcli.inference.noise import FrameNoise
from gvrcli.inference.settings import EngineSettings
from gvrcli.inference.text import PromptEmbeds
from gvrcli.inference.tiling import ramp, window_starts
from models.manifest import ModelManifest
from types import SimpleNamespace
from tests.tolerances import SIGMAS, fake_model_atol


class BilinearModel:
    """numpy twin of the fake ONNX model (a ``LoadedModel``): condition = bilinear upscale of ``lr``;
    step = the Euler update of the velocity that lands on it. Records every run."""

    description = "numpy"
    precision = "fp32"
    note = ""
    activation_factor = 16
    activation_fixed_mb = 0

    def __init__(self, scale=2, temporal_unit=2):
        manifest = fake_manifest(scale=scale, temporal_unit=temporal_unit, graphs={"condition": {"file": "c.onnx", "sha256": "0" * 64}})
        self.manifest = ModelManifest.from_json(json.dumps(manifest))
        self.calls = []  # (role, shape of its first input)

    def condition(self, lr, size=None):
        if size is not None:  # any output size: PyTorch's (and ONNX Resize's) bilinear to it
            return np.stack([bilinear_upsample(f, size=size) for f in lr[0].transpose(1, 2, 3, 0)], axis=1)[None]
        return bilinear_up(lr[0].transpose(1, 2, 3, 0), self.manifest.scale).transpose(3, 0, 1, 2)[None]

    def bind(self, role, inputs, outputs):
        def run():
            self.calls.append((role, next(iter(inputs.values())).shape))
            if role == "condition":
                size = inputs["hr_grid"].shape[-2:]
                nominal = size == tuple(self.manifest.scale * n for n in inputs["lr"].shape[-2:])
                outputs["cond"][...] = self.condition(inputs["lr"], None if nominal else size)
            else:
                z, t, t_next = inputs["z_t"], inputs["t"][0], inputs["t_next"][0]
                outputs["z_next"][...] = z + (t_next - t) * (z - inputs["cond"]) / t

        return SimpleNamespace(run=run)

    def steps(self):
        return [shape for role, shape in self.calls if role == "step"]


class TemporalMixModel(BilinearModel):
    """A model whose output at a frame depends on its neighbours (like temporal attention): chunk
    seams are where chunked and one-piece results may differ; the blend must keep that small."""

    def condition(self, lr, size=None):
        mixed = lr.copy()
        mixed[:, :, 1:] = 0.8 * lr[:, :, 1:] + 0.2 * lr[:, :, :-1]
        return super().condition(mixed, size)


def video(frames=9, h=24, w=32):
    return np.stack([pattern(i, h, w) for i in range(frames)]).astype(np.float32)


def run_stream(upscaler, lr):
    stream = StreamingUpscaler(upscaler)
    out = []
    for frame in lr:
        out += stream.push(frame)
    out += stream.finish()
    assert [i for i, _ in out] == list(range(len(lr))), "frames come out once each, in order"
    return np.stack([f.transpose(1, 2, 0) for _, f in out])  # planar (C, H, W) -> (T, H, W, C)


def test_sampler_lands_on_the_bilinear_upscale():
    den = BilinearModel()
    lr = video(4)
    up = Upscaler(den, EngineSettings.from_manifest(den.manifest, steps=3))
    out = up.upscale_chunk(lr, 0)
    assert out.shape == (4, 48, 64, 3)
    np.testing.assert_allclose(out, bilinear_up(lr, 2), atol=fake_model_atol(steps=3))
    assert [role for role, _ in den.calls] == ["condition", "step", "step", "step"], "condition once, then one step per sampler step"


def test_steps_ping_pong_between_two_bound_buffers_and_report_progress():
    den = BilinearModel()
    up = Upscaler(den, EngineSettings.from_manifest(den.manifest, steps=4))
    seen = []
    up.on_step = lambda step, steps: seen.append((step, steps))
    bound = []
    bind = den.bind
    den.bind = lambda role, inputs, outputs: bound.append((role, inputs, outputs)) or bind(role, inputs, outputs)
    lr = video(3)
    out = up.upscale_chunk(lr, 0)
    np.testing.assert_allclose(out, bilinear_up(lr, 2), atol=fake_model_atol(steps=4))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    (_, _, cond), (_, a_in, a_out), (_, b_in, b_out) = bound
    assert a_out["z_next"] is b_in["z_t"] and b_out["z_next"] is a_in["z_t"], "ping-pong, no per-step buffers"
    assert a_in["cond"] is cond["cond"] and len(up.step_seconds) == 4


@pytest.mark.parametrize("chunk,overlap", [(2, 1), (3, 1), (4, 2), (5, 0), (20, 5)])
def test_chunked_equals_one_piece(chunk, overlap):
    den = BilinearModel()
    lr = video(11)
    whole = Upscaler(den, EngineSettings.from_manifest(den.manifest, chunk_frames=64)).upscale_chunk(lr, 0)
    chunked = run_stream(Upscaler(den, EngineSettings.from_manifest(den.manifest, chunk_frames=chunk, chunk_overlap=overlap)), lr)
    np.testing.assert_allclose(chunked, whole, atol=fake_model_atol(steps=2))  # the manifest's 2 steps


@pytest.mark.parametrize("size,tile,overlap", [((37, 29), 16, 4), ((24, 32), 12, 6), ((61, 97), 32, 8)])
def test_tiled_equals_one_piece(size, tile, overlap):
    den = BilinearModel()
    lr = video(3, *size)
    whole = Upscaler(den, EngineSettings.from_manifest(den.manifest)).upscale_chunk(lr, 0)
    tiled_up = Upscaler(den, EngineSettings.from_manifest(den.manifest, tile=tile, tile_overlap=overlap))
    tiles = []
    tiled_up.on_tile = lambda t, u, frames: tiles.append((t, u, frames))
    tiled = tiled_up.upscale_chunk(lr, 0)
    assert tiled_up.tile_size(3, *size) == (min(tile, size[0]), min(tile, size[1]))
    u = tiles[0][1]
    assert u > 1 and tiles == [(t, u, 3) for t in range(1, u + 1)], "each tile announced once, for progress"
    diff = np.abs(tiled - whole).max()
    print(f"tiled vs one piece: max abs diff {diff:.2e}")
    assert diff < fake_model_atol(steps=2)


def test_chunk_seams_of_a_temporal_model_are_blended_not_cut():
    den = TemporalMixModel()
    lr = video(12)
    whole = Upscaler(den, EngineSettings.from_manifest(den.manifest, chunk_frames=64)).upscale_chunk(lr, 0)
    chunked = run_stream(Upscaler(den, EngineSettings.from_manifest(den.manifest, chunk_frames=4, chunk_overlap=2)), lr)
    diff = np.abs(chunked - whole).max()
    print(f"temporal model, chunked vs one piece: max abs diff {diff:.3e}")
    # Only a chunk's first frame lacks its predecessor; with the ramp its weight is small.
    assert diff < 0.05


def test_x4_and_odd_sizes():
    den = BilinearModel(scale=4)
    lr = video(2, 13, 7)
    out = Upscaler(den, EngineSettings.from_manifest(den.manifest)).upscale_chunk(lr, 0)
    assert out.shape == (2, 52, 28, 3)


def test_noise_depends_only_on_seed_and_frame_index():
    noise = FrameNoise(seed=7, channels=3)
    a = noise.draw(FrameNoise.HR, 0, 5, 8, 8)
    b = noise.draw(FrameNoise.HR, 3, 2, 8, 8)
    np.testing.assert_array_equal(a[:, 3:5], b), "overlapping chunks see the same noise for a frame"
    assert not np.array_equal(a, FrameNoise(seed=8, channels=3).draw(FrameNoise.HR, 0, 5, 8, 8))
    assert not np.array_equal(a, noise.draw(FrameNoise.LR, 0, 5, 8, 8))


def test_streaming_holds_at_most_one_chunk():
    den = BilinearModel()
    settings = EngineSettings.from_manifest(den.manifest, chunk_frames=4, chunk_overlap=1)
    stream = StreamingUpscaler(Upscaler(den, settings))
    most = 0
    for frame in video(40, 8, 8):
        stream.push(frame)
        most = max(most, len(stream.window), len(stream.acc))
        assert all(len(item) == 3 for item in stream.window), "each frame travels with its noise"
    stream.finish()
    assert most <= settings.chunk_frames
    assert max(shape[2] for shape in den.steps()) == 4


def test_a_rows_by_cols_tile_is_every_chunks_tile_whatever_the_budget():
    """--tile WxH reaches the engine as (rows, cols): clipped to the frame, no planner (a budget no
    tile meets changes nothing), the grid the speed model predicts, and the one-piece result."""
    from gvrcli.inference.speed import SpeedModel, Timing, chunk_lengths, predict_file_seconds

    den = BilinearModel()
    lr = video(3, 61, 97)
    whole = Upscaler(den, EngineSettings.from_manifest(den.manifest)).upscale_chunk(lr, 0)
    up = Upscaler(den, EngineSettings.from_manifest(den.manifest, tile=(24, 40), tile_overlap=8, memory_budget_mb=1))
    tiled = up.upscale_chunk(lr, 0)
    assert up.tile_size(3, 61, 97) == (24, 40) and up.tile_size(3, 20, 97) == (20, 40) and up.tile_size(3, 61, 30) == (24, 30)
    assert up.plan is None and up.warnings == []
    rows, cols = window_starts(61, 24, 8), window_starts(97, 40, 8)
    assert len(rows) > len(cols) > 1 and up.tile_seams["rows"] == [2 * y for y in rows[1:]] and up.tile_seams["cols"] == [2 * x for x in cols[1:]]
    assert np.abs(tiled - whole).max() < fake_model_atol(steps=2)
    # Windows 16 x 64 HR cells: a 48 x 80 tile pads to 48 x 128, its transpose to 80 x 64 (cheaper).
    timing = Timing(SpeedModel("ort-cpu", 0.001, ((1.0, 100.0),), 0.0, 1.0), 2, (16, 64), 2)
    predicted = predict_file_seconds(timing, up.memory, up.settings, 30, 61, 97, 8)
    per_chunk = [len(rows) * len(cols) * timing.tile_seconds(n, (48, 80)) for n in chunk_lengths(30, up.settings.chunk_frames, up.settings.chunk_overlap)]
    assert predicted == pytest.approx(sum(per_chunk)) and timing.tile_seconds(4, (48, 80)) > timing.tile_seconds(4, (80, 48))


def test_tile_size_follows_the_memory_budget():
    """--memory-budget is the process's peak: the engine's plan stays within it, tiling only when it must."""
    den = BilinearModel()
    roomy = Upscaler(den, EngineSettings.from_manifest(den.manifest, memory_budget_mb=100_000))
    assert roomy.tile_size(8, 540, 960) == (540, 960)
    budget = roomy.memory.baseline_mb + roomy.memory.fixed_mb(8, 540, 960) + 60
    small = Upscaler(den, EngineSettings.from_manifest(den.manifest, memory_budget_mb=int(budget)))
    th, tw = small.tile_size(8, 540, 960)
    assert (th, tw) != (540, 960) and th % den.manifest.spatial_multiple == 0 and tw % den.manifest.spatial_multiple == 0
    assert small.memory.peak_mb(8, 540, 960, th, tw) <= budget
    assert small.warnings == []


def test_a_budget_no_tile_can_meet_is_reported_and_the_smallest_tile_runs():
    den = BilinearModel()
    up = Upscaler(den, EngineSettings.from_manifest(den.manifest, memory_budget_mb=1))
    th, tw = up.tile_size(8, 540, 960)
    assert max(th, tw) <= max(den.manifest.spatial_multiple, up.settings.tile_overlap + 1) + den.manifest.spatial_multiple
    assert len(up.warnings) == 1 and "--memory-budget 1 MiB" in up.warnings[0]


def test_window_starts_cover_everything_with_the_overlap():
    for length in range(1, 60):
        for window, overlap in ((8, 2), (5, 4), (16, 0)):
            starts = window_starts(length, window, overlap)
            covered = set()
            for s in starts:
                covered.update(range(s, min(s + window, length)))
            assert covered == set(range(length))
            assert all(b - a <= window - overlap for a, b in zip(starts, starts[1:]))


def test_ramp_rises_across_the_overlap_and_never_reaches_zero():
    w = ramp(10, 4, 4)
    assert w[0] < w[1] < w[2] < w[3] and w[4] == w[5] == 1.0 and w[-1] < w[-2]
    assert (ramp(6, 6, 6, dead=2) > 0).all()


def test_bad_settings_are_refused():
    den = BilinearModel()
    from gvrcli.errors import UsageError

    with pytest.raises(UsageError):
        EngineSettings.from_manifest(den.manifest, chunk_frames=4, chunk_overlap=4)
    with pytest.raises(UsageError):
        EngineSettings.from_manifest(den.manifest, steps=0)
    for tile in (8, (24, 8), (8, 24)):  # a side no wider than the overlap: windows could not advance
        with pytest.raises(UsageError, match="overlap"):
            EngineSettings.from_manifest(den.manifest, tile=tile, tile_overlap=8)


class ShotRecordingModel(TemporalMixModel):
    """Records which frames each condition run (chunk or tile) sees: frame k's pixels carry k."""

    def __init__(self):
        super().__init__()
        self.chunks = []

    def condition(self, lr, size=None):
        values = (lr[0, 0, :, 0, 0] + 1) / 2 * 20  # pixel codec: [0, 1] -> [-1, 1]; frame k = k / 20
        self.chunks.append(sorted({int(round(v)) for v in values}))
        return super().condition(lr, size)


def indexed_video(frames=16, h=12, w=16):
    return np.stack([np.full((h, w, 3), k / 20, np.float32) for k in range(frames)])


def run_shots(upscaler, lr, cuts):
    stream = StreamingUpscaler(upscaler)
    out = []
    for index, frame in enumerate(lr):
        if index in cuts:
            out += stream.cut()
        out += stream.push(frame)
    out += stream.finish()
    assert [i for i, _ in out] == list(range(len(lr))), "frames come out once each, in order"
    return np.stack([f.transpose(1, 2, 0) for _, f in out])


@pytest.mark.parametrize("chunk,overlap", [(64, 5), (4, 2), (5, 1)])
def test_a_cut_starts_a_new_chunk_so_no_chunk_spans_two_shots(chunk, overlap):
    lr, cut = indexed_video(16), 7
    den = ShotRecordingModel()
    settings = EngineSettings.from_manifest(den.manifest, chunk_frames=chunk, chunk_overlap=overlap)
    out = run_shots(Upscaler(den, settings), lr, cuts={cut})
    assert den.chunks and all(max(c) < cut or min(c) >= cut for c in den.chunks), den.chunks
    # Each shot is upscaled as if it were a video of its own.
    for first, end in ((0, cut), (cut, len(lr))):
        alone = run_stream(Upscaler(ShotRecordingModel(), settings), lr[first:end])
        np.testing.assert_allclose(out[first:end], alone, atol=fake_model_atol(steps=2))


@pytest.mark.parametrize("cut", range(1, 11))
def test_a_cut_anywhere_keeps_every_frame_once_and_the_blend_whole(cut):
    """Including a cut right after a chunk ran, when only frames already done (fading out) are
    held: they are run again, fading in, so their weights still sum to one."""
    den = BilinearModel()
    lr = video(11)
    settings = EngineSettings.from_manifest(den.manifest, chunk_frames=4, chunk_overlap=2)
    np.testing.assert_allclose(run_shots(Upscaler(den, settings), lr, cuts={cut}), bilinear_up(lr, 2), atol=fake_model_atol(steps=2))


class OverflowingModel(BilinearModel):
    """A reduced-precision model whose steps overflow (as fp16/bf16 can): NaN everywhere."""

    precision = "bf16"

    def bind(self, role, inputs, outputs):
        inner = super().bind(role, inputs, outputs)

        def run():
            inner.run()
            if role == "step":
                outputs["z_next"][...] = np.nan

        return SimpleNamespace(run=run)


def test_a_non_finite_chunk_is_recomputed_at_fp32_with_a_warning():
    fp32 = BilinearModel()
    up = Upscaler(OverflowingModel(), EngineSettings.from_manifest(fp32.manifest, steps=2), fallback=lambda: fp32)
    lr = video(4)
    np.testing.assert_allclose(up.upscale_chunk(lr, 0), bilinear_up(lr, 2), atol=fake_model_atol(steps=2))
    assert len(up.warnings) == 1 and "recomputed at fp32" in up.warnings[0]
    assert [role for role, _ in fp32.calls] == ["condition", "step", "step"], "the fp32 model redid the chunk"


def test_a_non_finite_chunk_without_an_fp32_model_fails_and_nothing_of_it_comes_out():
    from gvrcli.errors import ModelError
    from gvrcli.inference.engine import NonFiniteOutput

    settings = EngineSettings.from_manifest(BilinearModel().manifest, steps=2)
    for fallback in (None, lambda: (_ for _ in ()).throw(ModelError("an int8 artefact has no fp32 form"))):
        up = Upscaler(OverflowingModel(), settings, fallback=fallback)
        stream = StreamingUpscaler(up)
        with pytest.raises(NonFiniteOutput, match="NaN or Inf"):
            for frame in video(4):
                assert stream.push(frame) == []
            stream.finish()


def test_an_fp32_model_that_overflows_is_not_retried():
    from gvrcli.inference.engine import NonFiniteOutput

    model = OverflowingModel()
    model.precision = "fp32"
    up = Upscaler(model, EngineSettings.from_manifest(model.manifest, steps=2), fallback=lambda: pytest.fail("no retry at fp32"))
    with pytest.raises(NonFiniteOutput):
        up.upscale_chunk(video(3), 0)


# ---- any output size, prompts and guidance ------------------------------------------------------


def test_any_output_size_lands_on_the_bilinear_to_that_size():
    den = BilinearModel()
    lr = video(3, 24, 32)
    out = Upscaler(den, EngineSettings.from_manifest(den.manifest, size=(70, 55))).upscale_chunk(lr, 0)
    assert out.shape == (3, 55, 70, 3)
    np.testing.assert_allclose(out, np.stack([bilinear_upsample(f, size=(55, 70)).transpose(1, 2, 0) for f in lr]), atol=fake_model_atol(steps=2))
    scaled = EngineSettings.from_manifest(den.manifest, scale=1.5, size_multiple=(2, 2))
    assert scaled.output_size(45, 81) == (68, 122) and scaled.output_size(43, 81) == (64, 122)  # 64.5 -> 65 -> even 64


def test_tiles_at_a_non_integer_ratio_meet_on_whole_pixels_and_blend():
    den = BilinearModel()
    lr = video(2, 37, 29)
    settings = dict(size=(67, 83))  # x2.86 by x2.31
    whole = Upscaler(den, EngineSettings.from_manifest(den.manifest, **settings)).upscale_chunk(lr, 0)
    tiled = Upscaler(den, EngineSettings.from_manifest(den.manifest, tile=16, tile_overlap=4, **settings)).upscale_chunk(lr, 0)
    diff = np.abs(tiled - whole).max()
    print(f"tiled vs one piece at a non-integer ratio: max abs diff {diff:.2e}")
    assert tiled.shape == whole.shape == (2, 83, 67, 3)
    assert diff < 0.02  # each tile interpolates on its own grid, up to half an output pixel off the frame's


class TextModel(BilinearModel):
    """A text path whose velocity lands on ``cond + mean(text)``: the text graph is the identity on
    the prompt's tokens, the null embedding is 0.1 everywhere. Under guidance S the sampler must
    land on ``cond + c_null + S * (c_prompt - c_null)``, where c = the mean of the step's tokens."""

    def __init__(self):
        super().__init__()
        graphs = {role: {"file": f"{role}.onnx", "sha256": "0" * 64} for role in ("condition", "text")}
        fields = fake_manifest(graphs=graphs, text_dim=4, text_tokens=3)
        fields["config"] = {"dim": 4}
        self.manifest = ModelManifest.from_json(json.dumps(fields))

    def bind(self, role, inputs, outputs):
        if role == "text":
            def run():
                self.calls.append((role, inputs["prompt"].shape))
                outputs["text"][...] = inputs["prompt"]
                outputs["text_null"][...] = 0.1
            return SimpleNamespace(run=run)
        if role == "step":
            shift = float(inputs["text"].mean())
            return super().bind(role, {**inputs, "cond": inputs["cond"] + shift}, outputs)
        return super().bind(role, inputs, outputs)


@pytest.mark.parametrize("cfg", [1.0, 3.0])
def test_guidance_combines_the_null_and_prompt_steps_exactly(cfg):
    den = TextModel()
    lr = video(2, 12, 16) * 0.5 + 0.25  # room for the shift without clipping
    tokens = np.array([[0.3, 0.3, 0.3, 0.3], [0.2, 0.2, 0.2, 0.2]], np.float32)  # 2 of 3 tokens: padded with one null row
    up = Upscaler(den, EngineSettings.from_manifest(den.manifest, steps=3, cfg=cfg))
    guided = fake_model_atol(steps=3 * 2, magnitude=cfg * SIGMAS)  # two velocities a step, their gap scaled by cfg
    plain = up.upscale_chunk(lr, 0)
    np.testing.assert_allclose(plain, bilinear_up(lr, 2) + 0.05, atol=guided)  # no prompt: the null (latent +0.1 = pixel +0.05)
    up.set_prompt(PromptEmbeds(tokens, "p.text.safetensors"))
    den.calls.clear()
    out = up.upscale_chunk(lr, 0)
    c_null, c_prompt = 0.1, (0.3 + 0.2 + 0.1) / 3
    np.testing.assert_allclose(out, bilinear_up(lr, 2) + (c_null + cfg * (c_prompt - c_null)) / 2, atol=guided)
    assert [r for r, _ in den.calls].count("step") == 3 * (2 if cfg != 1 else 1), "guidance: two step calls per step"
    assert [r for r, _ in den.calls].count("text") == 1, "the text graph once per prompt"


@pytest.mark.parametrize("tile, h, w", [(0, 128, 192), (160, 160, 224)])  # planned (whole frames here), and 2 tiles
def test_prepare_compiles_exactly_what_the_first_chunk_runs(fake_model, tile, h, w):
    """OpenVINO compiles a copy per clip shape: ``prepare`` (run while the clip decodes) must make
    the very copies the chunk then binds, or the compile it was meant to hide happens anyway."""
    from gvrcli.inference.openvino_backend import OpenVinoBackend

    model = OpenVinoBackend(fake_model, device="CPU").load()
    up = Upscaler(model, EngineSettings.from_manifest(model.manifest, tile=tile, memory_budget_mb=100000))
    T = 16  # LR tile and HR latent both past OpenVINO's static-shape threshold
    up.prepare(T, h, w)
    prepared = dict(model._static)
    assert {role for role, _ in prepared} == {"condition", "step"}
    lr = np.random.default_rng(0).uniform(0, 1, (T, h, w, 3)).astype(np.float32)
    up.upscale_chunk(lr, 0)
    assert model._static == prepared and all(model._static[k] is v for k, v in prepared.items())


def test_the_chunk_starts_and_tile_seams_it_ran_are_recorded_for_gvr_eval():
    lr, cut = indexed_video(16), 7
    den = ShotRecordingModel()
    up = Upscaler(den, EngineSettings.from_manifest(den.manifest, chunk_frames=4, chunk_overlap=2))
    stream = StreamingUpscaler(up)
    for index, frame in enumerate(lr):
        if index == cut:
            stream.cut()
        stream.push(frame)
    stream.finish()
    assert stream.chunk_starts == [c[0] for c in den.chunks] and cut in stream.chunk_starts
    assert up.tile_seams is None  # whole frames: no seams
    tiled = Upscaler(BilinearModel(), EngineSettings.from_manifest(BilinearModel().manifest, tile=8, tile_overlap=2))
    tiled.upscale_chunk(video(2), 0)
    rows, cols = window_starts(24, 8, 2), window_starts(32, 8, 2)  # video()'s 24x32 frames, x2
    assert len(rows) > 1 and len(cols) > 1
    assert tiled.tile_seams == {"rows": [2 * y for y in rows[1:]], "cols": [2 * x for x in cols[1:]], "overlap": [4, 4]}
