"""Test scenes for the quality commands: a panning textured background with a faster object, and
the same picture standing still (``content`` functions for ``tests.clips.write_video``)."""

from __future__ import annotations

import numpy as np


def moving(index: int, height: int, width: int, speed: float = 4.0) -> np.ndarray:
    """The background pans ``speed`` pixels per frame, a red ellipse crosses at twice that."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    xs = x + speed * index
    frame = np.stack(
        [0.3 + 0.2 * np.sin(xs / 11), 0.4 + 0.2 * np.cos(y / 9), 0.5 + 0.1 * np.sin((xs + y) / 13)], axis=-1
    )
    cx, cy = 0.2 * width + 2 * speed * index, 0.5 * height
    inside = ((x - cx) / (0.15 * width)) ** 2 + ((y - cy) / (0.15 * height)) ** 2 < 1
    frame[inside] = np.array([0.9, 0.2, 0.1], np.float32) + 0.05 * np.sin(x[inside] / 3)[:, None]
    return np.clip(frame, 0, 1)


def still(index: int, height: int, width: int) -> np.ndarray:
    return moving(0, height, width)
