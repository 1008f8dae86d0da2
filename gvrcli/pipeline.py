"""One file's upscale: the model set up around the threaded decode -> model -> encode stages.

``gvrcli.stages.stream_file`` runs the three stages (threads, bounded queues, the watchdog);
this module says what runs in them for ``gvr upscale`` and what the file's report says after, so
the per-file model work (the prompt, a latent cascade or shot detection, a frame range of a plan,
the sampler's progress, the colour fix) reads apart from the thread plumbing.

The sampler's steps are reported into the file's work ledger (``gvrcli.progress_plan``) through
the engine's ``on_tile``/``on_step`` hooks (``SamplerWork``), beside the frames decoded and written,
so progress moves with the work.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from gvrcli.inference.colorfix import color_fix as apply_color_fix
from gvrcli.media.encode import EncodeSettings
from gvrcli.inference.cascade import LatentCascade
from gvrcli.inference.engine import NonFiniteOutput, Upscaler
from gvrcli.inference.streaming import StreamingUpscaler
from gvrcli.inference.text import PromptEmbeds, find_prompt
from gvrcli.errors import InputError
from gvrcli.media.probe import VideoInfo
from gvrcli.media.scenes import ShotDetector
from gvrcli.progress_plan import DECODE, SamplerWork, WorkLedger
from gvrcli.stages import DEFAULT_STALL_TIMEOUT, MODEL_PRIOR, FrameStream, StreamJob, stream_file


@dataclass
class FileStats:
    frames: int = 0
    model_seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    color_fix: str = ""  # the colour fix applied (upscale)
    extra: dict = field(default_factory=dict)  # command-specific facts for the file's report (JSON event)
    sidecar: dict | None = None  # provenance to publish beside the output (``gvrcli.farm.sidecar``)
    latents: np.ndarray | None = None  # HR latents (C, T, h, w) to publish beside it (--save-latents)
    fps: float | None = None  # of those latents


def upscale_file(
    info: VideoInfo,
    partial: Path,
    upscaler: Upscaler,
    encode: EncodeSettings,
    *,
    cancel: threading.Event,
    progress: WorkLedger | None = None,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    color_fix: str = "none",
    scene_cuts: bool = True,
    vae=None,
    keep_latents: bool = False,
    input_tree: Path | None = None,
    window=None,
) -> FileStats:
    """Upscale ``info.path`` into ``partial``. Raises InputError/StalledError/Cancelled; the caller
    removes the partial on any exception.

    ``color_fix`` (``gvrcli.inference.colorfix``) runs on each whole HR frame, after the engine has blended
    its chunks and tiles, in the encode thread (off the model's path); the LR frames it needs are
    held only until their HR frame comes out (at most a chunk's worth).

    ``scene_cuts``: hard cuts are found on the LR frames as they are decoded
    (``gvrcli.media.scenes``) and each starts a new temporal chunk; a shot is at least one temporal
    unit long. The file's ``scenes`` (start frame of each shot) go in its report.

    ``progress`` gets the sampler's work step by step (``SamplerWork``), beside decode and encode.

    A latent-cascade model (``upscaler.latent``) runs through its bundle's ``vae``
    (``gvrcli.inference.cascade``), without shot detection; ``keep_latents`` returns its HR latents.

    A model with a text path takes the prompt embeddings beside the video (``NAME.text.safetensors``,
    ``gvrcli.inference.text``); a bad one fails this file before anything is decoded, and so does one
    that is a link out of ``input_tree`` (the tree the video was found in; None: links followed).

    ``window`` (a ``gvrcli.farm.ranges.Window``): only its frame range, from the plan's chunk grid
    and cuts, into a video-only ``partial``; the frames' timestamps go in ``extra["pts"]``."""
    f = _set_up(info, upscaler, cancel, progress, scene_cuts=scene_cuts, vae=vae, keep_latents=keep_latents, input_tree=input_tree, window=window)
    preparing = _compile_first_chunk(f)
    try:
        frames, warnings = stream_file(
            StreamJob(
                f.info,
                partial,
                _Planned(f.model_stage, f.sampler),
                encode,
                prepare=f.draw,  # in the decode thread: the frame's sampler noise
                queue_frames=upscaler.settings.chunk_frames + 2,
                cancel=cancel,
                progress=f.progress,
                stall_timeout=stall_timeout,
                post=None if color_fix == "none" else lambda hr, lr: apply_color_fix(hr, lr, color_fix),  # in the encode thread
                shots=f.shots,
                frames=(window.first, window.stop, window.seek_pts) if window is not None else (0, None),
                copy_streams=window is None,
            )
        )
    except NonFiniteOutput as e:
        raise InputError(f"{f.info.path}: {e}") from None
    finally:
        upscaler.on_tile = upscaler.on_step = None
        if preparing is not None:  # never leave a compile running into the next file or the process's exit
            preparing.join()
    return _file_stats(f, frames, warnings, color_fix, keep_latents)


@dataclass
class _FileUpscale:
    """One file's upscale as ``_set_up`` leaves it: what the stages run, and what the file's report
    reads after them."""

    info: VideoInfo  # a window's has the range's frame count
    upscaler: Upscaler
    progress: WorkLedger
    prompt: PromptEmbeds | None
    cascade: LatentCascade | None
    shots: ShotDetector | None  # a window's are the plan's cuts (``PlannedShots``)
    sampler: SamplerWork
    model_stage: FrameStream  # the middle stage: the engine's StreamingUpscaler or the cascade (a window's in a RangeStream)
    draw: Callable  # the decode thread's part: the frame's sampler noise (and a window's timestamps)
    pts: dict[int, int | None]  # a window's frames' timestamps, filled by ``draw``
    window: object | None  # a ``gvrcli.farm.ranges.Window``
    model_before: float  # the engine's model seconds before this file
    predicted: float | None  # the model seconds predicted before the file (None: a cascade, or no frame count)


def _set_up(
    info: VideoInfo,
    upscaler: Upscaler,
    cancel: threading.Event,
    progress: WorkLedger | None,
    *,
    scene_cuts: bool,
    vae,
    keep_latents: bool,
    input_tree: Path | None,
    window,
) -> _FileUpscale:
    """Everything before the first frame is decoded, in this order: the prompt (a bad one fails the
    file before the engine is touched), the cascade or the shot detector (a window: the plan's
    cuts), the engine readied for this file, the model stage, the model seconds predicted."""
    prompt = find_prompt(info.path, upscaler.manifest, input_tree) if upscaler.manifest.has_text else None
    cascade = LatentCascade(upscaler, vae, keep_latents) if upscaler.latent else None
    shots = ShotDetector(info.rate or 24.0, min_shot=upscaler.manifest.temporal_unit) if scene_cuts and cascade is None else None
    if window is not None:
        from gvrcli.farm.ranges import PlannedShots

        shots, info = PlannedShots(window.cuts), dataclasses.replace(info, frames=window.stop - window.first)
    progress = progress or WorkLedger(info.frames)
    model_before = upscaler.model_seconds
    sampler = _ready_engine(upscaler, info, progress, cancel, prompt)
    model_stage, draw, pts = _model_stage(upscaler, cascade, window)
    predicted = upscaler.predict_seconds(info.frames, info.height, info.width) if info.frames and cascade is None else None
    return _FileUpscale(info, upscaler, progress, prompt, cascade, shots, sampler, model_stage, draw, pts, window, model_before, predicted)


def _ready_engine(upscaler: Upscaler, info: VideoInfo, progress: WorkLedger, cancel: threading.Event, prompt) -> SamplerWork:
    """The engine's per-file state: its sampler hooks report into this file's progress
    (``SamplerWork``, returned), the file's cancel, its step times, warnings and tile seams
    cleared, and the file's prompt (a warning when it was cut to the model's tokens)."""
    settings = upscaler.settings
    hr_pixels = info.width * info.height * upscaler.scale**2
    sampler = SamplerWork(
        progress, info.frames, settings.chunk_frames, settings.chunk_overlap, settings.steps, cost=MODEL_PRIOR * hr_pixels
    )
    upscaler.on_tile, upscaler.on_step = sampler.on_tile, sampler.on_step
    upscaler.cancel = cancel
    upscaler.step_seconds.clear()  # this file's sampler steps only
    upscaler.warnings.clear()
    upscaler.tile_seams = None
    upscaler.set_prompt(prompt)
    if prompt is not None and prompt.dropped:
        upscaler.warnings.append(f"prompt of {prompt.dropped + upscaler.manifest.text_tokens} tokens cut to the model's {upscaler.manifest.text_tokens}")
    return sampler


def _model_stage(upscaler: Upscaler, cascade: LatentCascade | None, window) -> tuple[FrameStream, Callable, dict]:
    """The middle stage (the engine's ``StreamingUpscaler``, or the cascade; a window's inside a
    ``RangeStream``), what the decode thread draws for each frame, and the timestamps it keeps."""
    streaming = cascade or StreamingUpscaler(upscaler)
    pts: dict[int, int | None] = {}
    # The frame's sampler noise is drawn in the decode thread, off the model's: at 960x540 it
    # costs as much as decoding, converting and encoding together. (Latent noise is small.)
    draw = (lambda frame: None) if cascade else lambda frame: upscaler.frame_noise(frame.index, *frame.rgb.shape[:2])
    if window is not None:
        from gvrcli.farm.ranges import RangeStream

        streaming = RangeStream(streaming, window)

        def draw(frame, noise=draw):  # noqa: F811 (the range's frames' timestamps, for the join)
            if window.a <= frame.index < window.b:
                pts[frame.index] = frame.pts
            return noise(frame)
    return streaming, draw, pts


def _compile_first_chunk(f: _FileUpscale) -> threading.Thread | None:
    """The first chunk's graphs compile while its frames decode (not for a cascade, nor a file of
    unknown length); the caller joins the thread."""
    info, upscaler = f.info, f.upscaler
    if not (info.frames and f.cascade is None):
        return None
    first = min(info.frames, upscaler.settings.chunk_frames)
    preparing = threading.Thread(target=_quietly, args=(upscaler.prepare, first, info.height, info.width), name="gvr-prepare", daemon=True)
    preparing.start()
    return preparing


def _file_stats(f: _FileUpscale, frames: int, warnings: tuple[str, ...], color_fix: str, keep_latents: bool) -> FileStats:
    """The file's report (its JSON event's facts), once its frames are written."""
    upscaler, info, shots, cascade, progress, window = f.upscaler, f.info, f.shots, f.cascade, f.progress, f.window
    warnings += tuple(upscaler.warnings)
    # What the model computed in, and its median sampler step (the step graph alone), per file.
    steps = sorted(upscaler.step_seconds) or [0.0]
    extra = {"precision": upscaler.model.precision, "step_ms": round(1000 * steps[len(steps) // 2], 1)}
    extra["scenes"] = [0, *shots.cuts] if shots is not None else [0]
    if cascade is None:  # where chunks start and how far they blend: ``gvr eval``'s boundary jump
        extra["chunks"] = {"starts": f.model_stage.chunk_starts, "overlap": upscaler.settings.chunk_overlap}
    if upscaler.tile_seams is not None:
        extra["tiles"] = upscaler.tile_seams
    if upscaler.plan is not None:
        extra["memory"] = upscaler.plan.describe()
    if window is not None:
        extra["pts"] = [f.pts.get(i) for i in range(window.a, window.b)]
    if f.predicted is not None:
        extra["plan"] = plan_report(upscaler, info, f.predicted, upscaler.model_seconds - f.model_before)
    if cascade is not None:  # the VAE's plan and stage seconds, beside the media's (docs/vae-tiling.md)
        media = {"decode_video_s": round(progress.measured_seconds(DECODE), 3), "encode_video_s": round(progress.measured_seconds(progress.output), 3)}
        extra["vae"] = {**cascade.report(), **media}
    if upscaler.manifest.has_text:
        extra["prompt"] = f.prompt.source if f.prompt is not None else None
    if shots is not None and shots.failed:
        warnings += (f"scene-cut detection stopped ({shots.failed}); chunks may span cuts",)
    stats = FileStats(frames, upscaler.model_seconds - f.model_before, warnings, color_fix, extra)
    if cascade is not None and keep_latents:
        stats.latents, stats.fps = cascade.latents(), float(info.rate) if info.rate else None
    return stats


def plan_report(upscaler: Upscaler, info: VideoInfo, predicted: float, measured: float) -> dict:
    """The file's plan for its JSON event (``docs/planner.md``): backend, tiles, the model seconds
    predicted before the file, predicted again after its first chunk corrected the speed model,
    and measured; ``short`` is the one-line form for the done line."""
    speed, plan = upscaler.speed, upscaler.plan
    tile = list((plan.tile if plan is not None else upscaler.settings.fixed_tile(info.height, info.width) or (0, 0))[::-1])
    grid = list(plan.grid) if plan is not None else None
    again = upscaler.predict_seconds(info.frames, info.height, info.width)
    report = {
        "backend": speed.backend,
        "tile": tile,  # LR (width, height)
        "grid": grid,  # tiles (down, across)
        "budget_mib": round(plan.budget_mb) if plan is not None else None,  # --memory-budget, auto resolved
        "predicted_s": round(predicted, 2),
        "corrected_s": round(again, 2),
        "measured_s": round(measured, 2),
        "speed_factor": round(speed.scale, 3),
        "speed_source": speed.source,
    }
    if grid is None:
        tiles = f"--tile tiles of {tile[0]}x{tile[1]}"
    else:
        tiles = "whole frames" if grid == [1, 1] else f"{grid[0]}x{grid[1]} tiles of {tile[0]}x{tile[1]}"
    report["short"] = f"{speed.backend} {tiles}, model {measured:.1f} s (predicted {predicted:.1f} s)"
    return report


def _quietly(fn, *args) -> None:
    """Run a best-effort side task: what fails here fails again, reported, where it is needed."""
    try:
        fn(*args)
    except Exception:
        pass


class _Planned:
    """A FrameStream passed through, telling ``SamplerWork`` where the cuts fall and how many frames
    there were, so its plan of chunks follows what the stream will really run."""

    def __init__(self, stream: "FrameStream", sampler: SamplerWork):
        self.stream, self.sampler, self.pushed = stream, sampler, 0

    @property
    def done_until(self) -> int:
        return self.stream.done_until

    def push(self, rgb, prepared):
        self.sampler.pushed(self.pushed)
        self.pushed += 1
        return self.stream.push(rgb, prepared)

    def cut(self):
        self.sampler.cut_at(self.pushed)
        return self.stream.cut()

    def finish(self):
        self.sampler.end_at(self.pushed)
        return self.stream.finish()
