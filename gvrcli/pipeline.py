"""One file through decode -> upscale (or any FrameStream) -> encode, three stages overlapped by threads and bounded queues.

Decoding and encoding run in their own threads (FFmpeg releases the GIL, and so does the model
runtime), so the model is rarely idle waiting for either. The queues are small, so memory stays
bounded whatever the video's length. A watchdog bounds every wait: a stage that makes no progress
for ``stall_timeout`` seconds (a decoder hanging on a hostile file) fails the file instead of
hanging the batch; a hung FFmpeg call cannot be killed from Python, so its daemon thread is left
behind and the batch moves on.

Each stage reports what it does into the file's work ledger (``gvrcli.progress_plan``) with the
seconds it took: frames decoded and written here, the sampler's steps through the engine's
``on_tile``/``on_step`` hooks (``SamplerWork``), so progress moves with the work.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from gvrcli.inference.colorfix import color_fix as apply_color_fix
from gvrcli.media.decode import DecodedFrame, VideoDecoder
from gvrcli.media.encode import EncodeSettings, VideoEncoder
from gvrcli.inference.cascade import LatentCascade
from gvrcli.inference.engine import NonFiniteOutput, Upscaler
from gvrcli.inference.streaming import StreamingUpscaler
from gvrcli.inference.text import find_prompt
from gvrcli.errors import Cancelled, InputError, StalledError
from gvrcli.media.probe import VideoInfo
from gvrcli.media.scenes import ShotDetector
from gvrcli.progress_plan import DECODE, SamplerWork, WorkLedger

_END = object()
_CUT = object()  # in the model's queue: the next frame starts a new shot
DEFAULT_STALL_TIMEOUT = 300.0  # seconds without a frame through a stage; far above one chunk's inference
# Progress weights (seconds) until a stage has measured its own: per LR pixel of a decoded frame
# (noise drawn included) and of a frame written, per HR pixel of a frame in a sampler step. Rough
# (a CPU); what matters is that the sampler outweighs the rest, so decoding's burst at the start
# does not run the percentage ahead of the work.
DECODE_PRIOR, ENCODE_PRIOR, MODEL_PRIOR = 1e-7, 1e-7, 2e-7


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


class _Stage(threading.Thread):
    """A daemon thread whose exception is kept for the pipeline to re-raise."""

    def __init__(self, name: str, target: Callable[[], None]):
        super().__init__(name=name, daemon=True)
        self._target_fn, self.error = target, None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:  # handed to the pipeline thread, which reports it
            self.error = e


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
    prompt = find_prompt(info.path, upscaler.manifest, input_tree) if upscaler.manifest.has_text else None
    cascade = LatentCascade(upscaler, vae, keep_latents) if upscaler.latent else None
    shots = ShotDetector(info.rate or 24.0, min_shot=upscaler.manifest.temporal_unit) if scene_cuts and cascade is None else None
    if window is not None:
        from gvrcli.farm.ranges import PlannedShots

        shots, info = PlannedShots(window.cuts), dataclasses.replace(info, frames=window.stop - window.first)
    progress = progress or WorkLedger(info.frames)
    settings = upscaler.settings
    hr_pixels = info.width * info.height * upscaler.scale**2
    sampler = SamplerWork(
        progress, info.frames, settings.chunk_frames, settings.chunk_overlap, settings.steps, cost=MODEL_PRIOR * hr_pixels
    )
    upscaler.on_tile, upscaler.on_step = sampler.on_tile, sampler.on_step
    upscaler.cancel = cancel
    model_before = upscaler.model_seconds
    upscaler.step_seconds.clear()  # this file's sampler steps only
    upscaler.warnings.clear()
    upscaler.tile_seams = None
    upscaler.set_prompt(prompt)
    if prompt is not None and prompt.dropped:
        upscaler.warnings.append(f"prompt of {prompt.dropped + upscaler.manifest.text_tokens} tokens cut to the model's {upscaler.manifest.text_tokens}")
    streaming = cascade or StreamingUpscaler(upscaler)
    pts: dict[int, int | None] = {}
    draw = (lambda frame: None) if cascade else lambda frame: upscaler.frame_noise(frame.index, *frame.rgb.shape[:2])
    if window is not None:
        from gvrcli.farm.ranges import RangeStream

        streaming = RangeStream(streaming, window)

        def draw(frame, noise=draw):  # noqa: F811 (the range's frames' timestamps, for the join)
            if window.a <= frame.index < window.b:
                pts[frame.index] = frame.pts
            return noise(frame)
    predicted = upscaler.predict_seconds(info.frames, info.height, info.width) if info.frames and cascade is None else None
    preparing = None
    if info.frames and cascade is None:  # the first chunk's graphs compile while its frames decode
        first = min(info.frames, settings.chunk_frames)
        preparing = threading.Thread(target=_quietly, args=(upscaler.prepare, first, info.height, info.width), name="gvr-prepare", daemon=True)
        preparing.start()
    try:
        frames, warnings = stream_file(
            info,
            partial,
            _Planned(streaming, sampler),
            encode,
            # The frame's sampler noise is drawn in the decode thread, off the model's: at 960x540 it
            # costs as much as decoding, converting and encoding together. (Latent noise is small.)
            prepare=draw,
            queue_frames=upscaler.settings.chunk_frames + 2,
            cancel=cancel,
            progress=progress,
            stall_timeout=stall_timeout,
            post=None if color_fix == "none" else lambda hr, lr: apply_color_fix(hr, lr, color_fix),
            shots=shots,
            frames=(window.first, window.stop, window.seek_pts) if window is not None else (0, None),
            copy_streams=window is None,
        )
    except NonFiniteOutput as e:
        raise InputError(f"{info.path}: {e}") from None
    finally:
        upscaler.on_tile = upscaler.on_step = None
        if preparing is not None:  # never leave a compile running into the next file or the process's exit
            preparing.join()
    warnings += tuple(upscaler.warnings)
    # What the model computed in, and its median sampler step (the step graph alone), per file.
    steps = sorted(upscaler.step_seconds) or [0.0]
    extra = {"precision": upscaler.model.precision, "step_ms": round(1000 * steps[len(steps) // 2], 1)}
    extra["scenes"] = [0, *shots.cuts] if shots is not None else [0]
    if cascade is None:  # where chunks start and how far they blend: ``gvr eval``'s boundary jump
        extra["chunks"] = {"starts": streaming.chunk_starts, "overlap": settings.chunk_overlap}
    if upscaler.tile_seams is not None:
        extra["tiles"] = upscaler.tile_seams
    if upscaler.plan is not None:
        extra["memory"] = upscaler.plan.describe()
    if window is not None:
        extra["pts"] = [pts.get(i) for i in range(window.a, window.b)]
    if predicted is not None:
        extra["plan"] = plan_report(upscaler, info, predicted, upscaler.model_seconds - model_before)
    if cascade is not None:  # the VAE's plan and stage seconds, beside the media's (docs/vae-tiling.md)
        media = {"decode_video_s": round(progress.measured_seconds(DECODE), 3), "encode_video_s": round(progress.measured_seconds(progress.output), 3)}
        extra["vae"] = {**cascade.report(), **media}
    if upscaler.manifest.has_text:
        extra["prompt"] = prompt.source if prompt is not None else None
    if shots is not None and shots.failed:
        warnings += (f"scene-cut detection stopped ({shots.failed}); chunks may span cuts",)
    stats = FileStats(frames, upscaler.model_seconds - model_before, warnings, color_fix, extra)
    if cascade is not None and keep_latents:
        stats.latents, stats.fps = cascade.latents(), float(info.rate) if info.rate else None
    return stats


def plan_report(upscaler: Upscaler, info: VideoInfo, predicted: float, measured: float) -> dict:
    """The file's plan for its JSON event (``docs/planner.md``): backend, tiles, the model seconds
    predicted before the file, predicted again after its first chunk corrected the speed model,
    and measured; ``short`` is the one-line form for the done line."""
    speed, plan = upscaler.speed, upscaler.plan
    tile = list(plan.tile[::-1]) if plan is not None else [min(upscaler.settings.tile, info.width), min(upscaler.settings.tile, info.height)]
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


class FrameStream(Protocol):
    """The middle stage: takes decoded frames in order, hands back finished ones (index, planar
    (3, H, W) float32 in [0, 1]) when it has them. ``StreamingUpscaler`` is one; so is a degrader."""

    done_until: int  # frames handed back so far

    def push(self, rgb: np.ndarray, prepared) -> list[tuple[int, np.ndarray]]: ...
    def finish(self) -> list[tuple[int, np.ndarray]]: ...
    def cut(self) -> list[tuple[int, np.ndarray]]: ...  # the next frame starts a new shot (with ``shots``)


def stream_file(
    info: VideoInfo,
    partial: Path,
    stream: FrameStream,
    encode: EncodeSettings,
    *,
    cancel: threading.Event,
    prepare: Callable[[DecodedFrame], object] = lambda frame: None,
    queue_frames: int = 8,
    progress: WorkLedger | None = None,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    post: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    shots: ShotDetector | None = None,
    frames: tuple[int, int | None] = (0, None),
    copy_streams: bool = True,
) -> tuple[int, tuple[str, ...]]:
    """Decode ``info.path``, pass its frames through ``stream`` (``prepare(frame)`` runs in the
    decode thread and its result goes to ``push``), encode what comes out into ``partial``.
    ``post(out, frame_in)`` runs in the encode thread on each output frame with its input frame
    (held only until its output comes out). With ``shots`` the decode thread runs the shot detector
    and holds ``shots.lookahead`` frames back, so a cut is known before its frame reaches
    ``stream``, which is told with ``cut()``. ``progress`` is told of each frame decoded and
    written, with the seconds each took (its weight). ``frames`` = (first, stop): only those are
    decoded to RGB and passed on; ``copy_streams`` False writes the video alone (no audio or
    subtitles). Returns (frames written, encoder warnings)."""
    progress = progress or WorkLedger(info.frames)
    progress.plan(DECODE, max(info.frames, 0), cost=DECODE_PRIOR * info.width * info.height)
    progress.plan(progress.output, max(info.frames, 0), cost=ENCODE_PRIOR * info.width * info.height)
    stop = threading.Event()  # tells our stages to quit (failure or cancel)
    window = frames
    frames_in: queue.Queue = queue.Queue(maxsize=queue_frames)
    frames_out: queue.Queue = queue.Queue(maxsize=8)
    decoders: list[VideoDecoder] = []  # opened in the decode thread: opening can hang too
    encoder_box: list[VideoEncoder] = []

    def put(q: queue.Queue, item, consumer: "_Stage | None" = None) -> None:
        """Blocking put. With a ``consumer``, the watchdog applies: a consumer that died or made no
        room for ``stall_timeout`` fails the file. Without one (the decoder feeding the model) the
        wait is plain backpressure: a model may take minutes per chunk."""
        deadline = time.monotonic() + stall_timeout
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                if consumer is None:
                    continue
                _check(consumer)
                if not consumer.is_alive() or time.monotonic() > deadline:
                    raise StalledError(f"{info.path}: encoding stalled (no progress for {stall_timeout:.0f} s)") from None

    def get(q: queue.Queue, producer: "_Stage | None" = None):
        """Blocking get; with a ``producer`` (the decoder), the watchdog applies to it."""
        deadline = time.monotonic() + stall_timeout
        while True:
            if cancel.is_set():
                raise Cancelled()
            try:
                return q.get(timeout=0.2)
            except queue.Empty:
                if stop.is_set():
                    return _END
                if producer is not None and time.monotonic() > deadline:
                    raise StalledError(f"{info.path}: decoding stalled (no progress for {stall_timeout:.0f} s)") from None

    def decode_stage() -> None:
        held: deque = deque()  # frames the shot detector may still find a cut at

        def forward(item) -> None:
            if shots is not None and item[0].index in shots.cuts:
                put(frames_in, _CUT)
            put(frames_in, item)

        try:
            decoders.append(VideoDecoder(info))
            frames = decoders[0].frames(*window) if window != (0, None) else decoders[0].frames()
            while True:
                started = time.perf_counter()
                frame = next(frames, None)
                if frame is None or stop.is_set():
                    break
                item = (frame, prepare(frame))
                if shots is not None:
                    shots.push(frame.rgb)
                progress.advance(DECODE, 1, seconds=time.perf_counter() - started)
                if shots is None:
                    put(frames_in, item)
                    continue
                held.append(item)
                while len(held) > shots.lookahead:
                    forward(held.popleft())
            if stop.is_set():
                return
            if shots is not None:
                shots.finish()
            while held and not stop.is_set():
                forward(held.popleft())
        finally:
            put(frames_in, _END)

    def encode_stage() -> None:
        encoder = None
        while True:
            item = get(frames_out)  # waits on the model: no watchdog here
            if item is _END:
                break
            rgb, pts, frame_in = item  # planar (3, H, W), its timestamp, its input frame (h, w, 3) or None
            started = time.perf_counter()
            if frame_in is not None:
                rgb = post(rgb, frame_in)
            if encoder is None:
                h, w = rgb.shape[1:]
                encoder = VideoEncoder(
                    partial,
                    info.path if copy_streams else None,
                    w,
                    h,
                    decoders[0].time_base,
                    info.rate,
                    decoders[0].tags,
                    encode,
                    high_bit_depth=info.high_bit_depth,
                )
                encoder_box.append(encoder)
            encoder.write(rgb, pts)
            progress.frames_out(1, seconds=time.perf_counter() - started)
        if encoder is not None and not stop.is_set():
            encoder.close()

    decode_thread = _Stage("gvr-decode", decode_stage)
    encode_thread = _Stage("gvr-encode", encode_stage)
    pts_of: dict[int, int | None] = {}
    input_of: dict[int, object] = {}  # input frames awaiting their output, for ``post``
    pushed = 0
    try:
        decode_thread.start()
        encode_thread.start()
        while True:
            item = get(frames_in, producer=decode_thread)
            if item is _CUT:
                ready = stream.cut()
            elif item is _END:
                decode_thread.join(timeout=stall_timeout)  # it is past its last put: its error is being recorded
                _check(decode_thread)
                progress.plan(DECODE, pushed)  # the true count, whatever the probe said
                progress.plan(progress.output, pushed)
                ready = stream.finish()
            else:
                frame, prepared = item
                pts_of[frame.index] = frame.pts
                pushed += 1
                if post is not None:
                    input_of[frame.index] = frame.rgb
                ready = stream.push(frame.rgb, prepared)
            for index, hr in ready:
                put(frames_out, (hr, pts_of.pop(index), input_of.pop(index, None)), consumer=encode_thread)
            if item is _END:
                break
        put(frames_out, _END, consumer=encode_thread)
        deadline = time.monotonic() + stall_timeout
        while encode_thread.is_alive():
            encode_thread.join(timeout=0.2)
            if cancel.is_set():
                raise Cancelled()
            if time.monotonic() > deadline:
                raise StalledError(f"{info.path}: encoding stalled (no progress for {stall_timeout:.0f} s)")
        _check(encode_thread)
        warnings = tuple(encoder_box[0].warnings) if encoder_box else ()
        return stream.done_until, warnings
    except BaseException:
        stop.set()
        # Close the encoder only once its thread has let go of it (FFmpeg objects are not
        # thread-safe); a thread stuck in a write keeps it, and the partial is deleted anyway.
        encode_thread.join(timeout=5)
        if not encode_thread.is_alive():
            for enc in encoder_box:
                enc.abort()
        raise
    finally:
        stop.set()
        decode_thread.join(timeout=2)
        if not decode_thread.is_alive():
            for decoder in decoders:
                decoder.close()


def _check(stage: _Stage) -> None:
    """Re-raise a stage's failure in the pipeline thread (the batch turns it into one line)."""
    if stage.error is not None:
        raise stage.error
