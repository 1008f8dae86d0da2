"""What one run of the engine is asked to do: sampler steps, noise, chunks, tiles, budget, output size.

``EngineSettings`` is a frozen dataclass made once per batch (``from_manifest``: the model's own
defaults, overridden by the options given) and checked there, so that a bad option is one usage
error before any video is opened, not a failure of every file. It also owns the one rule for the
output size of an input (``output_size``: ``--size``, else ``--scale`` rounded to the chroma
subsampling's multiple), on which the engine's tiles and the speed model's predictions agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.manifest import ModelManifest

from gvrcli.errors import UsageError

DEFAULT_MEMORY_BUDGET_MB = 0  # 0 = auto (gvrcli.inference.memory)
# 16 LR pixels of overlap: a ramp 32 px wide at x2 output, wider than the tiny preset's 3x3x3
# upsampler convs reach, so tile edges never show.
DEFAULT_TILE_OVERLAP = 16


@dataclass(frozen=True)
class EngineSettings:
    steps: int
    noise_aug: float
    seed: int = 0
    chunk_frames: int = 20
    chunk_overlap: int = 5
    tile: int | tuple[int, int] = 0  # LR tile: N (N x N pixels) or (rows, cols); 0 = the planner's grid within the budget
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    memory_budget_mb: int = DEFAULT_MEMORY_BUDGET_MB  # the whole process's peak; 0 = auto
    jobs: int = 1  # files worked on at once, each with its own chunk (they share the budget)
    scale: float = 2.0  # output / input, per side (the model's nominal ratio unless asked)
    size: tuple[int, int] | None = None  # (width, height) of every output; overrides scale
    size_multiple: tuple[int, int] = (1, 1)  # a scaled (width, height) is rounded down to these (chroma subsampling)
    cfg: float = 1.0  # classifier-free guidance scale; 1 = none (one step-graph call per step)
    shift: float = 1.0  # SD3 timestep shift of the schedule (the model's)

    @classmethod
    def from_manifest(cls, manifest: ModelManifest, **overrides) -> "EngineSettings":
        """Defaults from the model: its sampler steps and noise level; chunks of four temporal units
        (the paper trains on 20 frames = 4 units of 5) overlapping by one unit, so a frame near a
        chunk seam still sees a whole unit of context on its side."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        unit = manifest.temporal_unit
        settings = cls(
            steps=overrides.pop("steps", manifest.steps),
            noise_aug=overrides.pop("noise_aug", manifest.noise_aug),
            scale=overrides.pop("scale", manifest.scale),
            shift=manifest.shift,
            chunk_frames=overrides.pop("chunk_frames", 4 * unit),
            chunk_overlap=overrides.pop("chunk_overlap", unit),
            **overrides,
        )
        settings.check()
        return settings

    def check(self) -> None:
        if self.steps < 1:
            raise UsageError(f"--steps must be >= 1 (got {self.steps})")
        if not 0.0 <= self.noise_aug <= 1.0:
            raise UsageError(f"--noise-aug must be within [0, 1] (got {self.noise_aug})")
        if self.chunk_frames < 1 or not 0 <= self.chunk_overlap < self.chunk_frames:
            raise UsageError(
                f"chunk of {self.chunk_frames} frames with overlap {self.chunk_overlap}: need 0 <= overlap < chunk"
            )
        shape = tile_shape(self.tile)
        if shape is not None and not 0 <= self.tile_overlap < min(shape):
            given = self.tile if isinstance(self.tile, int) else f"{shape[1]}x{shape[0]}"
            raise UsageError(f"--tile {given}: each side must be larger than the tile overlap {self.tile_overlap}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise UsageError(f"--scale must be a finite number > 0 (got {self.scale})")
        if self.size is not None and min(self.size) < 1:
            raise UsageError(f"--size {self.size[0]}x{self.size[1]}: both sides must be >= 1")
        if not math.isfinite(self.cfg):
            raise UsageError(f"--cfg must be a finite number (got {self.cfg})")

    def fixed_tile(self, height: int, width: int) -> tuple[int, int] | None:
        """The LR tile (rows, cols) ``tile`` fixes for a frame of height x width, clipped to it; None
        when the planner picks it (``tile`` 0)."""
        shape = tile_shape(self.tile)
        return None if shape is None else (min(shape[0], height), min(shape[1], width))

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """(H, W) of the output for an input of ``height`` x ``width``: ``size`` exactly, else each
        side x ``scale`` rounded to the nearest integer, then down to its ``size_multiple`` (an even
        size for 4:2:0 output), at least one multiple."""
        if self.size is not None:
            return self.size[1], self.size[0]
        mw, mh = self.size_multiple
        fit = lambda n, m: max(m, int(n * self.scale + 0.5) // m * m)  # noqa: E731
        return fit(height, mh), fit(width, mw)


def tile_shape(tile) -> tuple[int, int] | None:
    """``--tile`` as the engine takes it: N -> (N, N), (rows, cols) as given; 0 -> None (planned)."""
    if not tile:
        return None
    return (tile, tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))
