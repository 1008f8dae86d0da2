"""``gvr degrade`` as a library: HQ videos -> LQ videos, the paper's training pairs.

Each clip goes base degradation (``degrade``) -> flow-based degradation (``flow_degrade``, unless
``flow=False``) -> the model-guided stage (``model_guided``, only when a base denoiser is given),
streamed through the batch runtime: same discovery, tree mirroring, claims, atomic outputs,
resume, watchdog, events and exit codes as ``gvr upscale`` (``gvrcli.batch``). Blur and
downsampling run in the decode thread; noise, compression and the flow stage in the middle one.

The LQ file is written near-losslessly (H.264 4:4:4 at QP 0: only RGB<->YUV rounding), so the
degradations are what is in it, and not a second round of compression.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gvrcli.batch.options import BatchOptions, check_batch
from gvrcli.batch.planning import Job, plan_batch
from gvrcli.batch.runner import process_batch
from gvrcli.errors import InputError, UsageError
from gvrcli.media.encode import EncodeSettings
from gvrcli.media.formats import OutputCodec
from gvrcli.media.probe import VideoInfo
from gvrcli.pipeline import FileStats
from gvrcli.stages import StreamJob, stream_file
from gvrcli.progress import BatchEvents, SilentEvents
from gvrcli.quality.degrade import (
    X264_DETERMINISTIC,
    BaseDegradation,
    BaseParams,
    Compression,
    lr_size,
    sample_base,
    stage_rng,
)
from gvrcli.quality.flow import gray
from gvrcli.quality.flow_degrade import FlowDegradation, FlowParams, sample_flow
from gvrcli.quality.model_guided import BaseDenoiser, ModelGuided
from gvrcli.report import BatchReport

# Named h264 so outputs keep their input's container under the naming rule (.mp4 stays .mp4).
LQ_CODEC = OutputCodec("h264", "libx264", "yuv444p", "yuv444p", "qp", 0, (("preset", "veryfast"), *X264_DETERMINISTIC.items()))
MIN_LQ_SIDE = 16


@dataclass
class DegradeOptions(BatchOptions):
    """Everything ``gvr degrade`` takes besides the inputs; defaults are the CLI's."""

    scale: int = 2
    seed: int = 0
    flow: bool = True
    model_guided: BaseDenoiser | None = None  # the user's base model for SDEdit (library only)


class ClipDegrader:
    """One clip's stages as a ``FrameStream`` for ``gvrcli.stages.stream_file``."""

    def __init__(self, clip: str, info: VideoInfo, options: DegradeOptions):
        seed, scale = options.seed, options.scale
        self.base_params: BaseParams = sample_base(seed, clip, scale)
        self.base = BaseDegradation(self.base_params, scale, stage_rng(seed, clip, "noise-frames"))
        w, h = lr_size(info.width, info.height, scale)
        self.compression = Compression(self.base_params.crf, w, h, info.rate)
        self.flow_params: FlowParams | None = None
        self.flow = None
        if options.flow:
            rng = stage_rng(seed, clip, "flow")
            self.flow_params = sample_flow(rng)
            self.flow = FlowDegradation(self.flow_params, rng)
        self.guided = None
        if options.model_guided is not None:
            self.guided = ModelGuided(options.model_guided, stage_rng(seed, clip, "model_guided"))
        self._clean: deque[np.ndarray] = deque()  # clean LR luma of frames inside the codec's delay
        self.done_until = 0

    def prepare(self, frame) -> np.ndarray:
        """Decode thread: blur and downsample (no randomness, so no ordering concern)."""
        return self.base.shrink(frame.rgb)

    def push(self, rgb: np.ndarray, lr: np.ndarray) -> list[tuple[int, np.ndarray]]:
        if self.flow is not None:
            self._clean.append(gray(lr))
        return self._after_compression(self.compression.push(self.base.noisy(lr)))

    def finish(self) -> list[tuple[int, np.ndarray]]:
        ready = self._after_compression(self.compression.flush())
        if self.guided is not None:
            ready += self._number(self.guided.flush())
        return ready

    def _after_compression(self, frames: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
        out = []
        for frame in frames:
            if self.flow is not None:
                frame = self.flow(frame, self._clean.popleft())
            out += self.guided.push(frame) if self.guided is not None else [frame]
        return self._number(out)

    def _number(self, frames: list[np.ndarray]) -> list[tuple[int, np.ndarray]]:
        out = []
        for frame in frames:
            out.append((self.done_until, np.ascontiguousarray(frame.transpose(2, 0, 1))))
            self.done_until += 1
        return out

    def report(self, options: DegradeOptions) -> dict:
        return {
            "scale": options.scale,
            "seed": options.seed,
            "params": {
                "base": self.base_params.to_dict(),
                "flow": self.flow_params.to_dict() if self.flow_params else None,
                "model_guided": {"alpha": round(self.guided.alpha, 4)} if self.guided else None,
            },
        }


def degrade(
    inputs: list[Path],
    options: DegradeOptions,
    events: BatchEvents | None = None,
    cancel: threading.Event | None = None,
) -> BatchReport:
    """Degrade every video in ``inputs`` into ``options.output_dir`` (the LQ of each pair)."""
    events = events or SilentEvents()
    cancel = cancel or threading.Event()
    started = time.monotonic()
    inputs = [Path(p) for p in inputs]
    options = check_batch(inputs, options)
    if options.scale not in (2, 4):
        raise UsageError(f"--scale must be 2 or 4 (got {options.scale})")
    if options.codec != LQ_CODEC.name:
        raise UsageError(f"degrade writes {LQ_CODEC.name} (lossless 4:4:4) only, not {options.codec}")
    report = BatchReport()
    jobs = plan_batch(inputs, options, report)
    encode = EncodeSettings(LQ_CODEC, pix_fmt="yuv444p")

    def work(job: Job, info: VideoInfo, partial: Path, progress) -> FileStats:
        w, h = lr_size(info.width, info.height, options.scale)
        if min(w, h) < MIN_LQ_SIDE:
            raise InputError(f"{info.path}: {info.width}x{info.height} is too small for x{options.scale} (LQ under {MIN_LQ_SIDE} pixels)")
        clip = ClipDegrader(job.candidate.relative.as_posix(), info, options)
        frames, warnings = stream_file(
            StreamJob(info, partial, clip, encode, prepare=clip.prepare, cancel=cancel, progress=progress, stall_timeout=options.stall_timeout)
        )
        return FileStats(frames, 0.0, warnings, extra=clip.report(options))

    process_batch(jobs, options, lambda: work, report, events, cancel)
    report.seconds = time.monotonic() - started
    return report
