"""The report's side-by-side views: each file's worst frames (lowest PSNR-Y against the reference),
cropped at 1:1 where the error is largest, kept while the clip streams by.

Only ``keep`` frames' crops are held at any time (three 8-bit crops of at most ``CROP`` pixels a
side each), so memory does not grow with the clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from gvrcli.quality.consistency import LOW_PASS, low_pass

CROP = 256  # output pixels a side, shown 1:1


@dataclass
class View:
    frame: int
    psnr_y: float
    box: tuple[int, int, int, int]  # x, y, width, height in the output frame
    crops: dict[str, np.ndarray]  # "input (bilinear)", "output", "reference": (h, w, 3) uint8 RGB


class WorstFrames:
    def __init__(self, keep: int = 3):
        self.keep = keep
        self._views: list[View] = []

    def offer(self, index: int, psnr_y: float, out: np.ndarray, ref: np.ndarray, up: np.ndarray | None) -> None:
        """Frame ``index`` scored ``psnr_y``: kept when it is among the ``keep`` lowest so far."""
        if self.keep <= 0 or not math.isfinite(psnr_y):
            return
        if len(self._views) >= self.keep and psnr_y >= self._views[-1].psnr_y:
            return
        box = _worst_box(out, ref)
        x, y, w, h = box
        images = {"input (bilinear)": up, "output": out, "reference": ref}
        crops = {name: _u8(img[y : y + h, x : x + w]) for name, img in images.items() if img is not None}
        self._views.append(View(index, psnr_y, box, crops))
        self._views.sort(key=lambda v: v.psnr_y)
        del self._views[self.keep :]

    def views(self) -> list[View]:
        return sorted(self._views, key=lambda v: v.frame)


def _u8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def _worst_box(out: np.ndarray, ref: np.ndarray) -> tuple[int, int, int, int]:
    """The CROP x CROP window (or the whole frame, if smaller) with the largest mean error, found
    on the low-passed error map (a box filter of the crop's size over 4x4 block means)."""
    h, w = out.shape[:2]
    cw, ch = min(CROP, w), min(CROP, h)
    err = np.abs(low_pass(out) - low_pass(ref)).sum(axis=2)
    kw, kh = max(cw // LOW_PASS, 1), max(ch // LOW_PASS, 1)
    density = cv2.blur(err, (kw, kh), borderType=cv2.BORDER_CONSTANT)
    cy, cx = np.unravel_index(int(np.argmax(density)), density.shape)
    x = int(np.clip(cx * LOW_PASS + LOW_PASS // 2 - cw // 2, 0, w - cw))
    y = int(np.clip(cy * LOW_PASS + LOW_PASS // 2 - ch // 2, 0, h - ch))
    return x, y, cw, ch
