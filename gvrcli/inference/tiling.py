"""Overlapping windows along one axis, and the blend weights that hide their seams.

The same two pieces serve time (temporal chunks) and space (tiles): windows overlap, each
window's output is weighted by a ramp that rises across the overlap, and the weighted outputs
are summed and divided by the summed weights. Wherever two windows agree (a pointwise model, or
a model whose context reaches past the overlap) the blend reproduces the one-piece result.
"""

from __future__ import annotations

import numpy as np


def window_starts(length: int, window: int, overlap: int) -> list[int]:
    """Starts of windows of ``window`` covering ``range(length)``, consecutive ones overlapping by at
    least ``overlap``; the last window is moved back to end at ``length`` (so every window is full-size)."""
    if window >= length:
        return [0]
    step = window - overlap
    if step < 1:
        raise ValueError(f"overlap {overlap} must be smaller than the window {window}")
    starts = list(range(0, length - window, step))
    starts.append(length - window)
    return starts


def ramp(n: int, fade_in: int, fade_out: int, dead: int = 0) -> np.ndarray:
    """Weights for one window of ``n`` samples: 0->1 over the first ``fade_in``, 1->0 over the last ``fade_out``.

    The first/last ``dead`` samples of a fade get (almost) zero weight: a window's outermost
    output pixels are its least trustworthy (an upsampler clamps at the window's edge), so the
    neighbouring window, which sees past that edge, supplies them. Weights stay > 0 (1e-6) so a
    lone window still normalises.
    """
    w = np.ones(n, dtype=np.float32)
    fade_in, fade_out = min(fade_in, n), min(fade_out, n)

    def fade(m: int) -> np.ndarray:
        d = min(dead, m // 2)
        rising = np.clip((np.arange(m, dtype=np.float32) - d + 0.5) / max(m - d, 1), 0.0, 1.0)
        return np.maximum(rising, 1e-6)

    if fade_in:
        w[:fade_in] = np.minimum(w[:fade_in], fade(fade_in))
    if fade_out:
        w[n - fade_out :] = np.minimum(w[n - fade_out :], fade(fade_out)[::-1])
    return w
