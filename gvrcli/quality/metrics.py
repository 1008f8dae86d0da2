"""Video quality metrics, accumulated frame by frame (a clip never has to be in memory).

* **PSNR** on RGB and on Y (BT.601 luma, studio range, the super-resolution convention), peak 255,
  from the clip's mean squared error over all frames. Identical clips give ``inf``.
* **SSIM** (Wang et al. 2004) on Y: Gaussian window sigma 1.5, K1 = 0.01, K2 = 0.03, mean over
  pixels then frames. Identical clips give exactly 1.
* **Warping error** (temporal consistency, Lai et al. 2018): frame t-1 warped onto frame t with the
  *reference's* optical flow (DIS, MEDIUM, finest level >= 128 pixels high), mean squared RGB difference in [0, 1] over the pixels
  whose source lies inside the frame, averaged over frames. Lower is steadier; the reference's own
  value is the floor (it is not 0: flow is imperfect, and occlusions are counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from gvrcli.quality.flow import Motion, warp

_Y = np.array([65.481, 128.553, 24.966], np.float32)  # BT.601 luma (code values) from RGB in [0, 1]
_C1, _C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def luma(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) RGB in [0, 1] -> Y in code values [16, 235], float32."""
    return np.float32(16.0) + rgb.astype(np.float32, copy=False) @ _Y


def psnr(mse: float, peak: float = 255.0) -> float:
    return math.inf if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


def _blur(x: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)


@dataclass(frozen=True)
class Reference:
    """A reference frame's luma and its SSIM moments, computed once for every prediction scored
    against it (the output and, with ``--lr``, two baselines): the same arithmetic, done once."""

    y: np.ndarray
    mu: np.ndarray
    var: np.ndarray

    @classmethod
    def of(cls, rgb: np.ndarray) -> "Reference":
        y = luma(rgb)
        mu = _blur(y)
        return cls(y, mu, _blur(y * y) - mu * mu)


def ssim(a: np.ndarray, b: np.ndarray | Reference) -> float:
    """Mean SSIM of two single-channel images in code values (float32 filtering, float64 mean)."""
    ref = b if isinstance(b, Reference) else Reference(b, _blur(b), None)
    mu_a, mu_b, b = _blur(a), ref.mu, ref.y
    var_a = _blur(a * a) - mu_a * mu_a
    var_b = ref.var if ref.var is not None else _blur(b * b) - mu_b * mu_b
    cov = _blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a * mu_a + mu_b * mu_b + _C1) * (var_a + var_b + _C2)
    return float(np.mean(num / den, dtype=np.float64))


def warp_error(prev: np.ndarray, frame: np.ndarray, flow: np.ndarray | Motion) -> float | None:
    """Mean squared difference between ``frame`` and ``prev`` warped onto it (valid pixels only)."""
    warped, valid = warp(prev, flow)
    n = int(np.count_nonzero(valid))
    if not n:
        return None
    d = frame - warped
    squared = np.einsum("ijk,ijk->ij", d, d)  # per pixel, summed over channels
    return float(np.sum(squared, where=valid, dtype=np.float64)) / (3 * n)


@dataclass
class ClipMetrics:
    """Running sums for one (prediction, reference) clip pair; ``add`` one frame pair at a time."""

    frames: int = 0
    _se_rgb: float = 0.0
    _se_y: float = 0.0
    _pixels: int = 0
    _ssim: float = 0.0
    _warp: list[float] = field(default_factory=list)
    _prev: np.ndarray | None = None
    series: dict[str, list] | None = None  # per-frame values when given {} (``per_frame()``)

    def add(self, pred: np.ndarray, ref: np.ndarray, flow: np.ndarray | Motion | None, reference: Reference | None = None) -> None:
        """One frame: (h, w, 3) float RGB in [0, 1]. ``flow`` maps this frame onto the previous one
        (from the reference); None for the first frame. ``reference``: ``Reference.of(ref)`` when
        the caller has it (it scores several predictions against one reference)."""
        diff = (pred - ref) * np.float32(255)
        se_rgb = float(np.sum(diff * diff, dtype=np.float64)) / 3
        reference = reference or Reference.of(ref)
        ya, yb = luma(pred), reference.y
        dy = ya - yb
        se_y = float(np.sum(dy * dy, dtype=np.float64))
        self._se_rgb += se_rgb
        self._se_y += se_y
        self._pixels += dy.size
        frame_ssim = ssim(ya, reference)
        self._ssim += frame_ssim
        e = None
        if flow is not None and self._prev is not None:
            e = warp_error(self._prev, pred, flow)
            if e is not None:
                self._warp.append(e)
        self._prev = pred
        self.frames += 1
        if self.series is not None:
            for key, value in (("psnr_y", psnr(se_y / dy.size)), ("psnr_rgb", psnr(se_rgb / dy.size)), ("ssim", frame_ssim), ("warp_error", e)):
                self.series[key].append(value)

    def result(self) -> dict:
        if not self.frames:
            return {}
        return {
            "psnr_y": psnr(self._se_y / self._pixels),
            "psnr_rgb": psnr(self._se_rgb / self._pixels),
            "ssim": self._ssim / self.frames,
            "warp_error": float(np.mean(self._warp)) if self._warp else None,
        }


def per_frame() -> dict[str, list]:
    """Empty per-frame series for ``ClipMetrics(series=...)``."""
    return {"psnr_y": [], "psnr_rgb": [], "ssim": [], "warp_error": []}


class WarpOnly:
    """The warping error of one clip alone (the reference's own floor)."""

    def __init__(self):
        self._errors: list[float] = []
        self._prev: np.ndarray | None = None

    def add(self, frame: np.ndarray, flow: np.ndarray | None) -> None:
        if flow is not None and self._prev is not None:
            e = warp_error(self._prev, frame, flow)
            if e is not None:
                self._errors.append(e)
        self._prev = frame

    def result(self) -> float | None:
        return float(np.mean(self._errors)) if self._errors else None


def mean_of(rows: list[dict]) -> dict:
    """Average per-file metrics over files (a file with PSNR inf makes the mean inf)."""
    out = {}
    for key in ("psnr_y", "psnr_rgb", "ssim", "warp_error", "reference_warp_error", "lr_psnr", "flicker", "boundary_jump", "seam_jump", "delta_e"):
        values = [r[key] for r in rows if r.get(key) is not None]
        if values:
            out[key] = float(np.mean(values))
    return out
