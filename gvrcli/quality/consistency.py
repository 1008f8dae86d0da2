"""Weight-free metrics of what people look for in upscaled video: does it agree with its input, does
it flicker, does it jump where gvr's chunks meet, did its colours drift. None needs a network's
weights; ``docs/eval-report.md`` defines each with its formula.

Notation, per frame t: O output, R reference, L the LR input, U = bilinear(L) at the output's size,
P(X) the low-pass (the mean of each 4x4 block, ``low_pass``), all RGB in [0, 1].

* **LR consistency** ``lr_psnr``: PSNR (peak 1) of D(O) against L, D the degradation's downscale
  (``Downscale``): what the output says the input was, against the input. It needs no reference.
* **Flicker** ``flicker``: f_t = 255 * mean |(P(O_t) - P(O_t-1)) - (P(B_t) - P(B_t-1))|, B the
  reference (U without one): the frame-to-frame change the output has and its source has not.
  A steady error (a colour cast, a blur) is not flicker; an error that changes is.
* **Boundary jump** ``jump``: f_t over m, the median of f over the frames away from chunk
  boundaries (``boundary_jump``): 1 where a frame changes as much as usual.
* **Seam jump** ``seam``: where gvr cut frames into tiles, the same idea in space: the change of
  the low-passed error E = P(O) - P(B) across each tile seam's blend (the largest block-column to
  block-column, or row to row, mean |E_k - E_k-1| in it) over the median of that change elsewhere.
* **Colour drift** ``delta_e``: mean CIE76 delta-E between Lab(P(O)) and Lab(P(C)), C = U (the
  reference without an LR input), OpenCV's Lab on float RGB (sRGB, D65).

Everything runs on the 16x smaller low-passed frames except the LR consistency's downscale, so the
metrics cost a small part of what the optical flow of the warping error does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from gvrcli.quality.degrade import RESIZE_MODES, blur_kernel, sample_base

LOW_PASS = 4  # output pixels per side averaged: finer than this is detail a x2-x4 model invents
JUMP_FLOOR = 0.1  # code values: a median change below a tenth of an 8-bit step counts as this (nothing visible moves)
SERIES = ("lr_psnr", "flicker", "jump", "seam", "delta_e")


def low_pass(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) -> the mean of each 4x4 block, (h // 4, w // 4, 3) (at least 1x1)."""
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (max(w // LOW_PASS, 1), max(h // LOW_PASS, 1)), interpolation=cv2.INTER_AREA)


def lab(rgb: np.ndarray) -> np.ndarray:
    """float32 RGB in [0, 1] -> CIELAB (L in [0, 100]), OpenCV's conversion (sRGB gamma, D65)."""
    return cv2.cvtColor(np.clip(rgb, 0, 1).astype(np.float32, copy=False), cv2.COLOR_RGB2Lab)


def delta_e(a_lab: np.ndarray, b_lab: np.ndarray) -> float:
    """Mean CIE76 delta-E between two Lab images."""
    d = a_lab - b_lab
    return float(np.mean(np.sqrt(np.einsum("ijk,ijk->ij", d, d)), dtype=np.float64))


def psnr1(mse: float) -> float:
    """PSNR for values in [0, 1] (the same dB as peak 255 on code values)."""
    return math.inf if mse <= 0 else -10.0 * math.log10(mse)


class Downscale:
    """The degradation's downscale, output size -> LR size. Default: the area average (a box
    filter, what an ideal camera integrates). With ``gvr degrade``'s seed and the clip's name, that
    clip's own blur kernel and resize mode (``gvrcli.quality.degrade``), as ``BaseDegradation.shrink``
    applies them; noise and compression are not undone, so they bound the PSNR."""

    def __init__(self, seed: int | None = None, clip: str | None = None):
        self.seed, self.clip = seed, clip

    def __call__(self, hr: np.ndarray, lr_size: tuple[int, int]) -> np.ndarray:
        w, h = lr_size
        if self.seed is None:
            return cv2.resize(hr, (w, h), interpolation=cv2.INTER_AREA)
        scale = round(hr.shape[1] / w)
        if scale not in (2, 4) or hr.shape[1] < w * scale or hr.shape[0] < h * scale:
            raise ValueError(f"output {hr.shape[1]}x{hr.shape[0]} is not x2 or x4 of the LR {w}x{h}: no gvr degrade kernel")
        params = sample_base(self.seed, self.clip or "", scale)
        hr = hr[: h * scale, : w * scale]
        blurred = cv2.filter2D(hr, -1, blur_kernel(params), borderType=cv2.BORDER_REFLECT)
        return cv2.resize(blurred, (w, h), interpolation=RESIZE_MODES[params.resize])


@dataclass(frozen=True)
class Seams:
    """Where tiles meet in the output: for each seam, the rows (columns) from where the next tile
    starts through the end of the blend."""

    rows: tuple[range, ...] = ()
    cols: tuple[range, ...] = ()

    @classmethod
    def of(cls, rows: list[int], cols: list[int], overlap: tuple[int, int], height: int, width: int) -> "Seams":
        def regions(starts, ov, size):
            return tuple(range(s, min(s + ov + 1, size)) for s in sorted(set(starts)) if 0 < s < size)

        return cls(regions(rows, overlap[0], height), regions(cols, overlap[1], width))

    def __bool__(self) -> bool:
        return bool(self.rows or self.cols)


def seam_jump(low_err: np.ndarray, seams: Seams) -> float | None:
    """Mean over seams of (the largest change of the low-passed error across the seam's blend) /
    (the median change across the other block columns or rows, at least ``JUMP_FLOOR``).
    ``low_err`` = P(O) - P(B), in [0, 1]; a seam's output lines map to the 4-pixel blocks holding
    them and the next one (a step inside a block shows on both of its sides)."""
    peaks = []
    for axis, regions in ((1, seams.cols), (0, seams.rows)):
        if not regions:
            continue
        step = np.abs(np.diff(low_err, axis=axis))  # step[k]: between blocks k and k + 1
        change = 255.0 * step.mean(axis=(0, 2) if axis == 1 else (1, 2), dtype=np.float64)
        blocks = [range(max(r.start // LOW_PASS, 1), min((r.stop - 1) // LOW_PASS + 2, len(change) + 1)) for r in regions]
        blocks = [b for b in blocks if len(b)]
        at = {k for b in blocks for k in b}
        rest = [c for k, c in enumerate(change, 1) if k not in at]
        m = max(float(np.median(rest)) if rest else 0.0, JUMP_FLOOR)
        peaks += [max(change[k - 1] for k in b) / m for b in blocks]
    return float(np.mean(peaks)) if peaks else None


@dataclass
class Consistency:
    """Per-frame series of the weight-free metrics; ``add`` one frame at a time, in order."""

    downscale: Downscale = field(default_factory=Downscale)
    seams: Seams = field(default_factory=Seams)
    series: dict[str, list] = field(default_factory=lambda: {k: [] for k in SERIES if k != "jump"})
    _se_lr: float = 0.0
    _lr_frames: int = 0
    _prev: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, out: np.ndarray, ref: np.ndarray | None, up: np.ndarray | None, lr: np.ndarray | None) -> None:
        """(h, w, 3) float RGB in [0, 1]; ``up`` is the bilinear upsample of ``lr`` (both None
        without an LR input). At least one of ``ref`` and ``up`` is given."""
        base_of_change = ref if ref is not None else up
        low_out, low_base = low_pass(out), low_pass(base_of_change)
        flicker = None
        if self._prev is not None:
            change = (low_out - self._prev[0]) - (low_base - self._prev[1])
            flicker = 255.0 * float(np.mean(np.abs(change), dtype=np.float64))
        self._prev = (low_out, low_base)
        self.series["flicker"].append(flicker)
        self.series["seam"].append(seam_jump(low_out - low_base, self.seams) if self.seams else None)
        colour = up if up is not None else ref
        low_colour = low_base if colour is base_of_change else low_pass(colour)
        self.series["delta_e"].append(delta_e(lab(low_out), lab(low_colour)))
        lr_psnr = None
        if lr is not None:
            d = self.downscale(out, (lr.shape[1], lr.shape[0])) - lr
            mse = float(np.mean(d * d, dtype=np.float64))
            self._se_lr += mse
            self._lr_frames += 1
            lr_psnr = psnr1(mse)
        self.series["lr_psnr"].append(lr_psnr)

    def result(self, regions: list[range], cuts: set[int]) -> tuple[dict, dict]:
        """(the file's values, the per-frame series) with the boundary jump over ``regions``."""
        jump, value = boundary_jump(self.series["flicker"], regions, cuts)
        flicker = [f for f in self.series["flicker"] if f is not None]
        seams = [f for f in self.series["seam"] if f is not None]
        values = {
            "lr_psnr": psnr1(self._se_lr / self._lr_frames) if self._lr_frames else None,
            "flicker": float(np.mean(flicker)) if flicker else None,
            "boundary_jump": value,
            "seam_jump": float(np.mean(seams)) if seams else None,
            "delta_e": float(np.mean(self.series["delta_e"])) if self.series["delta_e"] else None,
        }
        series = {**self.series, "jump": jump}
        if not self.seams:
            del series["seam"]  # no tiles: no series to plot
        return values, series


def boundary_jump(flicker: list[float | None], regions: list[range], cuts: set[int]) -> tuple[list, float | None]:
    """Per frame f_t / m, m the median of f away from ``regions`` and hard cuts (at least
    ``JUMP_FLOOR``); and the file's value: the mean over regions of the largest ratio inside each
    (a chunk blend spreads a jump over its overlap), None without regions."""
    inside = {t for r in regions for t in r} | cuts
    elsewhere = [f for t, f in enumerate(flicker) if f is not None and t not in inside]
    if not elsewhere:  # every frame is a boundary: the median of all
        elsewhere = [f for f in flicker if f is not None]
    if not elsewhere:
        return [None] * len(flicker), None
    m = max(float(np.median(elsewhere)), JUMP_FLOOR)
    ratios = [None if f is None else f / m for f in flicker]
    peaks = [max(ratios[t] for t in r if ratios[t] is not None) for r in regions if any(t < len(ratios) and ratios[t] is not None for t in r)]
    return ratios, (float(np.mean(peaks)) if peaks else None)


def chunk_regions(frames: int, starts: list[int], overlap: int, cuts: set[int]) -> list[range]:
    """The frames where chunk k+1 takes over from chunk k: its start through the end of the blend
    (``overlap`` frames, then the first frame it holds alone). A chunk starting at a hard cut or at
    frame 0 follows no other chunk."""
    regions = []
    for s in sorted(set(starts)):
        if s <= 0 or s in cuts or s >= frames:
            continue
        regions.append(range(s, min(s + overlap + 1, frames)))
    return regions
