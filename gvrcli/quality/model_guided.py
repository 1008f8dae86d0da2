"""The model-guided degradation's seam: SDEdit through the user's base video model.

The paper's second degradation runs the LR clip through the *base* generator the VSR model will
follow: encode it to the base model's latent, noise it to strength alpha (0.3-0.4), denoise it with
the base model, decode. The result carries that generator's own artefacts, which no hand-made
degradation reproduces; so gvr does not imitate it. It needs your base model: implement
``BaseDenoiser`` around it and pass it as ``DegradeOptions(model_guided=...)`` (library only; the
CLI has no base model to load). The stage runs last, after the base and flow-based stages, on
chunks of ``chunk_frames`` frames, with alpha drawn per clip from its own seeded stream.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

ALPHA_RANGE = (0.3, 0.4)  # the paper's SDEdit strength


class BaseDenoiser(Protocol):
    """Your base video model, wrapped for SDEdit."""

    chunk_frames: int  # frames per call (the base model's clip length)

    def sdedit(self, frames: np.ndarray, alpha: float, seed: int) -> np.ndarray:
        """(T, h, w, 3) float32 RGB in [0, 1] -> the same shape: noise to ``alpha``, denoise, decode."""
        ...


class ModelGuided:
    """Buffers frames into chunks for a ``BaseDenoiser``; ``push``/``flush`` return finished frames."""

    def __init__(self, denoiser: BaseDenoiser, rng: np.random.Generator):
        self.denoiser = denoiser
        self.alpha = float(rng.uniform(*ALPHA_RANGE))
        self._seed = int(rng.integers(2**31))
        self._chunk: list[np.ndarray] = []
        self._calls = 0

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        self._chunk.append(frame)
        return self.flush() if len(self._chunk) >= self.denoiser.chunk_frames else []

    def flush(self) -> list[np.ndarray]:
        if not self._chunk:
            return []
        frames = np.stack(self._chunk)
        self._chunk = []
        out = self.denoiser.sdedit(frames, self.alpha, self._seed + self._calls)
        self._calls += 1
        if out.shape != frames.shape:
            raise ValueError(f"base denoiser returned shape {out.shape} for input {frames.shape}")
        return [np.clip(f, 0, 1).astype(np.float32) for f in out]
