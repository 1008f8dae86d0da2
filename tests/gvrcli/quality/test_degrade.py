"""``gvr degrade`` as a library: pair sizes, determinism, the flow stage's reach, batch contracts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from tests.clips import read_video, write_video

from gvrcli.errors import UsageError
from gvrcli.quality.degrade import Compression, blur_kernel, sample_base, stage_rng
from gvrcli.quality.flow import gray
from gvrcli.quality.flow_degrade import FlowDegradation, sample_flow
from gvrcli.quality.pairs import DegradeOptions, degrade
from gvrcli.report import DONE, FAILED, SKIPPED
from tests.gvrcli.quality.scenes import moving, still
from tests.tolerances import fp32_chain_atol

FRAMES = 10


@pytest.fixture(scope="module")
def hq(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hq")
    write_video(root / "moving.mp4", frames=FRAMES, size=(192, 128), content=moving)
    write_video(root / "shots" / "static.mp4", frames=FRAMES, size=(192, 128), content=still)
    return root


@pytest.fixture(scope="module")
def runs(hq, tmp_path_factory) -> dict:
    """name -> (LQ dir, report) for the variants the tests compare."""
    out = {}
    for name, kw in {"a": {}, "again": {}, "seed1": {"seed": 1}, "noflow": {"flow": False}}.items():
        lq = tmp_path_factory.mktemp(name)
        out[name] = (lq, degrade([hq], DegradeOptions(output_dir=lq, scale=2, **kw)))
    return out


def pixels(path: Path) -> np.ndarray:
    return np.stack(read_video(path)["rgb"]) * 255


def test_lq_is_half_size_with_every_frame_and_timestamp(hq, runs):
    lq, report = runs["a"]
    assert report.exit_code == 0 and [f.status for f in report.files] == [DONE, DONE]
    assert sorted(p.relative_to(lq).as_posix() for p in lq.rglob("*") if p.is_file()) == ["moving.mp4", "shots/static.mp4"]
    for name in ("moving.mp4", "shots/static.mp4"):
        src, dst = read_video(hq / name), read_video(lq / name)
        assert (dst["width"], dst["height"]) == (96, 64)
        assert dst["frames"] == FRAMES
        assert dst["times"] == pytest.approx(src["times"], abs=1e-3)


def test_same_seed_gives_identical_lq_and_another_seed_a_different_one(runs):
    for name in ("moving.mp4", "shots/static.mp4"):
        a, again, seed1 = (runs[k][0] / name for k in ("a", "again", "seed1"))
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(again.read_bytes()).digest()
        assert np.abs(pixels(a) - pixels(seed1)).mean() > 1.0


def test_flow_stage_changes_the_moving_clip_and_leaves_the_static_one(runs):
    a, noflow = runs["a"][0], runs["noflow"][0]
    assert np.abs(pixels(a / "moving.mp4") - pixels(noflow / "moving.mp4")).mean() > 0.5
    assert np.abs(pixels(a / "shots/static.mp4") - pixels(noflow / "shots/static.mp4")).mean() < 0.5


def test_each_clip_reports_its_parameters_and_switching_flow_off_keeps_the_base_draws(runs):
    with_flow = {f.source.name: f.to_dict() for f in runs["a"][1].files}
    without = {f.source.name: f.to_dict() for f in runs["noflow"][1].files}
    for name in ("moving.mp4", "static.mp4"):
        params = with_flow[name]["params"]
        assert params["base"] == without[name]["params"]["base"]
        assert params["flow"] and without[name]["params"]["flow"] is None
        assert params["model_guided"] is None
        assert 18 <= params["base"]["crf"] <= 32
        assert with_flow[name]["scale"] == 2 and with_flow[name]["seed"] == 0
    # Clips draw from their own streams: two clips of one run differ.
    assert with_flow["moving.mp4"]["params"]["base"] != with_flow["static.mp4"]["params"]["base"]


def test_x4_and_a_rerun_skips_done_outputs(hq, tmp_path):
    report = degrade([hq / "moving.mp4"], DegradeOptions(output_dir=tmp_path, scale=4, flow=False))
    assert report.exit_code == 0
    assert (read_video(tmp_path / "moving.mp4")["width"], read_video(tmp_path / "moving.mp4")["height"]) == (48, 32)
    again = degrade([hq / "moving.mp4"], DegradeOptions(output_dir=tmp_path, scale=4))
    assert [f.status for f in again.files] == [SKIPPED]
    assert not [p for p in tmp_path.rglob(".*")], "no partials or locks left"


def test_bad_inputs_fail_alone_and_bad_options_are_usage_errors(hq, tmp_path):
    src = tmp_path / "in"
    write_video(src / "tiny.mp4", frames=3, size=(24, 16))
    (src / "broken.mp4").write_bytes(b"not a video")
    write_video(src / "ok.mp4", frames=3, size=(64, 48))
    report = degrade([src], DegradeOptions(output_dir=tmp_path / "out"))
    status = {f.source.name: (f.status, f.reason) for f in report.files}
    assert status["ok.mp4"][0] == DONE
    assert status["tiny.mp4"][0] == FAILED and "too small" in status["tiny.mp4"][1]
    assert status["broken.mp4"][0] == FAILED
    assert report.exit_code == 1
    with pytest.raises(UsageError, match="scale"):
        degrade([src], DegradeOptions(output_dir=tmp_path / "o2", scale=3))
    with pytest.raises(UsageError, match="inside input"):
        degrade([src], DegradeOptions(output_dir=src / "lq"))


def test_h264_stage_is_deterministic_for_small_frames():
    """x264's AVX-512 kernels gave a different bitstream for the same 96x64 input from run to run."""
    rng = np.random.default_rng(0)
    base = rng.random((64, 96, 3)).astype(np.float32)
    frames = [np.clip(base + 0.1 * rng.standard_normal(base.shape).astype(np.float32), 0, 1) for _ in range(12)]

    def run():
        c = Compression(21, 96, 64, None)
        out = [f for frame in frames for f in c.push(frame)] + c.flush()
        return hashlib.sha256(np.stack(out).tobytes()).hexdigest()

    assert len({run() for _ in range(8)}) == 1
    assert Compression(21, 97, 61, None).flush() == []  # odd sizes are padded for 4:2:0


def test_blur_kernels_are_normalised_and_params_stay_in_range():
    for seed in range(20):
        for scale in (2, 4):
            p = sample_base(seed, "clip.mp4", scale)
            k = blur_kernel(p)
            assert k.shape == (p.blur_size, p.blur_size) and abs(float(k.sum(dtype=np.float64)) - 1) < fp32_chain_atol(1)  # fp64 weights summing to 1, each rounded to fp32 once
            assert 0.2 <= p.sigma_x <= 0.75 * scale and p.resize in ("area", "bilinear", "bicubic")
    assert sample_base(3, "a.mp4", 2) == sample_base(3, "a.mp4", 2) != sample_base(3, "b.mp4", 2)


def test_flow_stage_leaves_pixels_without_motion_untouched():
    h, w = 64, 96
    frames = [moving(i, h, w, speed=3.0) for i in range(4)]
    frames = [np.where(np.arange(w)[None, :, None] < w // 2, still(i, h, w), f) for i, f in enumerate(frames)]
    rng = stage_rng(0, "x", "flow")
    stage = FlowDegradation(sample_flow(rng), rng)
    outs = [stage(f, gray(f)) for f in frames]
    assert np.array_equal(outs[0], frames[0]), "the first frame has no previous one"
    for out, frame in zip(outs[1:], frames[1:]):
        assert np.array_equal(out[:, : w // 2 - 12], frame[:, : w // 2 - 12]), "the static half is untouched"
        assert np.abs(out - frame)[:, w // 2 :].max() > 0.05, "the moving half is degraded"


class Invert:
    """A stand-in base model for the model-guided seam: records its calls, inverts the frames."""

    chunk_frames = 4

    def __init__(self):
        self.calls = []

    def sdedit(self, frames, alpha, seed):
        self.calls.append((len(frames), alpha, seed))
        return 1 - frames


def test_model_guided_stage_hands_chunks_to_the_base_denoiser(hq, tmp_path):
    base = Invert()
    guided = degrade([hq / "moving.mp4"], DegradeOptions(output_dir=tmp_path / "g", flow=False, model_guided=base))
    plain = degrade([hq / "moving.mp4"], DegradeOptions(output_dir=tmp_path / "p", flow=False))
    assert guided.exit_code == plain.exit_code == 0
    assert [n for n, _, _ in base.calls] == [4, 4, 2]
    assert all(0.3 <= alpha <= 0.4 for _, alpha, _ in base.calls)
    assert guided.files[0].to_dict()["params"]["model_guided"] == {"alpha": round(base.calls[0][1], 4)}
    both = pixels(tmp_path / "g" / "moving.mp4") + pixels(tmp_path / "p" / "moving.mp4")
    err = np.abs(both - 255)  # the LQ file is 4:4:4 at QP 0: RGB<->YUV rounding only
    assert err.mean() < 1 and err.max() <= 8, "the base model's output is what is written"
