"""The flow-based degradation: imitate a base video model's artefacts where things move.

Per frame t (t >= 1), on the LR frames after the base degradation:

1. **Motion.** DIS optical flow from frame t to frame t-1, computed on the clean LR frames (blurred
   and downsampled, before noise and compression, so noise does not read as motion). Pixels whose
   flow magnitude exceeds the clip's threshold form the motion mask (opened to drop specks); its
   edge is feathered *inwards*, so pixels outside it are never changed.
2. **Colour blending.** A few elliptical regions centred on random motion pixels. Each gets one
   colour drawn from a Gaussian fitted to the previous frame's colours under the ellipse (mean and
   standard deviation per channel), blended in with a weight that falls with the (elliptical)
   distance from the centre: ``alpha * (1 - d^2)``, times the motion mask.
3. **Motion blur.** The frame is cut into blocks; a block with enough motion is blurred with a line
   kernel along its mean flow direction whose length is proportional to its mean flow magnitude
   (``length = gain * magnitude``, capped), weighted by the motion mask.

Static regions (flow below the threshold) are left exactly as the base degradation made them.
Parameters are drawn per clip, and the per-frame choices (ellipses) from the clip's own ``flow``
stream.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from gvrcli.quality.flow import FAST, Flow


@dataclass(frozen=True)
class FlowParams:
    threshold: float  # LR pixels per frame above which a pixel is moving
    ellipses: tuple[int, int]  # how many colour-blending ellipses per frame (min, max)
    ellipse_size: tuple[float, float]  # semi-axis range, as a fraction of the frame's shorter side
    alpha: float  # blending weight at an ellipse's centre
    block: int  # motion-blur block size, LR pixels
    gain: float  # blur length per pixel of motion
    max_length: int  # longest blur kernel, LR pixels

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def sample_flow(rng: np.random.Generator) -> FlowParams:
    lo = int(rng.integers(1, 3))
    return FlowParams(
        threshold=float(rng.uniform(0.5, 1.5)),
        ellipses=(lo, lo + int(rng.integers(1, 4))),
        ellipse_size=(0.04, float(rng.uniform(0.08, 0.16))),
        alpha=float(rng.uniform(0.3, 0.7)),
        block=int(rng.choice([8, 16, 32])),
        gain=float(rng.uniform(0.5, 1.5)),
        max_length=15,
    )


class FlowDegradation:
    """Feed it each LR frame with its clean luma, in order; it returns the degraded frame."""

    def __init__(self, params: FlowParams, rng: np.random.Generator):
        self.params, self._rng = params, rng
        self._flow = Flow(FAST)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None  # previous (frame, clean luma)

    def __call__(self, frame: np.ndarray, clean_gray: np.ndarray) -> np.ndarray:
        prev = self._prev
        self._prev = (frame, clean_gray)
        if prev is None:
            return frame
        flow = self._flow(clean_gray, prev[1])
        mask = self._motion_mask(flow)
        if not mask.any():
            return frame
        soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.5) * mask  # feathered inwards only
        out = self._blend_colours(frame, prev[0], mask, soft)
        return self._motion_blur(out, flow, soft)

    def _motion_mask(self, flow: np.ndarray) -> np.ndarray:
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        mask = (magnitude > self.params.threshold).astype(np.uint8)
        return cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)

    def _blend_colours(self, frame, prev, mask, soft) -> np.ndarray:
        p, rng = self.params, self._rng
        h, w = mask.shape
        ys, xs = np.nonzero(mask)
        out = frame.copy()
        for _ in range(int(rng.integers(p.ellipses[0], p.ellipses[1] + 1))):
            i = int(rng.integers(len(ys)))
            cy, cx = ys[i], xs[i]
            a, b = (float(rng.uniform(*p.ellipse_size)) * min(h, w) for _ in range(2))
            a, b = max(a, 1.5), max(b, 1.5)
            theta = float(rng.uniform(0, math.pi))
            r = int(math.ceil(max(a, b)))
            y0, y1, x0, x1 = max(cy - r, 0), min(cy + r + 1, h), max(cx - r, 0), min(cx + r + 1, w)
            yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            dx, dy = xx - cx, yy - cy
            u = (dx * math.cos(theta) + dy * math.sin(theta)) / a
            v = (-dx * math.sin(theta) + dy * math.cos(theta)) / b
            d2 = u * u + v * v
            inside = d2 < 1
            colours = prev[y0:y1, x0:x1][inside]
            colour = rng.normal(colours.mean(axis=0), colours.std(axis=0)).astype(np.float32)
            weight = (p.alpha * np.clip(1 - d2, 0, 1) * soft[y0:y1, x0:x1])[..., None]
            region = out[y0:y1, x0:x1]
            out[y0:y1, x0:x1] = region + weight * (np.clip(colour, 0, 1) - region)
        return out

    def _motion_blur(self, frame, flow, soft) -> np.ndarray:
        """Each block's kernel is a line along its mean flow, ``gain * |flow|`` long (capped),
        applied as the mean of samples along that line (bilinear), weighted by the motion mask."""
        p = self.params
        h, w = soft.shape
        b = p.block
        hb, wb = -(-h // b), -(-w // b)
        pad = ((0, hb * b - h), (0, wb * b - w))

        def block_sum(a: np.ndarray) -> np.ndarray:
            return np.pad(a, pad).reshape(hb, b, wb, b).sum(axis=(1, 3))

        inside = (soft > 0).astype(np.float32)
        count = np.maximum(block_sum(inside), 1)
        moving = block_sum(soft) / block_sum(np.ones_like(soft)) >= 0.1
        vx, vy = (block_sum(flow[..., i] * inside) / count for i in range(2))
        length = np.minimum(p.gain * np.hypot(vx, vy), p.max_length)
        active = moving & (np.round(length) >= 2)
        if not active.any():
            return frame
        scale = np.where(active, length / np.maximum(np.hypot(vx, vy), 1e-6), 0)
        # Per-pixel line vector (piecewise constant over blocks) and weight.
        lx, ly = (np.repeat(np.repeat(v * scale, b, 0), b, 1)[:h, :w].astype(np.float32) for v in (vx, vy))
        weight = (soft * np.repeat(np.repeat(active, b, 0), b, 1)[:h, :w])[..., None]
        # Only the rows and columns of active blocks are resampled.
        rows, cols = np.nonzero(active.any(axis=1))[0], np.nonzero(active.any(axis=0))[0]
        y0, y1, x0, x1 = rows[0] * b, min((rows[-1] + 1) * b, h), cols[0] * b, min((cols[-1] + 1) * b, w)
        gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
        lx, ly = lx[y0:y1, x0:x1], ly[y0:y1, x0:x1]
        # Samples at most 1.5 pixels apart along the longest line (3 to 11 of them).
        taps = int(np.clip(np.ceil(length[active].max() / 1.5) + 1, 3, 11))
        acc = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
        for t in np.linspace(-0.5, 0.5, taps, dtype=np.float32):
            acc += cv2.remap(frame, gx + t * lx, gy + t * ly, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out = frame.copy()
        region = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = region + weight[y0:y1, x0:x1] * (acc * np.float32(1 / taps) - region)
        return out
