"""``gvr warmup``: pay a worker's one-time costs before its first task, with no input.

What a task pays once per machine (or container) and then finds on disk: the CPU backend's speed
probe (``gvrcli.inference.speed``, kept per machine), OpenVINO's compiled graphs (``GVR_OV_CACHE``),
a TensorRT engine (``--trt-cache``). A farm's step environment runs this once per worker session
(``examples/openjd/``), so each range task starts from warm caches instead of compiling. It runs
the real path, ``gvrcli.batch.upscale.upscale``, on a synthetic clip of one chunk at the size the
tasks will see (the plan's input, or ``--input-size``), with one sampler step (the graphs and
their shapes do not depend on the step count), in a temporary folder removed afterwards.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from gvrcli.errors import RetryableError


def warmup(options, width: int, height: int, events=None) -> dict:
    """Load ``options``' model as ``gvr upscale`` would and run one chunk of ``width`` x ``height``
    frames through it; returns what ran (backend, precision, seconds). Raises GvrError like the
    batch (2: bad model or options, 75: retry elsewhere)."""
    from gvrcli.batch.model import engine_settings, find_model
    from gvrcli.batch.upscale import upscale
    from gvrcli.progress import SilentEvents

    events = events or SilentEvents()
    _, manifest = find_model(options, events)
    frames = engine_settings(options, manifest).chunk_frames
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gvr-warmup-") as scratch:
        clip = Path(scratch) / "warmup.mkv"
        _write_clip(clip, frames, width, height)
        run = dataclasses.replace(options, output_dir=Path(scratch) / "out.mkv", codec="ffv1", steps=1, plan=None, sidecar=False, overwrite=True)
        report = upscale([clip], run, events=events)
    if report.fatal:
        raise RetryableError(report.fatal)
    failed = [f.reason for f in report.files if f.status == "failed"]
    if failed:
        raise RetryableError(f"warm-up failed: {failed[0]}")
    return {"backend": report.backend, "precision": report.precision, "frames": frames, "size": [width, height],
            "seconds": round(time.monotonic() - started, 2)}


def _write_clip(path: Path, frames: int, width: int, height: int) -> None:
    """A lossless clip of smooth noise (a flat clip could let a runtime take shortcuts)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        stream.codec_context.time_base = Fraction(1, 24)
        for i in range(frames):
            rgb = (rng.random((height, width, 3)) * 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="bgr0")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
