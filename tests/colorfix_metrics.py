"""Shared by the colour-fix tests and ``benchmarks/bench_colorfix.py``: a drifting network, the
"blurred" comparison, and lossless RGB clips.

"Blurred" comparisons put both sides through a Gaussian blur of sigma 2 px (radius 3 sigma,
replicate edges) before the PSNR, so they measure colour and low-frequency tone, not the detail
a generator may legitimately add or a random one scrambles.
"""

from __future__ import annotations

import copy
from pathlib import Path

import av
import numpy as np

from tests.clips import write_video


def gaussian_blur(x: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """(..., H, W) separable Gaussian blur, radius 3 sigma, replicate edges."""
    r = int(3 * sigma)
    k = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma**2))
    k /= k.sum()
    for axis in (-2, -1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        p = np.pad(x, pad, mode="edge")
        n = x.shape[axis]
        x = sum(w * np.take(p, np.arange(i, i + n), axis=axis) for i, w in enumerate(k))
    return x


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of values in [0, 1]."""
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def blurred_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(gaussian_blur(a), gaussian_blur(b))


def channel_stat_errors(out: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Largest per-frame, per-channel |mean| and |std| differences of (T, C, H, W) frames."""
    mean = np.abs(out.mean(axis=(2, 3)) - ref.mean(axis=(2, 3))).max()
    std = np.abs(out.std(axis=(2, 3)) - ref.std(axis=(2, 3))).max()
    return float(mean), float(std)


def drifting_model(fraction: float = 0.1, seed: int = 0, scale: int = 2):
    """The untrained tiny default with every parameter moved ``fraction`` of the way towards
    ``models.checkpoint.init_random_``'s random weights: its output drifts from its input like an
    imperfect generator's (contrast lost, colour shifted) instead of being noise."""
    import models
    import torch
    from models.checkpoint import init_random_

    model = models.build_model("tiny", scale=scale).eval()
    random = init_random_(copy.deepcopy(model), seed=seed)
    with torch.no_grad():
        for p, q in zip(model.parameters(), random.parameters()):
            p.mul_(1 - fraction).add_(fraction * q)
    return model


def decode(path: Path, limit: int | None = None) -> np.ndarray:
    """A video's first ``limit`` frames as (T, H, W, 3) float32 RGB in [0, 1]."""
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(limit or 1 << 30), c.decode(video=0))]
    return np.stack(frames).astype(np.float32) / 255


def write_lossless(frames: np.ndarray, path: Path, fps: int = 24) -> Path:
    """(T, H, W, 3) [0, 1] -> an FFV1 RGB (bgr0) video: decoding gives back the 8-bit values (rounded)."""
    return write_video(path, fps=fps, codec="ffv1", pix_fmt="bgr0", content=np.round(frames * 255).astype(np.uint8))
