"""The sampler's noise, drawn per video frame, so that overlapping chunks and tiles agree.

Noise is drawn per frame from ``(seed, frame index, stream)``, full-frame, then cropped: two chunks
that overlap in time, or two tiles that overlap in space, see exactly the same noise for the same
pixel, so where they overlap they compute the same thing and the ramp blend
(``gvrcli.inference.tiling``) leaves no seam.
"""

from __future__ import annotations

import numpy as np


class FrameNoise:
    """Standard-normal noise for frame ``i``, the same whichever chunk or tile asks for it."""

    HR, LR = 0, 1  # stream ids: the sampler's starting noise and the condition's augmentation noise

    def __init__(self, seed: int, channels: int):
        self.seed, self.channels = seed, channels

    def frame(self, stream: int, index: int, height: int, width: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, index, stream))
        return rng.standard_normal((self.channels, height, width), dtype=np.float32)  # (C, H, W)

    def draw(self, stream: int, first: int, count: int, height: int, width: int) -> np.ndarray:
        """Frames ``first .. first+count-1`` stacked: (C, T, H, W)."""
        return np.stack([self.frame(stream, first + k, height, width) for k in range(count)], axis=1)
