"""The colour fix (``gvrcli.inference.colorfix``): its reference, each method, and its place in the runtime.

The reference is the bilinear upsample of the LR frame, which must equal the model's condition
path interpolation (``F.interpolate(mode="bilinear", align_corners=False)``). Runtime checks use
the fake model with a colour cast (``drift``), which is per pixel, so tiled output is exact.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from gvrcli.inference.colorfix import METHODS, bilinear_upsample, color_fix, lab_to_rgb, low_band, rgb_to_lab
from gvrcli.errors import UsageError
from tests.clips import pattern, read_video, write_video
from tests.fake_model import build_fake_onnx
from tests.tolerances import fp32_chain_atol

CAST = ((0.8, 0.9, 1.1), (0.12, -0.03, -0.06))  # per-channel gain, offset: a colour cast and a contrast loss


def _frames(count=3, h=24, w=32, seed=0):
    rng = np.random.default_rng(seed)
    return [np.clip(pattern(i, h, w) + 0.05 * rng.standard_normal((h, w, 3)), 0, 1).astype(np.float32) for i in range(count)]


@pytest.mark.parametrize("scale", [2, 4])
@pytest.mark.parametrize("size", [(24, 32), (7, 5), (1, 3)])
def test_reference_is_torch_bilinear(scale, size):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    lr = np.random.default_rng(1).random((*size, 3), dtype=np.float32)
    want = F.interpolate(torch.from_numpy(lr).permute(2, 0, 1)[None], scale_factor=scale, mode="bilinear", align_corners=False)[0]
    # Power-of-two scales: exact sample positions and weights, then about 9 roundings of values in [0, 1].
    np.testing.assert_allclose(bilinear_upsample(lr, scale), want.numpy(), atol=fp32_chain_atol(9))


def test_lab_round_trip():
    rgb = np.random.default_rng(2).random((3, 16, 16), dtype=np.float32)
    lab = rgb_to_lab(rgb)
    assert 0 <= lab[0].min() and lab[0].max() <= 100
    # About 40 roundings there and back (two 3x3 matrices, cube roots, sRGB curves; libm's pow/cbrt
    # within a few ulp), each amplified up to 13x by the inverse sRGB curve's slope near its knee.
    np.testing.assert_allclose(lab_to_rgb(lab), rgb, atol=fp32_chain_atol(40 * 13))
    white = rgb_to_lab(np.ones((3, 1, 1), np.float32))[:, 0, 0]
    np.testing.assert_allclose(white, [100, 0, 0], atol=fp32_chain_atol(10, magnitude=500))  # a*, b* = 500 (f(x) - f(y)), f ~ 1


@pytest.mark.parametrize("method", METHODS)
def test_an_exact_upscale_is_left_alone(method):
    """The untrained default's output is the bilinear upsample: no method changes it visibly."""
    for lr in _frames():
        ref = bilinear_upsample(lr, 2)
        out = color_fix(ref.copy(), lr, method)
        assert np.abs(out - ref).max() < 2e-3  # well under one 8-bit code value (3.9e-3)


def _cast(ref):
    gain, offset = (np.array(v, np.float32)[:, None, None] for v in CAST)
    return np.clip(ref * gain + offset, 0, 1)


def test_adain_matches_channel_statistics():
    for lr in _frames():
        ref = bilinear_upsample(lr, 2)
        out = color_fix(_cast(ref), lr, "adain")
        np.testing.assert_allclose(out.mean(axis=(1, 2)), ref.mean(axis=(1, 2)), atol=2e-3)
        np.testing.assert_allclose(out.std(axis=(1, 2)), ref.std(axis=(1, 2)), atol=2e-3)


def test_lab_matches_lab_statistics():
    for lr in _frames():
        ref = bilinear_upsample(lr, 2)
        out = color_fix(_cast(ref), lr, "lab")
        got, want = rgb_to_lab(out), rgb_to_lab(ref)
        np.testing.assert_allclose(got.mean(axis=(1, 2)), want.mean(axis=(1, 2)), atol=1.0)  # L in 0..100; ~1 = a just-noticeable difference
        np.testing.assert_allclose(got.std(axis=(1, 2)), want.std(axis=(1, 2)), rtol=0.03)  # out-of-gamut values are clipped
        assert np.abs(out - ref).mean() < 0.75 * np.abs(_cast(ref) - ref).mean()


def test_wavelet_takes_low_band_from_the_reference_and_keeps_high_band():
    rng = np.random.default_rng(3)
    for lr in _frames():
        ref = bilinear_upsample(lr, 2)
        detail = 0.05 * rng.standard_normal(ref.shape).astype(np.float32)
        out = color_fix(np.clip(_cast(ref) + detail, 0, 1), lr, "wavelet")
        np.testing.assert_allclose(low_band(out), low_band(ref), atol=0.02)
        high = lambda x: x - low_band(x)  # noqa: E731
        assert np.corrcoef(high(out - ref).ravel(), high(detail).ravel())[0, 1] > 0.8  # the output's own detail stays


def test_unknown_method_is_a_usage_error():
    with pytest.raises(UsageError, match="--color-fix"):
        color_fix(np.zeros((3, 4, 4), np.float32), np.zeros((2, 2, 3), np.float32), "hsv")


# ---- in the runtime --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cast_model(tmp_path_factory):
    return build_fake_onnx(tmp_path_factory.mktemp("cast") / "cast-x2.onnx", drift=CAST)


@pytest.fixture(scope="module")
def lossless_clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("clip") / "in" / "clip.mkv", frames=7, size=(48, 40), codec="ffv1", pix_fmt="bgr0")


def _run(clip, model, out, **options):
    from gvrcli.batch.options import UpscaleOptions
    from gvrcli.batch.upscale import upscale

    opts = UpscaleOptions(output_dir=out, model=model, codec="ffv1", pix_fmt="bgr0", threads=1, **options)
    report = upscale([clip], opts)
    assert report.exit_code == 0, [f.reason for f in report.files]
    return report, np.stack(read_video(out / "clip.mkv")["rgb"]).transpose(0, 3, 1, 2)  # (T, 3, H, W)


def _lr_frames(clip):
    return [f for f in np.stack(read_video(clip)["rgb"])]


@pytest.mark.parametrize("method", ["wavelet", "adain"])
def test_tiled_and_chunked_runs_equal_the_one_piece_run(method, cast_model, lossless_clip, tmp_path):
    """The fix sees whole frames (tiles and chunks are blended before it runs): no seams."""
    _, whole = _run(lossless_clip, cast_model, tmp_path / "whole", color_fix=method)
    _, tiled = _run(lossless_clip, cast_model, tmp_path / "tiled", color_fix=method, tile=20, tile_overlap=6, chunk_frames=4, chunk_overlap=2)
    assert np.abs(tiled - whole).max() <= 1.5 / 255  # 8-bit rounding of float outputs equal to ~1e-5
    lr = _lr_frames(lossless_clip)
    ref = np.stack([bilinear_upsample(f, 2) for f in lr])
    _, raw = _run(lossless_clip, cast_model, tmp_path / "raw", color_fix="none")
    assert np.abs(whole - ref).mean() < 0.3 * np.abs(raw - ref).mean()  # and it did fix the cast


def test_default_model_output_is_unchanged_by_the_fix(fake_model, lossless_clip, tmp_path):
    """The fake model lands on the bilinear upscale, as the untrained default does."""
    _, plain = _run(lossless_clip, fake_model, tmp_path / "none", color_fix="none")
    for method in ("wavelet", "adain", "lab"):
        report, fixed = _run(lossless_clip, fake_model, tmp_path / method, color_fix=method)
        assert np.abs(fixed - plain).max() <= 1.5 / 255  # at most one code value, where rounding tips
        # Bilinear x2 of 8-bit values lands exactly on half code values, where 1e-6 decides the
        # rounding: measured 1.4% (wavelet), 2.0% (adain), 7.6% (lab, float32 round trip) of values.
        assert (fixed != plain).mean() < 0.15
        assert report.color_fix == method and report.files[0].color_fix == method


def test_cli_option_and_json_events(gvr_cmd, cli_env, cast_model, lossless_clip, tmp_path):
    run = subprocess.run(
        [*gvr_cmd, "upscale", str(lossless_clip), str(tmp_path / "out"), "--model", str(cast_model), "--json", "--color-fix", "adain"],
        capture_output=True, text=True, env=cli_env, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert [e["color_fix"] for e in events if e["event"] in ("file", "summary")] == ["adain", "adain"]
    bad = subprocess.run(
        [*gvr_cmd, "upscale", str(lossless_clip), str(tmp_path / "bad"), "--model", str(cast_model), "--color-fix", "hsv"],
        capture_output=True, text=True, env=cli_env, timeout=120,
    )
    assert bad.returncode == 2 and "--color-fix" in bad.stderr and not (tmp_path / "bad").exists()
