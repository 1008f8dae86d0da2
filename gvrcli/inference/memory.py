"""Memory planning: the spatial tiles that keep the whole ``gvr`` process within ``--memory-budget``.

The budget is the process's peak resident memory, what a farm's scheduler or an edge box's
kernel sees, not one model call's. Its parts, per file being worked on (``--jobs`` of them at once):

* **resident before the first chunk**: Python, the runtimes, the model's weights — measured
  (``VmRSS``) when the engine is made, after the model is loaded;
* **the chunk's full-frame buffers**: per chunk frame ``HR_FRAME_COPIES`` float32 HR frames (its
  sampler noise in the window, the gathered chunk the sampler integrates in, its blended output),
  plus ``QUEUED_HR_FRAMES`` frames on their way to the encoder. Tiling cannot shrink these;
* **the model's working set for one tile**: its backend's measured fixed part plus its activation
  factor times the tile's HR latent (``ACTIVATION_FIXED_MB`` and ``ACTIVATION_FACTOR`` in
  ``gvrcli.inference.loaded``: the engine's latent buffers, the runtime's activations and its
  allocator's slack), fitted on the built-in tiny and scaled by ``activation_scale`` for a network
  whose tokens are wider or cover fewer input elements (the latent-space tiny: 3x).

Among the grids whose tiles fit, the planner takes the one predicted fastest by the backend's
speed model (``gvrcli.inference.speed``: a fixed cost per call, a per-pixel cost that moves with
the tile's size, and the attention windows' padding), ties going to tiles of whole attention
windows; tiles need not be square, and a frame that fits whole is one tile. Without a speed model
(a GPU) it takes the grid that computes the fewest pixels (tiles overlap, and the overlap is
computed twice). At 720p the fewest-pixels rule cut 23 strips 72 px wide, a third of each strip's
attention tokens padding: 69.8 s against 46.8 s for square tiles (issue 24).
``auto`` (budget 0) gives the model 1 GiB beyond the chunk's own buffers, at most half the RAM: on
the 2-core reference machine, 8 frames 480x270 -> 960x540 stay under 1.5 GiB and 20 frames under
2 GiB on both CPU backends (``benchmarks/bench_cpu.py``), and at 1280x720 -> 2560x1440 (12 frames)
the runs of issue 24 peaked at 2.9-3.2 GiB against an auto budget of ~3.3 GiB. More would buy
little: by the shipped speed table, doubling the model's share at 720p shortens the predicted
model time by under 5% (a smaller working set stays in cache: OpenVINO's step costs 188 ns per
output pixel on whole 960x540 frames, 165 on 960x288 tiles and 150 on 960x144).
A budget that even the smallest tile cannot meet is reported (``MemoryPlan.fits``), not hidden.
"""

from __future__ import annotations

import functools
import math
import os
import resource
import sys
from dataclasses import dataclass

HR_FRAME_COPIES = 3  # float32 HR frames held per chunk frame (see the module docstring)
QUEUED_HR_FRAMES = 10  # frames between the model and the encoder: its queue (8) and the encoder's own
AUTO_MODEL_SHARE_MB = 1024  # what ``auto`` gives the model beyond the chunk's buffers


# dim / (patch^2 x channels) of the built-in tiny default, on which ACTIVATION_FACTOR was fitted:
# the width of the tokens one input element feeds (64 wide, 8x8 patches of 3 channels).
REFERENCE_ACTIVATION = 64 / (8 * 8 * 3)


def activation_scale(manifest) -> float:
    """How much more working set per input element this network needs than the calibration model:
    its activations are tokens x width, and a token covers patch^2 x channels input elements. The
    latent-space tiny (16 channels, 2x2 patches) has 3x the reference's: measured on ONNX Runtime,
    a 20-frame chunk of 90x180 latents took 1966 MiB against 1289 planned with the unscaled factor
    (benchmarks/calibrate_memory.py's model, issue 24). Never below 1: a narrower network is planned
    as the reference is."""
    config = getattr(manifest, "config", None) or {}
    dim, patch, channels = config.get("dim"), config.get("patch"), getattr(manifest, "latent_channels", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (dim, patch, channels)):
        return 1.0
    return max(1.0, dim / (patch * patch * channels) / REFERENCE_ACTIVATION)


def ram_mb() -> float:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError, AttributeError):
        return 16384.0


def resident_mb() -> float:
    """This process's resident memory now (Linux ``VmRSS``); elsewhere its peak so far."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_resident_mb()


def peak_resident_mb() -> float:
    """This process's peak resident memory so far (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


@dataclass(frozen=True)
class MemoryPlan:
    tile: tuple[int, int]  # LR tile (rows, cols); the whole frame when it fits
    grid: tuple[int, int]  # tiles (down, across)
    budget_mb: float  # the process's budget (auto resolved)
    estimate_mb: float  # the planned peak
    fits: bool  # False: even the smallest tile exceeds the budget
    seconds: float | None = None  # predicted model seconds of the chunk (with a speed model)

    def describe(self) -> str:
        tiles = "whole frames" if self.grid == (1, 1) else f"{self.grid[0]}x{self.grid[1]} tiles of {self.tile[1]}x{self.tile[0]}"
        return f"{tiles}, planned peak {self.estimate_mb:.0f} MiB of {self.budget_mb:.0f} MiB"


@dataclass(frozen=True)
class MemoryModel:
    """What one chunk costs, in MiB, for a model of ``channels`` latent channels upscaling x``scale``."""

    scale: float  # output / input per side (any ratio; the engine passes the frame's)
    channels: int
    factor: float  # the backend's activation factor
    fixed_model_mb: float  # and the fixed part of its working set
    baseline_mb: float  # resident before the first chunk
    jobs: int = 1

    def fixed_mb(self, frames: int, h: int, w: int) -> float:
        """The chunk's full-frame buffers, per job."""
        hr_frame = 3 * h * self.scale * w * self.scale * 4 / 2**20
        return (HR_FRAME_COPIES * frames + QUEUED_HR_FRAMES) * hr_frame

    def model_mb(self, frames: int, th: int, tw: int) -> float:
        """One tile's working set in the model."""
        return self.fixed_model_mb + self.factor * self.channels * frames * th * self.scale * tw * self.scale * 4 / 2**20

    def peak_mb(self, frames: int, h: int, w: int, th: int, tw: int) -> float:
        return self.baseline_mb + self.jobs * (self.fixed_mb(frames, h, w) + self.model_mb(frames, th, tw))

    def auto_budget_mb(self, frames: int, h: int, w: int) -> float:
        share = self.baseline_mb + self.jobs * (self.fixed_mb(frames, h, w) + AUTO_MODEL_SHARE_MB)
        return min(share, ram_mb() / 2)


def _side(length: int, pieces: int, overlap: int, multiple: int) -> int:
    """The window that covers ``length`` in ``pieces`` overlapping windows, rounded up to ``multiple``."""
    side = math.ceil((length + (pieces - 1) * overlap) / pieces)
    return min(length, math.ceil(side / multiple) * multiple)


@functools.lru_cache(maxsize=64)  # once per (chunk length, frame size, speed model): chunks repeat
def plan_tiles(
    memory: MemoryModel, frames: int, h: int, w: int, *, budget_mb: float, overlap: int, multiple: int, timing=None
) -> MemoryPlan:
    """The tile grid within ``budget_mb`` (0 = auto) that is predicted fastest by ``timing`` (a
    ``gvrcli.inference.speed.Timing``), or without one the grid that computes the fewest pixels."""
    budget = budget_mb or memory.auto_budget_mb(frames, h, w)
    if timing is not None:
        return _fastest(memory, frames, h, w, budget, overlap, multiple, timing)
    from gvrcli.inference.tiling import window_starts

    smallest = max(multiple, overlap + 1)
    best = None  # (computed pixels, tiles, th, tw)
    fallback = None  # the smallest tile, when none fits
    for ny in range(1, h + 1):
        th = _side(h, ny, overlap, multiple)
        if ny > 1 and th < smallest:
            break
        for nx in range(1, w + 1):
            tw = _side(w, nx, overlap, multiple)
            if nx > 1 and tw < smallest:
                break
            grid = (len(window_starts(h, th, overlap)), len(window_starts(w, tw, overlap)))
            cost = (grid[0] * grid[1] * th * tw, grid[0] * grid[1], th, tw)
            if memory.peak_mb(frames, h, w, th, tw) <= budget:
                if best is None or cost < best:
                    best = cost
                break  # for this many rows, more columns only add overlap
            if fallback is None or th * tw < fallback[2] * fallback[3]:
                fallback = cost
    fits = best is not None
    _, _, th, tw = best if fits else fallback
    grid = (len(window_starts(h, th, overlap)), len(window_starts(w, tw, overlap)))
    return MemoryPlan((th, tw), grid, budget, memory.peak_mb(frames, h, w, th, tw), fits)


def _sides(length: int, overlap: int, multiple: int, scale: float, window: int) -> list[int]:
    """Candidate tile sides along one axis: for each number of pieces, the smallest side rounded
    up to ``multiple`` and to whole attention windows (``window`` HR cells at ``scale``)."""
    smallest = max(multiple, overlap + 1)
    sides = {length}
    for pieces in range(2, length + 1):
        side = _side(length, pieces, overlap, 1)
        if side < smallest:
            break
        aligned = math.ceil(math.ceil(side * scale / window) * window / scale)
        sides.update(s for s in (_side(length, pieces, overlap, multiple), aligned) if smallest <= s <= length)
    return sorted(sides)


def _fastest(memory: MemoryModel, frames: int, h: int, w: int, budget: float, overlap: int, multiple: int, timing) -> MemoryPlan:
    """Every candidate grid timed; the fastest that fits, ties to the window-aligned tile, then to
    the fewest computed pixels. None fits: the smallest tile, reported as not fitting."""
    from gvrcli.inference.tiling import window_starts

    s = memory.scale
    best = fallback = None  # (seconds, not aligned, computed pixels, th, tw)
    for th in _sides(h, overlap, multiple, s, timing.window[0]):
        ny = len(window_starts(h, th, overlap))
        for tw in _sides(w, overlap, multiple, s, timing.window[1]):
            hr = (round(th * s), round(tw * s))
            tiles = ny * len(window_starts(w, tw, overlap))
            seconds = tiles * timing.tile_seconds(frames, hr)
            key = (round(seconds, 9), not timing.aligned(hr), tiles * th * tw, th, tw)
            if memory.peak_mb(frames, h, w, th, tw) <= budget:
                best = key if best is None or key < best else best
            elif fallback is None or th * tw < fallback[3] * fallback[4]:
                fallback = key
    fits = best is not None
    seconds, _, _, th, tw = best if fits else fallback
    grid = (len(window_starts(h, th, overlap)), len(window_starts(w, tw, overlap)))
    return MemoryPlan((th, tw), grid, budget, memory.peak_mb(frames, h, w, th, tw), fits, seconds)
