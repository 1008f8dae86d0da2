"""The weight-free metrics on constructed clips whose answer is known: a planted one-frame jump, a
planted colour cast of delta-E 10, planted flicker, and outputs that do or do not agree with their LR."""

from __future__ import annotations

import cv2
import numpy as np

from gvrcli.quality.consistency import Consistency, Downscale, Seams, boundary_jump, chunk_regions, lab, low_pass
from gvrcli.quality.degrade import BaseDegradation, sample_base
from tests.gvrcli.quality.scenes import moving

H, W = 64, 96  # the HR (reference) size; the LR is half


def clip(frames: int = 30):
    """(reference, LR, bilinear upsample of the LR, bicubic upsample: a plain upscaler's output)."""
    for t in range(frames):
        ref = moving(t, H, W)
        lr = cv2.resize(ref, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
        up = np.clip(cv2.resize(lr, (W, H), interpolation=cv2.INTER_LINEAR), 0, 1)
        out = np.clip(cv2.resize(lr, (W, H), interpolation=cv2.INTER_CUBIC), 0, 1)
        yield ref, lr, up, out


def score(plant=lambda t, out, up: out, frames: int = 30) -> Consistency:
    c = Consistency()
    for t, (ref, lr, up, out) in enumerate(clip(frames)):
        c.add(np.clip(plant(t, out, up), 0, 1).astype(np.float32), ref, up, lr)
    return c


def test_a_one_frame_jump_at_frame_15_is_singled_out():
    # A brightness step of 6 code values from frame 15 on: f_15 = 6 + (the clean clip's change at
    # 15, >= 0), every other f_t is the clean clip's (under 0.3 code values here: bicubic and the
    # reference move together), so frame 15's ratio to the median is over 10x any other frame's.
    c = score(lambda t, out, up: out + (6 / 255 if t >= 15 else 0))
    at_15, _ = c.result(chunk_regions(30, [0, 15], 0, set()), set())
    jump = at_15["boundary_jump"]
    series = c.result([], set())[1]["jump"]
    assert int(np.nanargmax(np.array(series, dtype=float))) == 15
    assert series[15] > 10 * max(r for t, r in enumerate(series[1:], 1) if t != 15)
    assert jump > 3
    # Boundaries at 10 and 20 (not where the jump is): those frames change as much as the others.
    elsewhere, _ = c.result(chunk_regions(30, [0, 10, 20], 0, set()), set())
    assert elsewhere["boundary_jump"] < 2


def test_a_blended_boundary_counts_the_whole_blend_and_cuts_are_not_boundaries():
    assert chunk_regions(40, [0, 15, 30], 5, set()) == [range(15, 21), range(30, 36)]
    assert chunk_regions(40, [0, 15, 30], 5, {30}) == [range(15, 21)]  # a chunk starting at a cut follows no chunk
    assert chunk_regions(20, [0, 18], 5, set()) == [range(18, 20)]  # clipped at the end
    ratios, value = boundary_jump([None, 1.0, 1.0, 4.0, 1.0, 1.0], [range(3, 4)], set())
    assert ratios == [None, 1.0, 1.0, 4.0, 1.0, 1.0] and value == 4.0
    _, none = boundary_jump([None, 1.0, 1.0], [], set())
    assert none is None


def shift_ab(rgb: np.ndarray, da: float, db: float) -> np.ndarray:
    """The colour cast of the test: (a*, b*) += (da, db) in OpenCV's float Lab, back to RGB."""
    lab_img = lab(rgb)
    lab_img[..., 1] += da
    lab_img[..., 2] += db
    return cv2.cvtColor(lab_img, cv2.COLOR_Lab2RGB)


def test_a_colour_cast_of_delta_e_10_reads_within_20_percent():
    # "+10 hue shift" made precise: every pixel moves by (a*, b*) += (6, 8), a delta-E (CIE76) of
    # exactly 10 per pixel before the low-pass. The metric compares the low-passed images, and Lab is
    # not linear in RGB, so it reads close to 10, not exactly; 20% is the bound.
    cast = score(lambda t, out, up: shift_ab(out, 6.0, 8.0)).result([], set())[0]["delta_e"]
    clean = score().result([], set())[0]["delta_e"]
    assert abs(cast - 10) < 2, cast
    assert clean < 1.0, clean  # bicubic against bilinear of the same LR: nearly the same colours


def test_planted_flicker_raises_flicker_at_least_3x():
    # Brightness alternating by +-2 code values: f_t = 4 code values from frame 1 on, where the
    # clean clip's f (bicubic vs the reference, both moving together) stays well under one.
    clean = score().result([], set())[0]["flicker"]
    flicker = score(lambda t, out, up: out + (2 / 255) * (-1) ** t).result([], set())[0]["flicker"]
    assert flicker >= 3 * clean, (flicker, clean)
    assert abs(flicker - 4) < 1.5
    # A steady error (a constant cast) is not flicker: it stays near the clean clip's.
    steady = score(lambda t, out, up: out + 4 / 255).result([], set())[0]["flicker"]
    assert steady < 1.5 * clean + 0.1


def test_lr_consistency_is_high_for_an_output_true_to_its_input_and_drops_when_shifted():
    true = score().result([], set())[0]["lr_psnr"]
    shifted = score(lambda t, out, up: np.roll(out, 3, axis=1)).result([], set())[0]["lr_psnr"]
    assert true > 30 and shifted < true - 5, (true, shifted)


def test_lr_consistency_with_the_degradations_own_kernel():
    # The LR made by gvr degrade's blur and resize (no noise, no codec): the HQ itself, downscaled
    # with that clip's kernel, gives the LR back up to float32 rounding; the default area average
    # does not know the blur.
    seed, name = 3, "clips/a.mp4"
    shrink = BaseDegradation(sample_base(seed, name, 2), 2, np.random.default_rng(0)).shrink
    own, plain = Consistency(Downscale(seed, name)), Consistency()
    for t in range(3):
        hq = moving(t, H, W)
        lr = shrink(hq)
        for c in (own, plain):
            c.add(hq, hq, None, lr)
    own_psnr, plain_psnr = own.result([], set())[0]["lr_psnr"], plain.result([], set())[0]["lr_psnr"]
    assert own_psnr > 60 and own_psnr > plain_psnr + 10, (own_psnr, plain_psnr)


def test_low_pass_is_the_mean_of_4x4_blocks():
    x = np.arange(8 * 8 * 3, dtype=np.float32).reshape(8, 8, 3)
    assert low_pass(x).shape == (2, 2, 3)
    assert np.allclose(low_pass(x)[0, 0], x[:4, :4].mean(axis=(0, 1)))


def test_a_planted_tile_seam_is_found_where_the_tiles_meet():
    # The error steps by 6 code values at column 48 (as if the right tile came out brighter): the
    # low-passed error changes by 6 code values there, against a median of the clean error's
    # changes (held at JUMP_FLOOR = 0.1): a ratio near 60. A seam at column 72, where the clean
    # error is flat background, reads well under 2.
    def seamed(t, out, up):
        out = out.copy()
        out[:, 48:] += 6 / 255
        return out

    for cols, expect_high in (([48], True), ([72], False)):
        c = Consistency(seams=Seams.of([], cols, (0, 4), H, W))
        for t, (ref, lr, up, out) in enumerate(clip(3)):
            c.add(np.clip(seamed(t, out, up), 0, 1).astype(np.float32), ref, up, lr)
        values, series = c.result([], set())
        assert len(series["seam"]) == 3
        if expect_high:
            assert values["seam_jump"] > 20, values
        else:
            assert values["seam_jump"] < 2, values
    assert "seam" not in score(frames=2).result([], set())[1]  # no tiles: no seam series
    assert Seams.of([32], [0, 48, 96], (2, 4), 64, 96) == Seams((range(32, 35),), (range(48, 53),))
