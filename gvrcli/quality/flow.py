"""Dense optical flow (OpenCV's DIS) and backward warping, shared by the flow-based degradation and
the temporal-consistency metric.

Convention: ``flow(frm, to)[y, x] = (dx, dy)`` says that pixel (x, y) of ``frm`` shows what lies at
(x + dx, y + dy) in ``to``; ``warp(img_to, flow)`` then brings ``to`` onto ``frm``'s grid.
DIS is deterministic for given frames (it is computed per patch, independently of thread count).
"""

from __future__ import annotations

import cv2
import numpy as np

# FAST: enough for motion masks and blur directions (the degradation). MEDIUM: denser patches and
# variational refinement, for measuring (the warping error).
FAST = cv2.DISOPTICAL_FLOW_PRESET_FAST
MEDIUM = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
_PRESET_FINEST = {FAST: 2, MEDIUM: 1}  # OpenCV's finest pyramid level for each preset
MIN_GRID = 64  # pixels on the shorter side of the finest level flow is computed at


def gray(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) RGB, float in [0, 1] or uint8 -> (h, w) uint8 luma, DIS's input."""
    if rgb.dtype != np.uint8:
        rgb = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


class Flow:
    """One DIS instance (it keeps scratch buffers; not shared between threads)."""

    def __init__(self, preset: int = FAST):
        self._preset = preset
        self._dis = cv2.DISOpticalFlow_create(preset)
        self._size: tuple[int, int] | None = None

    def __call__(self, frm: np.ndarray, to: np.ndarray) -> np.ndarray:
        """(h, w) uint8 luma frames -> (h, w, 2) float32 flow from ``frm`` into ``to``."""
        if frm.shape != self._size:
            # The presets stop 2 (FAST) or 1 (MEDIUM) pyramid levels above full size, which on a
            # small LR frame (96x64) is too coarse to see motion at all; stop where the shorter side
            # still has MIN_GRID pixels.
            self._size = frm.shape
            level = int(np.floor(np.log2(max(min(frm.shape) / MIN_GRID, 1))))
            self._dis.setFinestScale(min(level, _PRESET_FINEST[self._preset]))
        return self._dis.calc(frm, to, None)


def warp(img: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``img`` at (x, y) + flow (bilinear). Returns the warped image and the mask of pixels
    whose source lies inside the frame (the rest have nothing to compare)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx, my = gx + flow[..., 0], gy + flow[..., 1]
    warped = cv2.remap(img, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    valid = (mx >= 0) & (mx <= w - 1) & (my >= 0) & (my <= h - 1)
    return warped, valid
