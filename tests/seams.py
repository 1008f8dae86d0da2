"""Seam measurements for tiled VAE runs: PSNR overall and in a band around the tile borders, and a
smooth, real-clip-like synthetic clip to measure them on (shared by tests and benchmarks)."""

from __future__ import annotations

import numpy as np


def smooth_clip(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(3, T, H, W) in [0, 1]: a few broad colour gradients and soft blobs drifting slowly, the
    low-frequency content that dominates real footage (no noise: noise has no seams to hide)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = y / height, x / width
    out = np.empty((3, frames, height, width), np.float32)
    blobs = rng.uniform(0, 1, (4, 5))  # cy, cx, radius, per-channel phase, drift
    for t in range(frames):
        for c in range(3):
            v = 0.5 + 0.25 * np.sin(2 * np.pi * (x * (1 + c) * 0.7 + y * 0.9 + 0.02 * t + c / 3))
            for cy, cx, r, ph, dr in blobs:
                d2 = (y - cy - 0.01 * t * dr) ** 2 + (x - cx - 0.01 * t) ** 2
                v += 0.2 * np.cos(2 * np.pi * ph + c) * np.exp(-d2 / (0.02 + 0.05 * r))
            out[c, t] = v
    return np.clip(out, 0, 1)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of values in [0, 1] (``mask``: the (H, W) pixels counted)."""
    d = (a - b) ** 2
    if mask is not None:
        d = d[..., mask]
    mse = float(d.mean())
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def border_band(height: int, width: int, starts_y, starts_x, tile: tuple[int, int], band: int) -> np.ndarray:
    """(H, W) mask of the pixels within ``band`` of a tile's inner edge (tiles of ``tile`` pixels
    at ``starts``): where a seam would show."""
    mask = np.zeros((height, width), bool)
    for starts, size, axis in ((starts_y, tile[0], 0), (starts_x, tile[1], 1)):
        length = mask.shape[axis]
        for s in starts:
            for edge in (s, s + size):
                if 0 < edge < length:
                    sl = slice(max(edge - band, 0), min(edge + band, length))
                    if axis == 0:
                        mask[sl, :] = True
                    else:
                        mask[:, sl] = True
    return mask
