"""``gvr eval`` as a library: score predicted videos against references, file by file and overall.

Predictions are found like ``gvr upscale``'s inputs (files or directories, same walk, globs and
probing) and paired with ``REF_DIR/<relative path>``; when that name is missing, a single file
with the same stem and another video extension stands in (``gvr upscale`` re-containers some
inputs, ``a.avi`` -> ``a.mkv``). Frames are decoded in lockstep and scored one at a time
(``gvrcli.quality.metrics``), so memory does not grow with the clip. With an LR directory, the
bicubic and bilinear upscales of ``LR_DIR/<relative path>`` are scored the same way, as baselines.
Beside PSNR, SSIM and the warping error, the weight-free metrics of ``gvrcli.quality.consistency``
(LR consistency, flicker, boundary and seam jumps, colour drift), per frame and per file; the
chunk and tile boundaries come from the output's ``--sidecar`` record (``gvrcli.quality.provenance``)
or ``chunk_period``. With ``views``, each file's worst frames are kept for the HTML report.

A missing reference, a size or frame-count mismatch, a frame under 12 pixels on a side, an
unreadable file or any error while scoring a pair (OpenCV's, a decoder's) fails that file (exit
1, one ``error:`` line); the others are still scored.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from gvrcli.batch.watchdog import probe_watched
from gvrcli.errors import Cancelled, InputError, UsageError
from gvrcli.farm.discovery import Candidate, find_candidates
from gvrcli.media.decode import VideoDecoder
from gvrcli.media.formats import VIDEO_EXTENSIONS
from gvrcli.media.probe import DEFAULT_MAX_PIXELS, VideoInfo
from gvrcli.stages import DEFAULT_STALL_TIMEOUT
from gvrcli.progress import BatchEvents, SilentEvents
from gvrcli.quality.flow import MEDIUM, Flow, Motion, gray
from gvrcli.quality.consistency import Consistency, Downscale, Seams, chunk_regions
from gvrcli.quality.metrics import ClipMetrics, Reference, WarpOnly, mean_of, per_frame
from gvrcli.quality.provenance import read_sidecar
from gvrcli.quality.worst import WorstFrames
from gvrcli.report import DONE, FAILED, BatchReport, FileResult

BASELINES = {"bicubic": cv2.INTER_CUBIC, "bilinear": cv2.INTER_LINEAR}
MIN_SIDE = 12  # OpenCV's DIS flow fails ("internal error") on smaller frames


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
    chunk_period: int | None = None  # chunk boundaries every N frames (else from the sidecar)
    degrade_seed: int | None = None  # the LR came from ``gvr degrade --seed N``: its kernels for LR consistency
    worst_frames: int = 3  # frames kept per file for the report's side-by-side views


@dataclass
class _Pair:
    candidate: Candidate
    pred: VideoInfo
    ref: VideoInfo
    lr: VideoInfo | None
    clip: str = ""  # the reference's path under REF_DIR: ``gvr degrade``'s name for the clip
    scenes: list[int] = field(default_factory=list)  # shot starts, from the sidecar
    chunks: tuple[list[int], int] | None = None  # (chunk starts, overlap), from the sidecar
    tiles: tuple | None = None  # (tile rows, tile columns, overlap), output pixels, from the sidecar
    made_by: dict = field(default_factory=dict)  # model, options and gvr version, from the sidecar
    warnings: list[str] = field(default_factory=list)


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
    views: dict | None = None,
) -> BatchReport:
    """Score every prediction under ``inputs`` against its reference; the report's files carry
    ``metrics`` (and ``baselines``) and their ``per_frame`` series, its ``extra`` the means over
    files. ``views``, when given a dict, gets each file's worst frames as crops (for the HTML report)."""
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
        result = _score(pair, options, events, cancel, views)
        if result is None:
            break
        result.warnings += pair.warnings
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
    if min(pred.width, pred.height) < MIN_SIDE:
        raise InputError(f"{candidate.source}: {pred.width}x{pred.height} is too small to score (under {MIN_SIDE} pixels on a side: optical flow needs more)")
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
    pair = _Pair(candidate, pred, ref, lr, clip=ref_path.relative_to(options.reference_dir).as_posix())
    sidecar, note = read_sidecar(candidate.source)
    if note:
        pair.warnings.append(note)
    if sidecar is not None:
        pair.scenes, pair.chunks, pair.tiles, pair.made_by = sidecar.scenes, sidecar.chunks, sidecar.tiles, sidecar.made_by
    return pair


def _score(pair: _Pair, options: EvalOptions, events: BatchEvents, cancel: threading.Event, views: dict | None) -> FileResult | None:
    """Decode the pair (and LR) in lockstep and score it; None when cancelled. Any failure of
    this pair (a decoder's, OpenCV's) fails this file alone, with one line."""
    source = pair.candidate.source
    started = time.monotonic()
    progress = events.file_started(source, pair.pred.frames, output="score")
    decoders = []
    try:
        decoders = [VideoDecoder(info) for info in (pair.pred, pair.ref, pair.lr) if info is not None]
        scored = _score_frames(pair, options, [d.frames() for d in decoders], progress, cancel, views)
    except Cancelled:
        return None
    except InputError as e:
        return FileResult(source, None, FAILED, seconds=time.monotonic() - started, reason=str(e))
    except (av.FFmpegError, OSError) as e:
        return FileResult(source, None, FAILED, seconds=time.monotonic() - started, reason=f"{source}: {e}")
    except Exception as e:  # noqa: BLE001 - OpenCV's cv2.error and the like: this pair cannot be scored
        return FileResult(source, None, FAILED, seconds=time.monotonic() - started, reason=f"{source}: cannot score ({type(e).__name__}: {e})")
    finally:
        for d in decoders:
            d.close()
    if scored is None:
        return None
    frames, extra = scored
    return FileResult(source, None, DONE, frames=frames, seconds=time.monotonic() - started, extra=extra)


def _score_frames(pair: _Pair, options: EvalOptions, streams: list, progress, cancel: threading.Event, views: dict | None):
    """The frame loop: (frames, the file's report extra), or None when cancelled."""
    source = pair.candidate.source
    flow = Flow(MEDIUM, min_grid=128)
    scores = {"prediction": ClipMetrics(series=per_frame()), **({b: ClipMetrics() for b in BASELINES} if pair.lr else {})}
    seed = options.degrade_seed
    seams = Seams.of(*pair.tiles, pair.pred.height, pair.pred.width) if pair.tiles else Seams()
    consistency = Consistency(Downscale(seed, pair.clip if seed is not None else None), seams)
    floor = WarpOnly()
    worst = WorstFrames(options.worst_frames) if views is not None else None
    prev_gray = None
    frames = 0
    mark = time.monotonic()
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
        ref_gray, reference = gray(ref), Reference.of(ref)
        motion = Motion(flow(ref_gray, prev_gray)) if prev_gray is not None else None
        prev_gray = ref_gray
        scores["prediction"].add(pred, ref, motion, reference)
        floor.add(ref, motion)
        lr = up = None
        if pair.lr is not None:
            lr, size = got[2].rgb, (ref.shape[1], ref.shape[0])
            for name, interpolation in BASELINES.items():
                scaled = np.clip(cv2.resize(lr, size, interpolation=interpolation), 0, 1)
                scores[name].add(scaled, ref, motion, reference)
                up = scaled if name == "bilinear" else up
        consistency.add(pred, ref, up, lr)
        if worst is not None:
            worst.offer(frames, scores["prediction"].series["psnr_y"][-1], pred, ref, up)
        frames += 1
        now = time.monotonic()
        progress.frames_out(1, seconds=now - mark)  # measured: the ETA follows the frames scored so far
        mark = now
    cuts = {c for c in pair.scenes if c > 0}
    regions = _regions(pair, options, frames, cuts)
    values, series = consistency.result(regions, cuts)
    metrics = {**scores["prediction"].result(), "reference_warp_error": floor.result(), **values}
    extra = {
        "name": pair.candidate.relative.as_posix(),
        "reference": str(pair.ref.path),
        "metrics": rounded(metrics),
        "per_frame": {k: [_round(v) for v in vs] for k, vs in {**scores["prediction"].series, **series}.items()},
        "boundaries": [r.start for r in regions],
        "cuts": sorted(cuts),
        "seams": {"rows": [r.start for r in seams.rows], "cols": [r.start for r in seams.cols]},
    }
    if pair.lr is not None:
        extra["lr"] = str(pair.lr.path)
        extra["baselines"] = {b: rounded(scores[b].result()) for b in BASELINES}
    if pair.made_by:
        extra["made_by"] = pair.made_by
    if views is not None:
        views[str(source)] = worst.views()
    return frames, extra


def _regions(pair: _Pair, options: EvalOptions, frames: int, cuts: set[int]) -> list[range]:
    """Chunk boundaries: ``--chunk-period`` if given, else the sidecar's, else none."""
    if options.chunk_period:
        return chunk_regions(frames, list(range(0, frames, options.chunk_period)), 0, cuts)
    if pair.chunks is not None:
        return chunk_regions(frames, pair.chunks[0], pair.chunks[1], cuts)
    return []


def rounded(metrics: dict) -> dict:
    """Six decimals are plenty (PSNR in dB, SSIM, warping error ~1e-3); inf stays inf (JSON: null)."""
    return {k: _round(v) for k, v in metrics.items()}


def _round(v):
    return round(v, 6) if isinstance(v, float) and math.isfinite(v) else v


# (key, header, format) of the table's metric columns; "-" where a metric does not apply.
COLUMNS = (
    ("psnr_y", "PSNR-Y", ".2f"),
    ("psnr_rgb", "PSNR-RGB", ".2f"),
    ("ssim", "SSIM", ".4f"),
    ("warp_error", "warp err", ".6f"),
    ("reference_warp_error", "(ref)", ".6f"),
    ("lr_psnr", "LR PSNR", ".2f"),
    ("flicker", "flicker", ".3f"),
    ("boundary_jump", "jump", ".2f"),
    ("seam_jump", "seam", ".2f"),
    ("delta_e", "dE", ".2f"),
)


def render_table(report: BatchReport) -> str:
    """The human summary: one row per file (its path under the folder given, whole, never cut)
    and per baseline, then the means."""
    rows: list[tuple[str, dict]] = []
    for f in report.files:
        if f.status != DONE:
            continue
        rows.append((f.extra.get("name", str(f.source)), f.extra["metrics"]))
        rows += [(f"  {name}", m) for name, m in f.extra.get("baselines", {}).items()]
    done = report.count(DONE)
    means = []
    if done:
        means.append((f"mean of {done} file(s)", report.extra.get("metrics", {})))
        means += [(f"  {name}", m) for name, m in report.extra.get("baselines", {}).items()]
    width = max([4, *(len(name) for name, _ in rows + means)])
    widths = [max(len(title), 9) for _, title, _ in COLUMNS]

    def num(m: dict, key: str, fmt: str) -> str:
        v = m.get(key)
        return "-" if v is None else ("inf" if math.isinf(v) else format(v, fmt))

    def line(name: str, cells: list[str]) -> str:
        return " ".join([name.ljust(width), *(c.rjust(w) for c, w in zip(cells, widths))]).rstrip()

    header = line("file", [title for _, title, _ in COLUMNS])
    rule = "-" * len(header)
    lines = [header, rule, *(line(n, [num(m, k, f) for k, _, f in COLUMNS]) for n, m in rows)]
    if means:
        lines += [rule, *(line(n, [num(m, k, f) for k, _, f in COLUMNS]) for n, m in means)]
    return "\n".join(lines)
