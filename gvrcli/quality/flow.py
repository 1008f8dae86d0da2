"""Dense optical flow (OpenCV's DIS) and backward warping, shared by the flow-based degradation and
the temporal-consistency metric.

Convention: ``flow(frm, to)[y, x] = (dx, dy)`` says that pixel (x, y) of ``frm`` shows what lies at
(x + dx, y + dy) in ``to``; ``warp(img_to, flow)`` then brings ``to`` onto ``frm``'s grid.
DIS is deterministic for given frames (it is computed per patch, independently of thread count).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

# FAST: enough for motion masks and blur directions (the degradation). MEDIUM: denser patches and
# variational refinement, for measuring (the warping error).
FAST = cv2.DISOPTICAL_FLOW_PRESET_FAST
MEDIUM = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM


def gray(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) RGB, float in [0, 1] or uint8 -> (h, w) uint8 luma, DIS's input."""
    if rgb.dtype != np.uint8:
        rgb = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


class Flow:
    """One DIS instance (it keeps scratch buffers; not shared between threads)."""

    def __init__(self, preset: int = FAST, min_grid: int = 64):
        self._dis = cv2.DISOpticalFlow_create(preset)
        self._min_grid = min_grid
        self._size: tuple[int, int] | None = None

    def __call__(self, frm: np.ndarray, to: np.ndarray) -> np.ndarray:
        """(h, w) uint8 luma frames -> (h, w, 2) float32 flow from ``frm`` into ``to``."""
        if frm.shape != self._size:
            # The presets stop 2 (FAST) or 1 (MEDIUM) pyramid levels above full size whatever the
            # frame: on a small LR frame (96x64) too coarse to see motion at all, on a large one
            # finer (and slower) than needed. Stop at the level whose shorter side still has
            # ``min_grid`` pixels.
            self._size = frm.shape
            self._dis.setFinestScale(int(np.floor(np.log2(max(min(frm.shape) / self._min_grid, 1)))))
        return self._dis.calc(frm, to, None)


class Motion:
    """A flow field's sampling maps and in-frame mask, computed once for every image warped with
    it (``gvr eval`` warps the output, two baselines and the reference with the same flow)."""

    def __init__(self, flow: np.ndarray):
        h, w = flow.shape[:2]
        gx, gy = _grid(h, w)
        self.mx, self.my = gx + flow[..., 0], gy + flow[..., 1]
        self.valid = (self.mx >= 0) & (self.mx <= w - 1) & (self.my >= 0) & (self.my <= h - 1)

    def warp(self, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        warped = cv2.remap(img, self.mx, self.my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return warped, self.valid


def warp(img: np.ndarray, flow: np.ndarray | Motion) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``img`` at (x, y) + flow (bilinear). Returns the warped image and the mask of pixels
    whose source lies inside the frame (the rest have nothing to compare)."""
    return (flow if isinstance(flow, Motion) else Motion(flow)).warp(img)


@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gx.flags.writeable = gy.flags.writeable = False
    return gx, gy
