"""The upscaling engine: one temporal chunk at a time, cut into spatial tiles that fit the budget.

``Upscaler`` takes a chunk of LR frames and returns its HR frames. Which chunks run, and how
overlapping chunks blend, is ``gvrcli.inference.streaming``; how one clip is integrated step by
step is ``gvrcli.inference.sampler`` (an ``Upscaler`` is a ``Sampler``). Here:

* A frame whose chunk would exceed the memory budget is cut into overlapping spatial tiles, the
  grid the planner predicts fastest (``gvrcli.inference.memory``, ``gvrcli.inference.speed``); the
  first chunk's measured steps correct the speed model once. A ``--tile`` (N x N, or rows x cols:
  the one a ``gvr plan`` froze) is every chunk's tile instead, whatever the budget and the speed. Tiles overlap and blend by ramps
  (``gvrcli.inference.tiling``), and since noise is drawn per frame and cropped
  (``gvrcli.inference.noise``) they compute the same thing where they overlap: no seam.
* A model in a compressing VAE's latent space (a bundle, ``Upscaler.latent``) is fed latents, not
  pixels: then every "frame" here is a latent frame (C, h, w), chunks count latent frames, tiles and
  overlaps are latent cells, and the output is HR latents, which the bundle's VAE decoder turns into
  pixels (``gvrcli.inference.cascade``).
* Any output size (``--size``, ``--scale`` as a float): the condition graph interpolates to it. An
  LR tile [y, y + th) maps to the output rows [round(y H / h), round((y + th) H / h)), so at a
  non-integer ratio tiles meet on whole output pixels (each tile's own interpolation grid may sit
  up to half an output pixel off the whole frame's; the ramps blend that away).
* No NaN or Inf leaves: every clip's result is checked; a reduced-precision one is recomputed at
  fp32, and one still non-finite raises ``NonFiniteOutput``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np
from models.codec import get_codec
from models.manifest import CONDITION, STEP

from gvrcli.inference.loaded import ACTIVATION_FACTOR, ACTIVATION_FIXED_MB, LoadedModel
from gvrcli.inference.memory import MemoryModel, MemoryPlan, activation_scale, plan_tiles, resident_mb
from gvrcli.inference.speed import SpeedModel, Timing, predict_file_seconds, table_model, window_of
from gvrcli.errors import GvrError, ModelError
from gvrcli.inference.noise import FrameNoise
from gvrcli.inference.sampler import Sampler
from gvrcli.inference.settings import EngineSettings
from gvrcli.inference.tiling import ramp, window_starts


def speed_backend(model: LoadedModel) -> str:
    """The speed table's name for a loaded model's backend: ort-cpu, openvino (on the CPU), or ""
    (a GPU: no speed model; the planner then computes the fewest pixels)."""
    description = getattr(model, "description", "")
    if description.startswith("onnxruntime CPU"):
        return "ort-cpu"
    if description.startswith("openvino") and description.split(" ", 1)[-1].startswith("CPU"):
        return "openvino"
    return ""


def _finite(z: np.ndarray) -> bool:
    """No NaN or Inf anywhere: one float64 sum (any NaN or Inf makes it non-finite, and float64
    cannot overflow on pixel-range data), without a boolean array the size of the chunk."""
    return math.isfinite(float(z.sum(dtype=np.float64)))


class NonFiniteOutput(Exception):
    """A chunk's output holds NaN or Inf (half-precision overflow, or a broken checkpoint)."""


def to_output(v: int, n: int, N: int) -> int:
    """LR row (or column) ``v`` of ``n`` -> output row of ``N``, rounded: where tiles are cut
    (exact at integer ratios)."""
    return (v * N + n // 2) // n


class Upscaler(Sampler):
    """Upscales chunks of frames with a loaded model: ``(T, h, w, 3)`` [0, 1] -> ``(T, s*h, s*w, 3)``.

    ``on_step(step, steps)``, if set, is called after each sampler step (1-based), and
    ``on_tile(tile, tiles, frames)`` before each tile (1-based; a whole frame is tile 1 of 1) of a
    chunk of ``frames`` frames: the seams for per-step progress (``gvrcli.progress_plan``).

    NaN/Inf guard: every chunk's (tile's) result is checked before any of its frames leave. A
    reduced-precision model's non-finite chunk is computed again by ``fallback()``, the same model
    at fp32 (loaded on first need), with a warning in ``warnings``; a chunk still non-finite, or
    one from an fp32 model, raises ``NonFiniteOutput``, so such frames are never written.
    """

    def __init__(self, model: LoadedModel, settings: EngineSettings, fallback: Callable[[], LoadedModel] | None = None):
        self.model, self.settings, self.fallback = model, settings, fallback
        self.warnings: list[str] = []  # this file's (the pipeline clears it per file)
        m = model.manifest
        self.manifest, self.scale = m, m.scale
        self.codec = get_codec(m.codec)
        # Latent mode: the caller encodes and decodes with the bundle's VAE graphs; chunks and tiles
        # below are then cut in latent frames and cells, so no cut splits a VAE cell.
        self.latent = self.codec.spatial_factor != 1 or self.codec.temporal_factor != 1
        if self.latent and not m.has_vae:
            raise ModelError(
                f"the model works in the {m.codec} VAE's latent space but carries no VAE graphs; "
                "export it as a bundle with gvr export --vae VAE.safetensors --out BUNDLE/ and run --model BUNDLE/"
            )
        if not m.dynamic:
            raise ModelError("static-shape models are not supported by the batch runtime; export with --dynamic")
        super().__init__(settings, self.codec, self.latent)
        self.noise = FrameNoise(settings.seed, self.codec.channels)
        self.on_tile: Callable[[int, int, int], None] | None = None
        self.plan = None  # the last memory plan (gvrcli.inference.memory), for the file's report
        self.tile_seams: dict | None = None  # output rows/columns where tiles start (``gvr eval``'s seams, via --sidecar)
        # The backend's speed model (gvrcli.inference.speed): the planner picks the fastest grid by
        # it; the first chunk's measured steps correct it once (``on_speed`` is told, to keep it).
        self.speed: SpeedModel | None = table_model(speed_backend(model))
        self.on_speed: Callable[[SpeedModel], None] | None = None
        self._speed_measured = False
        # Measured now, after the model's load: what the process holds before its first chunk.
        factor = getattr(model, "activation_factor", max(ACTIVATION_FACTOR.values())) * activation_scale(self.manifest)
        fixed = getattr(model, "activation_fixed_mb", max(ACTIVATION_FIXED_MB.values()))
        self.memory = MemoryModel(self.scale, self.codec.channels, factor, fixed, resident_mb(), settings.jobs)

    def frame_noise(self, index: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(HR noise (C, H, W), LR noise (C, h, w)) for video frame ``index`` of LR size h x w."""
        H, W = self.settings.output_size(height, width)
        return self.noise.frame(FrameNoise.HR, index, H, W), self.noise.frame(FrameNoise.LR, index, height, width)

    def tile_size(self, frames: int, height: int, width: int, area_ratio: float | None = None) -> tuple[int, int]:
        """LR tile (rows, cols): ``--tile`` (N x N or rows x cols, clipped to the frame: no planner,
        the same tile in every chunk), else the grid ``gvrcli.inference.memory`` plans within the
        budget (the whole frame when it fits). A budget no tile can meet is said in the file's
        warnings, and the smallest tile runs. ``area_ratio`` = output pixels per input pixel
        (default: the settings' for this frame; any ratio, not only the model's scale)."""
        s = self.settings
        fixed = s.fixed_tile(height, width)
        if fixed is not None:
            return fixed
        if area_ratio is None:
            H, W = s.output_size(height, width)
            area_ratio = H * W / (height * width)
        plan = self._plan(frames, height, width, area_ratio)
        self.plan = plan
        if not plan.fits:
            note = (
                f"--memory-budget {plan.budget_mb:.0f} MiB is below what a chunk of {frames} frames at "
                f"{width}x{height} needs ({plan.estimate_mb:.0f} MiB with the smallest tiles); "
                "lower --chunk-frames or raise the budget"
            )
            if note not in self.warnings:
                self.warnings.append(note)
        cap = getattr(self.model, "lr_max", None)  # a TensorRT engine's shape profile bounds its clips
        return plan.tile if cap is None else (min(plan.tile[0], cap[0]), min(plan.tile[1], cap[1]))

    def _plan(self, frames: int, height: int, width: int, area_ratio: float) -> MemoryPlan:
        s = self.settings
        return plan_tiles(
            dataclasses.replace(self.memory, scale=math.sqrt(area_ratio)), frames, height, width,
            budget_mb=s.memory_budget_mb, overlap=s.tile_overlap, multiple=self.manifest.spatial_multiple, timing=self.timing(),
        )

    def timing(self) -> Timing | None:
        """What the planner times tiles with: the speed model, the calls per tile (steps, twice under
        guidance), the attention window and temporal unit; None without a speed model (a GPU)."""
        if self.speed is None:
            return None
        m = self.manifest
        guided = m.has_text and self.prompt is not None and self.settings.cfg != 1.0
        return Timing(self.speed, self.settings.steps * (2 if guided else 1), window_of(m), m.temporal_unit)

    def predict_seconds(self, frames: int, height: int, width: int) -> float | None:
        """Predicted model seconds of a clip of ``frames`` frames (its chunks, no scene cuts), by the
        speed model as it stands; None without one."""
        timing = self.timing()
        if timing is None:
            return None
        return predict_file_seconds(timing, self.memory, self.settings, frames, height, width, self.manifest.spatial_multiple)

    def _measure_speed(self, frames: int, hr: tuple[int, int], steps: list[float]) -> None:
        """Correct the speed model once, from the first chunk's sampler steps (the median: a tile's
        first call pays warm-ups) on its tile shape; later plans and predictions use it."""
        if self.speed is None or self._speed_measured or not steps:
            return
        self._speed_measured = True
        t = self.timing()
        calls = t.steps / self.settings.steps  # step graph calls per sampler step
        measured = sorted(steps)[len(steps) // 2] / calls
        self.speed = self.speed.corrected(measured, frames, hr, t.window, t.unit, "first chunk")
        if self.on_speed is not None:
            self.on_speed(self.speed)

    def prepare(self, frames: int, height: int, width: int) -> None:
        """Compile ahead what the first chunk of a clip runs (``frames`` LR frames of height x
        width; the model's ``prepare``: OpenVINO's per-shape graphs, a second or so each), so the
        compile overlaps decoding instead of stalling the first step. A no-op for runtimes that
        compile no shapes, and harmless when the first chunk turns out otherwise (a scene cut):
        the engine compiles what it meets."""
        prepare = getattr(self.model, "prepare", None)
        if prepare is None or self.latent:
            return
        H, W = self.settings.output_size(height, width)
        th, tw = self.tile_size(frames, height, width, H * W / (height * width))
        hr = (to_output(th, height, H), to_output(tw, width, W))  # the first tile's, as upscale_planar cuts it
        for role, shapes in self._graph_shapes(frames, (th, tw), hr).items():
            prepare(role, shapes)

    def _graph_shapes(self, frames: int, lr: tuple[int, int], hr: tuple[int, int]) -> dict[str, dict[str, tuple]]:
        """role -> input shapes of one tile's graphs, as ``_integrate`` binds them."""
        m, C = self.manifest, self.codec.channels
        z = (1, C, frames, *hr)
        condition = {"lr": (1, C, frames, *lr), "lr_noise": (1, C, frames, *lr), "noise_aug": (1,), "hr_grid": (1, 1, 1, *hr)}
        step = {"z_t": z, "t": (1,), "t_next": (1,), "noise_aug": (1,), **{n: z for n in ("cond", "base") if n in m.inputs}}
        if m.has_text:
            step["text"] = (1, m.text_tokens, int(m.config["dim"]))
        return {CONDITION: condition, STEP: step}

    def upscale_chunk(self, lr: np.ndarray, first_frame: int) -> np.ndarray:
        """``lr`` (T, h, w, 3) float32 in [0, 1], whose first frame is video frame ``first_frame``;
        returns (T, H, W, 3). The one-piece reference the streaming path is tested against."""
        T, h, w, _ = lr.shape
        H, W = self.settings.output_size(h, w)
        hr_noise = self.noise.draw(FrameNoise.HR, first_frame, T, H, W)  # (C, T, H, W)
        lr_noise = self.noise.draw(FrameNoise.LR, first_frame, T, h, w)  # (C, T, h, w)
        frames = self.upscale_planar(np.ascontiguousarray(lr.transpose(3, 0, 1, 2)), lr_noise, hr_noise)
        return np.stack(frames).transpose(0, 2, 3, 1)  # (T, H, W, C)

    def upscale_planar(self, lr: np.ndarray, lr_noise: np.ndarray, hr_noise: np.ndarray) -> list[np.ndarray]:
        """``lr`` (C, T, h, w) in [0, 1] with its noise (C, T, h, w) and (C, T, H, W) -> T planar frames
        (C, H, W). ``hr_noise`` is consumed: the sampler integrates in it, in place.

        Planar is the model's layout; interleaving to RGB is left to the encoder's thread.
        """
        C, T, h, w = lr.shape
        H, W = hr_noise.shape[-2:]
        th, tw = self.tile_size(T, h, w, H * W / (h * w))
        ov = self.settings.tile_overlap
        ys, xs = window_starts(h, th, ov), window_starts(w, tw, ov)
        mark = len(self.step_seconds)
        if len(ys) == 1 and len(xs) == 1:
            self._tile_started(1, 1, T)
            frames = self._sample(lr, lr_noise, hr_noise)
            self._measure_speed(T, (H, W), self.step_seconds[mark:])
            return frames
        out = [np.zeros((C, H, W), dtype=np.float32) for _ in range(T)]
        weight = np.zeros((H, W), dtype=np.float32)
        up_y, up_x = (lambda v: to_output(v, h, H)), (lambda v: to_output(v, w, W))  # noqa: E731
        ov_y, ov_x, dead_y, dead_x = ov * H // h, ov * W // w, -(-H // h), -(-W // w)
        self.tile_seams = {"rows": [up_y(y) for y in ys[1:]], "cols": [up_x(x) for x in xs[1:]], "overlap": [ov_y, ov_x]}
        for i, y in enumerate(ys):
            for j, x in enumerate(xs):
                self._tile_started(i * len(xs) + j + 1, len(ys) * len(xs), T)
                Y, X = slice(up_y(y), up_y(y + th)), slice(up_x(x), up_x(x + tw))
                tile = self._sample(
                    np.ascontiguousarray(lr[:, :, y : y + th, x : x + tw]),
                    np.ascontiguousarray(lr_noise[:, :, y : y + th, x : x + tw]),
                    np.ascontiguousarray(hr_noise[:, :, Y, X]),
                )
                wy = ramp(Y.stop - Y.start, (y > 0) * ov_y, (y + th < h) * ov_y, dead=dead_y)
                wx = ramp(X.stop - X.start, (x > 0) * ov_x, (x + tw < w) * ov_x, dead=dead_x)
                w2 = wy[:, None] * wx[None, :]  # (TH, TW)
                for frame, part in zip(out, tile):
                    part *= w2
                    frame[:, Y, X] += part
                weight[Y, X] += w2
        for frame in out:
            frame /= weight
        self._measure_speed(T, (to_output(th, h, H), to_output(tw, w, W)), self.step_seconds[mark:])
        return out

    def _tile_started(self, tile: int, tiles: int, frames: int) -> None:
        if self.on_tile is not None:
            self.on_tile(tile, tiles, frames)

    def _sample(self, lr: np.ndarray, lr_noise: np.ndarray, z: np.ndarray) -> list[np.ndarray]:
        """One tile through the whole sampler: (C, T, h, w) -> T frames (C, H, W), pixels in [0, 1].

        The condition graph runs once; the step graph (network + Euler update, the same update as
        ``models.rectified_flow.euler_sample``) then runs ``steps`` times between ``z`` (the tile's
        noise, integrated in place) and one reused buffer, both bound to the runtime once. At
        960x540 x 20 frames every fresh temporary is a 124 MB allocation, and on this class of
        machine allocating and faulting it in costs more than the arithmetic. The decoded output is
        made per frame for the same reason (per-frame arrays stay under the allocator's mmap
        threshold and are recycled).
        """
        retry = z.copy() if self.fallback is not None and self.model.precision != "fp32" else None
        z = self._integrate(self.model, lr, lr_noise, z)
        if not _finite(z):
            if retry is None:
                raise NonFiniteOutput(f"the model's {self.model.precision} output holds NaN or Inf (nothing of it was written)")
            try:
                fp32 = self.fallback()
            except GvrError as e:
                raise NonFiniteOutput(
                    f"the model's {self.model.precision} output holds NaN or Inf, and no fp32 model can recompute it ({e})"
                ) from None
            note = f"{self.model.precision} output held NaN or Inf; those chunks were recomputed at fp32"
            if note not in self.warnings:
                self.warnings.append(note)
            z = self._integrate(fp32, lr, lr_noise, retry)
            if not _finite(z):
                raise NonFiniteOutput("the output holds NaN or Inf even at fp32 (nothing of it was written)")
        if self.latent:  # HR latents (C, H, W) per latent frame, out of the reused buffer
            return [z[0, :, k].copy() for k in range(z.shape[2])]
        frames = []
        for k in range(z.shape[2]):
            pixels = self.codec.decode(z[0, :, k])  # (C, H, W)
            frames.append(np.clip(pixels, 0.0, 1.0, out=pixels))
        return frames

