"""Colour fix: pull a generated HR frame's colour and low-frequency tone back to its LR source.

Diffusion upscalers drift in colour and tone; every generative VSR tool offers a fix back to the
source. Here the reference is the **bilinear upsample of the LR frame** (half-pixel centres, edge
clamp: ``F.interpolate(mode="bilinear", align_corners=False)``, the interpolation of the model's
own condition path), so the output is pulled towards what the network itself was shown.

* ``wavelet`` replaces the output's low-frequency band by the reference's and keeps the output's
  high frequencies. The band is the residue of a 5-level a-trous pyramid of separable
  ``[1, 2, 1] / 4`` blurs (dilations 1, 2, 4, 8, 16; replicate edges), as StableSR, STAR and
  FlashVSR do. The high band of the output telescopes to ``out - low(out)`` and the blur is
  linear, so ``out_high + ref_low = out + low(ref - out)``: one pyramid over the difference.
* ``adain`` matches each channel's mean and standard deviation to the reference's.
* ``lab`` does the same in CIELAB (sRGB transfer, D65), so lightness and the two chroma axes are
  matched separately rather than R, G and B.
* ``none`` leaves the output as the model made it.

Numpy only, one frame at a time, outside the exported graph: every backend gets it, and tiles
and chunks are blended before it runs (it sees whole frames), so it cannot make seams. The
untrained default's output already is the bilinear upsample, which the fix leaves as it is.
"""

from __future__ import annotations

import numpy as np

from gvrcli.errors import UsageError

METHODS = ("wavelet", "adain", "lab", "none")
DEFAULT_COLOR_FIX = "adain"  # measured best on the sample clips (benchmarks/bench_colorfix.py, README)
WAVELET_LEVELS = 5
_EPS = 1e-6


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UsageError(f"--color-fix {method!r}: choose from {', '.join(METHODS)}")
    return method


def _axis_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights along one axis: half-pixel centres, clamped at the edges. The
    ratio is n_in / n_out, as PyTorch computes it for a given output size (at x2 and x4 exactly
    its ``scale_factor`` path)."""
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def bilinear_upsample(lr: np.ndarray, scale: int | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """``lr`` (h, w, C) float in [0, 1] -> planar (C, H, W) float32, (H, W) = ``size`` or ``scale``
    x (h, w); equal to PyTorch's ``F.interpolate(size=(H, W), mode="bilinear", align_corners=False)``."""
    h, w, _ = lr.shape
    H, W = size if size is not None else (h * scale, w * scale)
    planar = np.ascontiguousarray(np.moveaxis(lr, -1, 0), dtype=np.float32)  # (C, h, w)
    y0, y1, fy = _axis_weights(H, h)
    x0, x1, fx = _axis_weights(W, w)
    rows = planar[:, y0]
    rows += (planar[:, y1] - rows) * fy[None, :, None]  # (C, H, w)
    out = rows[:, :, x0]
    out += (rows[:, :, x1] - out) * fx[None, None, :]
    return out


def _blur_axis(x: np.ndarray, axis: int, dilation: int) -> np.ndarray:
    """``[1, 2, 1] / 4`` with taps ``dilation`` apart along ``axis``, replicate edges."""
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (dilation, dilation)
    padded = np.pad(x, pad, mode="edge")
    lo = [slice(None)] * x.ndim
    hi = [slice(None)] * x.ndim
    lo[axis], hi[axis] = slice(0, n), slice(2 * dilation, 2 * dilation + n)
    out = padded[tuple(lo)] + padded[tuple(hi)]
    out *= np.float32(0.25)
    out += np.float32(0.5) * x
    return out


def low_band(x: np.ndarray, levels: int = WAVELET_LEVELS) -> np.ndarray:
    """The low-frequency residue of an a-trous pyramid of ``levels`` blurs of (C, H, W) ``x``."""
    for level in range(levels):
        d = 2**level
        x = _blur_axis(_blur_axis(x, 1, d), 2, d)
    return x


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = x.reshape(x.shape[0], -1)  # float32 reductions along rows are pairwise sums: accurate enough
    return flat.mean(axis=1).astype(np.float64), flat.std(axis=1).astype(np.float64)


def _match_stats(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per channel of (C, H, W) ``x``: ``(x - mean) / std * ref_std + ref_mean``, in place."""
    mean, std = _stats(x)
    ref_mean, ref_std = _stats(ref)
    gain = ref_std / np.maximum(std, _EPS)
    shift = ref_mean - mean * gain
    x *= gain.astype(np.float32)[:, None, None]
    x += shift.astype(np.float32)[:, None, None]
    return x


# sRGB (BT.709 primaries) <-> CIE XYZ, D65 white, and the CIELAB nonlinearity.
_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_WHITE = _RGB_TO_XYZ.sum(axis=1)
_RGB_TO_XYZN = (_RGB_TO_XYZ / _WHITE[:, None]).astype(np.float32)  # XYZ already divided by the white
_XYZN_TO_RGB = np.linalg.inv(_RGB_TO_XYZ / _WHITE[:, None]).astype(np.float32)
_DELTA = 6.0 / 29.0


def _mix(matrix: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.tensordot(matrix, x, axes=(1, 0)).astype(np.float32, copy=False)  # (3, 3) . (3, H, W)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Planar sRGB in [0, 1] -> planar CIELAB float32 (L in [0, 100]). In place where it can:
    at 960x540 every temporary costs about as much as the arithmetic on it."""
    linear = rgb + np.float32(0.055)  # the sRGB transfer, inverted
    linear *= np.float32(1 / 1.055)
    np.power(linear, np.float32(2.4), out=linear)
    np.multiply(rgb, np.float32(1 / 12.92), out=linear, where=rgb <= 0.04045)
    t = _mix(_RGB_TO_XYZN, linear)  # XYZ / white
    f = np.cbrt(t, out=linear)
    small = t <= np.float32(_DELTA**3)
    np.multiply(t, np.float32(1 / (3 * _DELTA**2)), out=f, where=small)
    np.add(f, np.float32(4 / 29), out=f, where=small)
    lab = t  # reuse: L = 116 fy - 16, a = 500 (fx - fy), b = 200 (fy - fz)
    np.subtract(f[0], f[1], out=lab[1])
    lab[1] *= np.float32(500)
    np.subtract(f[1], f[2], out=lab[2])
    lab[2] *= np.float32(200)
    np.multiply(f[1], np.float32(116), out=lab[0])
    lab[0] -= np.float32(16)
    return lab


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Planar CIELAB -> planar sRGB float32 (not clipped); ``lab`` is consumed."""
    f = np.empty_like(lab)
    np.add(lab[0], np.float32(16), out=f[1])
    f[1] *= np.float32(1 / 116)
    np.multiply(lab[1], np.float32(1 / 500), out=f[0])
    f[0] += f[1]
    np.multiply(lab[2], np.float32(-1 / 200), out=f[2])
    f[2] += f[1]
    t = np.power(f, np.float32(3), out=lab)
    small = f <= np.float32(_DELTA)
    np.subtract(f, np.float32(4 / 29), out=t, where=small)
    np.multiply(t, np.float32(3 * _DELTA**2), out=t, where=small)
    linear = _mix(_XYZN_TO_RGB, t)
    np.maximum(linear, 0, out=linear)
    rgb = np.power(linear, np.float32(1 / 2.4), out=f)  # the sRGB transfer
    rgb *= np.float32(1.055)
    rgb -= np.float32(0.055)
    np.multiply(linear, np.float32(12.92), out=rgb, where=linear <= 0.0031308)
    return rgb


def color_fix(hr: np.ndarray, lr: np.ndarray, method: str) -> np.ndarray:
    """Fix planar HR frame ``hr`` (C, H, W) float32 in [0, 1], any size, against LR frame ``lr``
    (h, w, C) [0, 1] upsampled to it; returns a frame of ``hr``'s layout in [0, 1] (``hr`` itself
    may be reused)."""
    if method == "none":
        return hr
    ref = bilinear_upsample(lr, size=hr.shape[1:])
    if method == "wavelet":
        ref -= hr
        hr = hr + low_band(ref)
    elif method == "adain":
        hr = _match_stats(hr, ref)
    elif method == "lab":
        hr = lab_to_rgb(_match_stats(rgb_to_lab(hr), rgb_to_lab(ref)))
    else:
        check_method(method)
    return np.clip(hr, 0.0, 1.0, out=hr)
