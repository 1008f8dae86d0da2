"""Metrics against known answers: PSNR from a known MSE, SSIM bounds, warping error and flow."""

from __future__ import annotations

import math

import numpy as np

from gvrcli.quality.flow import MEDIUM, Flow, gray, warp
from gvrcli.quality.metrics import ClipMetrics, luma, mean_of, psnr, ssim
from tests.gvrcli.quality.scenes import moving
from tests.tolerances import fp32_chain_atol


def test_psnr_of_a_known_error_and_of_identity():
    assert psnr(0.0) == math.inf
    assert psnr(255.0**2) == 0.0
    assert abs(psnr(1.0) - 48.1308) < 5e-5  # 10 log10(255^2) = 48.130804, to four decimals


def test_identical_frames_give_inf_psnr_and_ssim_one():
    frame = moving(0, 64, 96)
    m = ClipMetrics()
    for _ in range(3):
        m.add(frame, frame, None)
    r = m.result()
    assert r["psnr_y"] == r["psnr_rgb"] == math.inf and r["ssim"] == 1.0 and r["warp_error"] is None


def test_psnr_rgb_matches_the_mean_squared_error_and_ssim_drops_with_noise():
    rng = np.random.default_rng(0)
    ref = moving(0, 64, 96)
    pred = np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, 1).astype(np.float32)
    m = ClipMetrics()
    m.add(pred, ref, None)
    mse = float(np.mean(((pred.astype(np.float64) - ref) * 255) ** 2))
    # Elementwise fp32 (correctly rounded on every CPU) summed in fp64: the same on every machine; the
    # bound is the fp32 rounding of each difference and square (3 roundings, 10/ln 10 dB per unit relative error).
    assert abs(m.result()["psnr_rgb"] - 10 * math.log10(255**2 / mse)) < 10 / math.log(10) * fp32_chain_atol(3)
    assert 0 < m.result()["ssim"] < 0.9
    assert 20 < m.result()["psnr_y"] < 40


def test_luma_is_bt601_studio_range():
    assert luma(np.zeros((1, 1, 3)))[0, 0] == 16  # 16 + 0: exact
    assert abs(luma(np.ones((1, 1, 3)))[0, 0] - 235) < fp32_chain_atol(3, magnitude=235)  # a 3-term fp32 dot, any order
    flat = np.full((32, 32), 128.0)
    assert ssim(flat, flat) == 1.0


def test_flow_finds_a_pan_and_warping_undoes_it():
    a, b = moving(3, 64, 96), moving(2, 64, 96)  # the background moved 4 px between them
    flow = Flow(MEDIUM)(gray(a), gray(b))
    background = np.s_[:, 60:]  # right of the object
    assert abs(float(np.median(flow[background][..., 0])) - 4) < 0.5
    warped, valid = warp(b, flow)
    assert np.abs(warped - a)[valid].mean() < np.abs(b - a).mean() / 1.5  # not 0: the object occludes


def test_warping_error_is_low_for_steady_video_and_high_for_flicker():
    frames = [moving(i, 64, 96) for i in range(4)]
    flow = Flow(MEDIUM)
    steady, flicker = ClipMetrics(), ClipMetrics()
    prev = None
    for i, f in enumerate(frames):
        motion = flow(gray(f), prev) if prev is not None else None
        prev = gray(f)
        steady.add(f, f, motion)
        flicker.add(np.clip(f + (0.1 if i % 2 else -0.1), 0, 1), f, motion)
    assert steady.result()["warp_error"] < flicker.result()["warp_error"] / 5


def test_means_over_files_skip_missing_values():
    rows = [{"psnr_y": 30.0, "ssim": 0.9, "warp_error": None}, {"psnr_y": 40.0, "ssim": 0.8, "warp_error": 0.01}]
    assert mean_of(rows) == {"psnr_y": 35.0, "ssim": 0.8500000000000001, "warp_error": 0.01}
