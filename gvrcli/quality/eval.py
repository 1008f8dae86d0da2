"""``gvr eval`` as a library: score predicted videos against references, file by file and overall.

Predictions are found like ``gvr upscale``'s inputs (files or directories, same walk, globs and
probing) and paired with ``REF_DIR/<relative path>``; when that name is missing, a single file
with the same stem and another video extension stands in (``gvr upscale`` re-containers some
inputs, ``a.avi`` -> ``a.mkv``). Frames are decoded in lockstep and scored one at a time
(``gvrcli.quality.metrics``), so memory does not grow with the clip. With an LR directory, the
bicubic and bilinear upscales of ``LR_DIR/<relative path>`` are scored the same way, as baselines.

A missing reference, a size or frame-count mismatch or an unreadable file fails that file (exit
1, one ``error:`` line); the others are still scored.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from gvrcli.batch import probe_watched
from gvrcli.errors import Cancelled, InputError, UsageError
from gvrcli.farm.discovery import Candidate, find_candidates
from gvrcli.media.decode import VideoDecoder
from gvrcli.media.formats import VIDEO_EXTENSIONS
from gvrcli.media.probe import DEFAULT_MAX_PIXELS, VideoInfo
from gvrcli.pipeline import DEFAULT_STALL_TIMEOUT
from gvrcli.progress import BatchEvents, SilentEvents
from gvrcli.quality.flow import MEDIUM, Flow, gray
from gvrcli.quality.metrics import ClipMetrics, WarpOnly, mean_of
from gvrcli.report import DONE, FAILED, BatchReport, FileResult

BASELINES = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}


@dataclass
class EvalOptions:
    """Everything ``gvr eval`` takes besides the predictions; defaults are the CLI's."""

    reference_dir: Path
    lr_dir: Path | None = None
    recursive: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    stall_timeout: float = DEFAULT_STALL_TIMEOUT


@dataclass
class _Pair:
    candidate: Candidate
    pred: VideoInfo
    ref: VideoInfo
    lr: VideoInfo | None


def find_pair(root: Path, relative: Path) -> Path | None:
    """``root/relative``, else the one video in its folder with the same stem (another extension)."""
    exact = root / relative
    if exact.is_file():
        return exact
    folder = exact.parent
    if not folder.is_dir():
        return None
    same_stem = [
        p
        for p in folder.iterdir()
        if p.stem == relative.stem and p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    ]
    return same_stem[0] if len(same_stem) == 1 else None


def evaluate(
    inputs: list[Path],
    options: EvalOptions,
    events: BatchEvents | None = None,
    cancel: threading.Event | None = None,
) -> BatchReport:
    """Score every prediction under ``inputs`` against its reference; the report's files carry
    ``metrics`` (and ``baselines``), its ``extra`` the means over files."""
    events = events or SilentEvents()
    cancel = cancel or threading.Event()
    started = time.monotonic()
    inputs = [Path(p) for p in inputs]
    if not inputs:
        raise UsageError("no predictions given")
    for name, folder in (("reference", options.reference_dir), ("LR", options.lr_dir)):
        if folder is not None and not Path(folder).is_dir():
            raise UsageError(f"{name} directory {folder} does not exist or is not a directory")
    candidates = find_candidates(
        inputs,
        recursive=options.recursive,
        include=options.include,
        exclude=options.exclude,
        follow_symlinks=options.follow_symlinks,
    )
    report = BatchReport()
    pairs = []
    for candidate in candidates:
        if cancel.is_set():
            break
        try:
            pairs.append(_pair(candidate, options, cancel))
        except Cancelled:
            break
        except _NotAVideo:
            continue
        except InputError as e:
            result = FileResult(candidate.source, None, FAILED, reason=str(e))
            report.files.append(result)
            events.file_finished(result)
    events.plan(len(pairs), sum(p.pred.frames for p in pairs))
    for pair in pairs:
        if cancel.is_set():
            break
        result = _score(pair, events, cancel)
        if result is None:
            break
        report.files.append(result)
        events.file_finished(result)
    done = [f for f in report.files if f.status == DONE]
    report.extra = {"metrics": rounded(mean_of([f.extra["metrics"] for f in done]))}
    if options.lr_dir is not None:
        report.extra["baselines"] = {b: rounded(mean_of([f.extra["baselines"][b] for f in done])) for b in BASELINES}
    report.seconds = time.monotonic() - started
    return report


class _NotAVideo(InputError):
    """A walked file that is not media and has no video extension: silently not an input."""


def _pair(candidate: Candidate, options: EvalOptions, cancel: threading.Event) -> _Pair:
    try:
        pred = probe_watched(candidate.source, options, cancel)
    except InputError as e:
        if not (candidate.explicit or candidate.source.suffix.lower() in VIDEO_EXTENSIONS):
            raise _NotAVideo(str(e)) from None
        raise
    ref_path = find_pair(options.reference_dir, candidate.relative)
    if ref_path is None:
        raise InputError(f"{candidate.source}: no reference {options.reference_dir / candidate.relative}")
    ref = probe_watched(ref_path, options, cancel)
    if (pred.width, pred.height) != (ref.width, ref.height):
        raise InputError(
            f"{candidate.source}: size {pred.width}x{pred.height} differs from the reference's "
            f"{ref.width}x{ref.height} ({ref_path})"
        )
    if pred.frames and ref.frames and pred.frames != ref.frames:
        raise InputError(f"{candidate.source}: {pred.frames} frames, the reference has {ref.frames} ({ref_path})")
    lr = None
    if options.lr_dir is not None:
        lr_path = find_pair(options.lr_dir, candidate.relative)
        if lr_path is None:
            raise InputError(f"{candidate.source}: no LR input {options.lr_dir / candidate.relative}")
        lr = probe_watched(lr_path, options, cancel)
    return _Pair(candidate, pred, ref, lr)


def _score(pair: _Pair, events: BatchEvents, cancel: threading.Event) -> FileResult | None:
    """Decode the pair (and LR) in lockstep and score it; None when cancelled."""
    source = pair.candidate.source
    started = time.monotonic()
    progress = events.file_started(source, pair.pred.frames, output="score")
    flow = Flow(MEDIUM, min_grid=128)
    scores = {"prediction": ClipMetrics(), **({b: ClipMetrics() for b in BASELINES} if pair.lr else {})}
    floor = WarpOnly()
    decoders = [VideoDecoder(info) for info in (pair.pred, pair.ref, pair.lr) if info is not None]
    streams = [d.frames() for d in decoders]
    prev_gray = None
    frames = 0
    try:
        while True:
            if cancel.is_set():
                return None
            got = [next(s, None) for s in streams]
            if all(g is None for g in got):
                break
            if any(g is None for g in got):
                names = ["prediction", "reference", "LR"][: len(got)]
                ended = ", ".join(n for n, g in zip(names, got) if g is None)
                raise InputError(f"{source}: frame count differs: the {ended} ended after {frames} frames, the others go on")
            pred, ref = got[0].rgb, got[1].rgb
            ref_gray = gray(ref)
            motion = flow(ref_gray, prev_gray) if prev_gray is not None else None
            prev_gray = ref_gray
            scores["prediction"].add(pred, ref, motion)
            floor.add(ref, motion)
            if pair.lr is not None:
                size = (ref.shape[1], ref.shape[0])
                for name, interpolation in BASELINES.items():
                    up = np.clip(cv2.resize(got[2].rgb, size, interpolation=interpolation), 0, 1)
                    scores[name].add(up, ref, motion)
            frames += 1
            progress.frames_out(1)
    except InputError as e:
        return FileResult(source, None, FAILED, frames=0, seconds=time.monotonic() - started, reason=str(e))
    except (av.FFmpegError, OSError) as e:
        return FileResult(source, None, FAILED, seconds=time.monotonic() - started, reason=f"{source}: {e}")
    finally:
        for d in decoders:
            d.close()
    metrics = {**scores["prediction"].result(), "reference_warp_error": floor.result()}
    extra = {"reference": str(pair.ref.path), "metrics": rounded(metrics)}
    if pair.lr is not None:
        extra["lr"] = str(pair.lr.path)
        extra["baselines"] = {b: rounded(scores[b].result()) for b in BASELINES}
    return FileResult(source, None, DONE, frames=frames, seconds=time.monotonic() - started, extra=extra)


def rounded(metrics: dict) -> dict:
    """Six decimals are plenty (PSNR in dB, SSIM, warping error ~1e-3); inf stays inf (JSON: null)."""
    return {k: round(v, 6) if isinstance(v, float) and math.isfinite(v) else v for k, v in metrics.items()}


def render_table(report: BatchReport) -> str:
    """The human summary: one row per file (and baseline), then the means."""
    header = f"{'file':<40} {'PSNR-Y':>8} {'PSNR-RGB':>9} {'SSIM':>7} {'warp err':>10} {'(ref)':>10}"
    lines = [header, "-" * len(header)]

    def row(name: str, m: dict, floor=None) -> str:
        def num(key, fmt):
            v = m.get(key)
            return "-" if v is None else ("inf" if math.isinf(v) else format(v, fmt))

        ref = "" if floor is None else format(floor, ".6f")
        return f"{name[-40:]:<40} {num('psnr_y', '.2f'):>8} {num('psnr_rgb', '.2f'):>9} {num('ssim', '.4f'):>7} {num('warp_error', '.6f'):>10} {ref:>10}"

    for f in report.files:
        if f.status != DONE:
            continue
        lines.append(row(str(f.source), f.extra["metrics"], f.extra["metrics"].get("reference_warp_error")))
        for name, m in f.extra.get("baselines", {}).items():
            lines.append(row(f"  {name}", m))
    done = report.count(DONE)
    if done:
        lines.append("-" * len(header))
        overall = report.extra.get("metrics", {})
        lines.append(row(f"mean of {done} file(s)", overall, overall.get("reference_warp_error")))
        for name, m in report.extra.get("baselines", {}).items():
            lines.append(row(f"  {name}", m))
    return "\n".join(lines)
