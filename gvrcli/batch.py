"""The batch runtime as a library: ``upscale(inputs, options)`` does the work and returns a report.

Order of work, chosen so a bad run fails before touching anything: options and output directory
are checked, the model is found, its manifest read and the backend loaded (exit 2 / 75), and only
then are inputs walked, sharded, probed and processed. Each input is claimed (``gvrcli.farm.claims``),
skipped if its output already exists, written to a partial and renamed (``gvrcli.farm.atomic``).
One input failing never stops the others.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av

from gvrcli.inference.colorfix import DEFAULT_COLOR_FIX, check_method
from gvrcli.farm import atomic
from gvrcli.inference.backends import check_model, make_backend
from gvrcli.farm.claims import ClaimBoard
from gvrcli.farm.discovery import Candidate, check_output_dir, find_candidates
from gvrcli.media.encode import EncodeSettings
from gvrcli.inference.engine import DEFAULT_MEMORY_BUDGET_MB, DEFAULT_TILE_OVERLAP, EngineSettings, Upscaler
from gvrcli.errors import Cancelled, GvrError, InputError, RetryableError, StalledError, UsageError
from gvrcli.media.formats import VIDEO_EXTENSIONS, get_codec, output_relative_path
from gvrcli.inference.modelfile import read_manifest, resolve_default_model
from gvrcli.pipeline import DEFAULT_STALL_TIMEOUT, FileStats, upscale_file
from gvrcli.media.probe import DEFAULT_MAX_PIXELS, VideoInfo, probe_video
from gvrcli.progress import BatchEvents, SilentEvents
from gvrcli.report import DONE, FAILED, SKIPPED, BatchReport, FileResult
from gvrcli.farm.shard import Shard


@dataclass
class BatchOptions:
    """What every batch command (``upscale``, ``degrade``) takes besides its inputs: which files,
    where they go, rerun and farm behaviour. Defaults are the CLI's."""

    output_dir: Path
    recursive: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False
    codec: str = "h264"  # the output codec: with the input's name, it fixes the output's name
    overwrite: bool = False
    shard: Shard | None = None
    jobs: int = 1
    dry_run: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    stall_timeout: float = DEFAULT_STALL_TIMEOUT


@dataclass
class UpscaleOptions(BatchOptions):
    """Everything ``gvr upscale`` takes besides the inputs; defaults are the CLI's."""

    model: Path | None = None  # None = the built-in default for ``scale``
    backend: str = "auto"
    device: str = "AUTO"
    precision: str | None = None  # fp32 | bf16 | fp16 | int8; None = the model's (fp32 for every fp32 export)
    scale: int | None = None  # None = the model's (the default model: 2)
    steps: int | None = None
    noise_aug: float | None = None
    seed: int = 0
    crf: int | None = None
    pix_fmt: str | None = None
    threads: int = 0
    tile: int = 0
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    chunk_frames: int | None = None
    chunk_overlap: int | None = None
    memory_budget_mb: int = DEFAULT_MEMORY_BUDGET_MB
    color_fix: str = DEFAULT_COLOR_FIX  # gvrcli.inference.colorfix.METHODS


@dataclass(frozen=True)
class Job:
    candidate: Candidate
    output: Path


# One input's work: (job, probed info, partial path to write, frames-done callback) -> FileStats.
# Raises GvrError (that file fails), Cancelled or RetryableError (the batch stops).
Work = Callable[[Job, VideoInfo, Path, Callable[[int], None]], FileStats]


def plan_jobs(inputs: list[Path], options: BatchOptions) -> list[Job]:
    """Inputs -> (input, output) pairs for this worker's shard, without opening any file."""
    codec = get_codec(options.codec)
    candidates = find_candidates(
        inputs,
        recursive=options.recursive,
        include=options.include,
        exclude=options.exclude,
        follow_symlinks=options.follow_symlinks,
    )
    if options.shard:
        candidates = [c for c in candidates if options.shard.takes(c.relative)]
    return [Job(c, options.output_dir / output_relative_path(c.relative, codec)) for c in candidates]


def upscale(
    inputs: list[Path],
    options: UpscaleOptions,
    events: BatchEvents | None = None,
    cancel: threading.Event | None = None,
) -> BatchReport:
    """Upscale every video in ``inputs`` into ``options.output_dir``. Batch-wide errors (bad options,
    bad model, missing GPU) are raised as GvrError before any input is opened; per-file failures
    are in the report."""
    events = events or SilentEvents()
    cancel = cancel or threading.Event()
    started = time.monotonic()
    inputs = [Path(p) for p in inputs]
    check_method(options.color_fix)
    check_batch(inputs, options)
    encode = EncodeSettings(get_codec(options.codec), options.crf, options.pix_fmt)
    if options.pix_fmt:
        try:
            av.VideoFormat(options.pix_fmt)
        except ValueError:
            raise UsageError(f"unknown pixel format {options.pix_fmt!r}") from None

    model_path = options.model or resolve_default_model(options.scale or 2, say=lambda m: events.message(f"gvr: {m}"))
    manifest = read_manifest(model_path)
    if options.scale is not None and options.scale != manifest.scale:
        raise UsageError(f"--scale {options.scale}: model {model_path} upscales x{manifest.scale}")
    settings = EngineSettings.from_manifest(
        manifest,
        steps=options.steps,
        noise_aug=options.noise_aug,
        seed=options.seed,
        chunk_frames=options.chunk_frames,
        chunk_overlap=options.chunk_overlap,
        tile=options.tile,
        tile_overlap=options.tile_overlap,
        memory_budget_mb=options.memory_budget_mb,
    )
    report = BatchReport(model=str(model_path), precision=options.precision or manifest.precision, color_fix=options.color_fix)
    jobs = plan_batch(inputs, options, report, events)

    backend = make_backend(model_path, options.backend, options.device, options.threads, options.precision, manifest)
    loaded = None
    if not options.dry_run:
        loaded = backend.load(manifest)
        report.backend, report.precision = loaded.description, loaded.precision
        Upscaler(loaded, settings)  # refuses models the engine cannot run, before any video
        check_model(loaded, model_path)
        why = f" (auto: {backend.reason})" if backend.reason else ""
        events.message(f"gvr: backend {loaded.description}{why}, precision {loaded.precision}, {settings.steps} steps")
        if loaded.note:
            events.message(f"gvr: {loaded.note}")

    def make_work() -> Work:  # one Upscaler per worker thread: each keeps its own model-time counter
        upscaler = Upscaler(loaded, settings)
        return lambda job, info, partial, on_frames: upscale_file(
            info,
            partial,
            upscaler,
            encode,
            cancel=cancel,
            on_frames=on_frames,
            stall_timeout=options.stall_timeout,
            color_fix=options.color_fix,
        )

    interrupt = loaded.interrupt if loaded else None  # a model step in flight may take minutes on a CPU
    process_batch(jobs, options, make_work, report, events, cancel, interrupt=interrupt)
    report.seconds = time.monotonic() - started
    return report


def check_batch(inputs: list[Path], options: BatchOptions) -> None:
    """Refuse a batch that cannot run (UsageError), before anything is touched."""
    if not inputs:
        raise UsageError("no inputs given")
    if options.jobs < 1:
        raise UsageError(f"--jobs must be >= 1 (got {options.jobs})")
    check_output_dir(inputs, options.output_dir)


def plan_batch(inputs: list[Path], options: BatchOptions, report: BatchReport, events: BatchEvents) -> list[Job]:
    """This worker's jobs; inputs whose output would collide with another's are failed in ``report``."""
    jobs, collisions = _refuse_collisions(plan_jobs(inputs, options))
    for result in collisions:
        report.files.append(result)
        events.file_finished(result)
    return jobs


def process_batch(
    jobs: list[Job],
    options: BatchOptions,
    make_work: Callable[[], Work],
    report: BatchReport,
    events: BatchEvents,
    cancel: threading.Event,
    interrupt: Callable[[], None] | None = None,
) -> None:
    """Probe the jobs' inputs, then run ``make_work()`` (called once per worker thread) on each,
    ``options.jobs`` at a time, with claims, atomic outputs and events (or only list them, with
    ``dry_run``). ``interrupt`` is called once when a signal arrives, to cut long work short."""
    probed = _probe(jobs, options, report, events, cancel)
    events.plan(len(probed), sum(info.frames for _, info in probed))
    if options.dry_run:
        for job, _ in probed:
            events.planned(job.candidate.source, job.output, "planned")
    else:
        _run(probed, options, make_work, report, events, cancel, interrupt)


def _probe(jobs, options, report, events, cancel) -> list[tuple[Job, VideoInfo]]:
    """Probe each input's headers. Outputs that exist are skipped unprobed (a rerun over thousands
    of finished files stays quick); broken inputs become failures; non-videos are ignored."""
    probed = []
    for job in jobs:
        if cancel.is_set():
            break
        if job.output.exists() and not options.overwrite:
            result = FileResult(job.candidate.source, job.output, SKIPPED, reason="output exists")
        else:
            try:
                probed.append((job, probe_watched(job.candidate.source, options, cancel)))
                continue
            except Cancelled:
                break
            except InputError as e:
                if not (job.candidate.explicit or job.candidate.source.suffix.lower() in VIDEO_EXTENSIONS):
                    continue  # not a video (a sidecar, a text file): silently not an input
                result = FileResult(job.candidate.source, job.output, FAILED, reason=str(e))
        report.files.append(result)
        events.file_finished(result)
    return probed


def probe_watched(path: Path, options: BatchOptions, cancel: threading.Event) -> VideoInfo:
    """``probe_video`` under the watchdog: FFmpeg can hang reading a hostile header (stream-info
    probing decodes frames), and a hung probe must cost that file, not the batch. The probing
    thread cannot be killed; it is left behind, blocked, and the batch moves on."""
    box: dict = {}

    def target() -> None:
        try:
            box["info"] = probe_video(path, options.max_pixels)
        except BaseException as e:  # handed back to the batch thread below
            box["error"] = e

    thread = threading.Thread(target=target, name="gvr-probe", daemon=True)
    thread.start()
    deadline = time.monotonic() + options.stall_timeout
    while thread.is_alive():
        thread.join(timeout=0.2)
        if cancel.is_set():
            raise Cancelled()
        if time.monotonic() > deadline:
            raise StalledError(f"{path}: probing stalled (no answer for {options.stall_timeout:.0f} s)")
    if "error" in box:
        raise box["error"]
    return box["info"]


def _run(probed, options, make_work, report, events, cancel, interrupt) -> None:
    """Process the probed inputs, ``options.jobs`` at a time; a RetryableError or a signal stops
    the batch (files in progress are cleaned up by ``_process``)."""
    board = ClaimBoard(options.output_dir)
    per_thread = threading.local()
    fatal: list[BaseException] = []

    def run_one(job: Job, info: VideoInfo) -> FileResult | None:
        if cancel.is_set() or fatal:
            return None
        if not hasattr(per_thread, "work"):
            per_thread.work = make_work()
        return _process(job, info, options, per_thread.work, board, events, cancel)

    try:
        with ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="gvr-file") as pool:
            pending = {pool.submit(run_one, job, info) for job, info in probed}
            interrupted = False
            while pending:
                # Short waits keep the main thread free to run signal handlers.
                finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                if cancel.is_set() and not interrupted:
                    if interrupt is not None:
                        interrupt()
                    interrupted = True
                for fut in finished:
                    try:
                        result = fut.result()
                    except (RetryableError, Cancelled) as e:
                        fatal.append(e)
                        cancel.set()
                        continue
                    if result is not None:
                        report.files.append(result)
                        events.file_finished(result)
    finally:
        try:
            _sweep_dead_workers(board, options.output_dir)
        finally:
            board.close()
    for e in fatal:
        if isinstance(e, RetryableError):
            report.fatal, report.fatal_exit = str(e), e.exit_code


def _sweep_dead_workers(board: ClaimBoard, output_dir: Path) -> None:
    """Remove what killed workers left (their partials and locks), even for outputs outside this
    run's shard, so a finished run leaves nothing but outputs. Each is claimed first, so a live
    worker that is recovering the same output is never disturbed."""
    for output in board.stale_outputs():
        claim = board.try_claim(output)
        if claim is None:
            continue
        atomic.remove_partials(output)
        board.release(claim)
        atomic.remove_empty_dirs(output_dir, output.parent)


def _refuse_collisions(jobs: list[Job]) -> tuple[list[Job], list[FileResult]]:
    """Two inputs mapping to one output (a.avi and a.webm both re-containered to a.mkv): the later fails."""
    owner: dict[Path, Path] = {}
    kept, failed = [], []
    for job in jobs:
        first = owner.setdefault(job.output, job.candidate.source)
        if first == job.candidate.source:
            kept.append(job)
        else:
            reason = f"{job.candidate.source}: output {job.output} would collide with the output of {first}"
            failed.append(FileResult(job.candidate.source, job.output, FAILED, reason=reason))
    return kept, failed


def _process(job, info, options, work, board, events, cancel) -> FileResult:
    source, output = job.candidate.source, job.output
    started = time.monotonic()
    if output.exists() and not options.overwrite:
        return FileResult(source, output, SKIPPED, reason="output exists")
    claim = board.try_claim(output)
    if claim is None:
        return FileResult(source, output, SKIPPED, reason="another worker is processing it")
    created_dirs = not output.parent.exists()
    partial = atomic.partial_path(output, claim.token)
    try:
        if output.exists() and not options.overwrite:  # finished by another worker since we looked
            return FileResult(source, output, SKIPPED, reason="output exists")
        atomic.remove_partials(output)  # left by a worker that died holding this claim
        output.parent.mkdir(parents=True, exist_ok=True)
        events.file_started(source, info.frames)
        stats = work(job, info, partial, lambda n: events.frames(source, n))
        atomic.publish(partial, output)
        return FileResult(
            source,
            output,
            DONE,
            frames=stats.frames,
            seconds=time.monotonic() - started,
            model_seconds=stats.model_seconds,
            warnings=list(stats.warnings),
            color_fix=stats.color_fix,
            extra=dict(stats.extra),
        )
    except (Cancelled, RetryableError):
        raise
    except GvrError as e:
        return _failed(source, output, str(e), started)
    except (av.FFmpegError, OSError) as e:
        return _failed(source, output, f"{source}: {_first_line(e)}", started)
    except MemoryError:
        return _failed(source, output, f"{source}: out of memory (lower --memory-budget or --tile)", started)
    except Exception as e:  # one input's unexpected fault (a model error on its shape...) must not stop the batch
        return _failed(source, output, f"{source}: {type(e).__name__}: {_first_line(e)}", started)
    finally:
        partial.unlink(missing_ok=True)
        board.release(claim)
        if created_dirs:
            atomic.remove_empty_dirs(options.output_dir, output.parent)


def _failed(source: Path, output: Path, reason: str, started: float) -> FileResult:
    return FileResult(source, output, FAILED, seconds=time.monotonic() - started, reason=reason)


def _first_line(e: BaseException) -> str:
    text = (getattr(e, "strerror", None) or str(e) or type(e).__name__).strip()
    return text.splitlines()[0] if text else type(e).__name__

