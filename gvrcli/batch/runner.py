"""Running a batch: each planned input probed, claimed, handed to the command's work and its
output published, ``--jobs`` files at a time, with events and a report.

What every batch command shares (``gvr upscale``, ``gvr degrade``): the command brings the work
for one file (``Work``), this module does the rest. Each input is claimed
(``gvrcli.farm.claims``), skipped if its output already exists, written to a partial and renamed
(``gvrcli.farm.atomic``); files another worker holds are waited for (``gvrcli.farm.workers``).
One input failing never stops the others: only a signal (Cancelled) or a fault a retry may cure
(RetryableError) stops the batch.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable

import av

from gvrcli.batch.options import BatchOptions
from gvrcli.batch.planning import Job, meant_as_input
from gvrcli.batch.watchdog import probe_watched, watched
from gvrcli.errors import Cancelled, GvrError, InputError, RetryableError, StalledError
from gvrbase.errors import first_line
from gvrbase import atomic
from gvrcli.farm import sidecar
from gvrcli.farm.claims import ClaimBoard, ClaimError
from gvrcli.farm.discovery import Territory
from gvrcli.farm.workers import sweep_dead_workers, wait_for_other_workers
from gvrcli.media.latents import latents_path, write_latents
from gvrcli.media.probe import VideoInfo
from gvrcli.pipeline import FileStats
from gvrcli.progress import BatchEvents
from gvrcli.progress_plan import WorkLedger
from gvrcli.report import DONE, FAILED, SKIPPED, BatchReport, FileResult


# One input's work: (job, probed info, partial path to write, its progress ledger) -> FileStats.
# Raises GvrError (that file fails), Cancelled or RetryableError (the batch stops).
Work = Callable[[Job, VideoInfo, Path, WorkLedger], FileStats]


def process_batch(
    jobs: list[Job],
    options: BatchOptions,
    make_work: Callable[[], Work],
    report: BatchReport,
    events: BatchEvents,
    cancel: threading.Event,
    interrupt: Callable[[], None] | None = None,
    probe: Callable | None = None,
) -> None:
    """Probe the jobs' inputs, then run ``make_work()`` (called once per worker thread) on each,
    ``options.jobs`` at a time, with claims, atomic outputs and events (or only list them, with
    ``dry_run``). ``interrupt`` is called once when a signal arrives, to cut long work short.
    ``probe(path, cancel)``: how an input is probed (default: as a video, ``probe_watched``)."""
    probed = _probe(jobs, options, report, cancel, probe or (lambda path, c: probe_watched(path, options, c)))
    # The plan is the first event; then the files settled without work (refused at planning,
    # skipped, unreadable), outside the plan's percentage.
    events.plan(len(probed), sum(info.frames for _, info in probed), sources=[job.candidate.source for job, _ in probed], **report.model_facts)
    for result in list(report.files):
        events.file_finished(result)
    if options.dry_run:
        for job, _ in probed:
            events.planned(job.candidate.source, job.output, "planned")
    else:
        _run(probed, options, make_work, report, events, cancel, interrupt)


def _probe(jobs, options, report, cancel, probe) -> list[tuple[Job, VideoInfo]]:
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
                probed.append((job, probe(job.candidate.source, cancel)))
                continue
            except Cancelled:
                break
            except InputError as e:
                if not meant_as_input(job.candidate, options):
                    continue  # not a video (a sidecar, a text file): silently not an input
                result = FileResult(job.candidate.source, job.output, FAILED, reason=str(e))
        report.files.append(result)
    return probed


def _run(probed, options, make_work, report, events, cancel, interrupt) -> None:
    """Process the probed inputs, ``options.jobs`` at a time; a RetryableError or a signal stops
    the batch (files in progress are cleaned up by ``_process``). Files another live worker holds
    are waited for at the end, so exit 0 still means every input is done: when that worker
    finishes, the file is "skipped (output exists)"; if it gives up or dies, this worker does it."""
    board = ClaimBoard(options.output_dir)
    candidates = [job.candidate for job, _ in probed]
    territory = Territory(options.output_dir, sorted({c.root for c in candidates if c.root}), candidates)
    per_thread = threading.local()
    fatal: list[BaseException] = []

    def run_one(job: Job, info: VideoInfo) -> FileResult | None:
        if cancel.is_set() or fatal:
            return None
        if not hasattr(per_thread, "work"):
            per_thread.work = make_work()
        return _process_safely(job, info, options, per_thread.work, board, territory, events, cancel)

    held_elsewhere: list[tuple[Job, VideoInfo]] = []
    try:
        with ThreadPoolExecutor(max_workers=options.jobs, thread_name_prefix="gvr-file") as pool:
            todo = list(probed)
            while todo and not cancel.is_set():
                pending = {pool.submit(run_one, job, info): (job, info) for job, info in todo}
                todo = []
                interrupted = False
                while pending:
                    # Short waits keep the main thread free to run signal handlers.
                    finished, _ = wait(set(pending), timeout=0.2, return_when=FIRST_COMPLETED)
                    if cancel.is_set() and not interrupted:
                        if interrupt is not None:
                            interrupt()
                        interrupted = True
                    for fut in finished:
                        job, info = pending.pop(fut)
                        try:
                            result = fut.result()
                        except (RetryableError, Cancelled) as e:
                            fatal.append(e)
                            cancel.set()
                            continue
                        if result is _HELD_ELSEWHERE:
                            held_elsewhere.append((job, info))
                        elif result is not None:
                            report.files.append(result)
                            events.file_finished(result)
                if held_elsewhere and not cancel.is_set():
                    todo, held_elsewhere = wait_for_other_workers(held_elsewhere, board, options.overwrite, report, events, cancel), []
    finally:
        try:
            if not cancel.is_set():  # after a signal, the next run sweeps
                watched(
                    lambda: sweep_dead_workers(board, options.output_dir, territory), options.stall_timeout,
                    threading.Event(), f"{options.output_dir}: cleaning up after dead workers stalled", name="gvr-sweep",
                )
        except StalledError as e:
            events.warning(f"gvr: {e}")
        finally:
            board.close()
    for job, _ in held_elsewhere:  # stopped while waiting (a signal): say why they are not done
        result = FileResult(job.candidate.source, job.output, SKIPPED, reason="another worker is processing it")
        report.files.append(result)
        events.file_finished(result)
    for e in fatal:
        if isinstance(e, RetryableError):
            report.fatal, report.fatal_exit = str(e), e.exit_code


_HELD_ELSEWHERE = object()  # _process: a live worker holds this output's lock


def _process_safely(job, info, options, work, board, territory, events, cancel):
    """``_process``, with every per-file fault (whatever raised it, clean-up included) turned into
    that file's failure: one input can never end the batch or lose the others' results. Only a
    signal (Cancelled) and a fault a retry may cure (RetryableError) stop the batch."""
    source, output = job.candidate.source, job.output
    started = time.monotonic()
    try:
        return _process(job, info, options, work, board, territory, events, cancel)
    except (Cancelled, RetryableError):
        raise
    except GvrError as e:
        return _failed(source, output, str(e), started)
    except (av.FFmpegError, OSError) as e:
        return _failed(source, output, f"{source}: {first_line(e)}", started)
    except MemoryError:
        return _failed(source, output, f"{source}: out of memory (lower --memory-budget or --tile)", started)
    except Exception as e:  # one input's unexpected fault (a model error on its shape...) must not stop the batch
        return _failed(source, output, f"{source}: {first_line(e)}", started)


def _process(job, info, options, work, board, territory, events, cancel):
    source, output = job.candidate.source, job.output
    started = time.monotonic()
    if output.exists() and not options.overwrite:
        return FileResult(source, output, SKIPPED, reason="output exists")
    why = territory.why_not(output)  # again, now: OUTPUT_DIR may have changed since planning
    if why:
        raise InputError(f"{source}: output {output}: {why}")
    try:
        claim = board.try_claim(output)
    except ClaimError as e:
        raise InputError(f"{source}: cannot claim its output ({e.strerror or e})") from None
    if claim is None:
        return _HELD_ELSEWHERE
    created_dirs = not output.parent.exists()
    partial = atomic.partial_path(output, claim.token)
    try:
        if output.exists() and not options.overwrite:  # finished by another worker since we looked
            return FileResult(source, output, SKIPPED, reason="output exists")
        atomic.remove_partials(output)  # left by a worker that died holding this claim
        atomic.remove_partials(sidecar.sidecar_path(output))
        atomic.make_dirs(output.parent)
        why = territory.why_not(output)  # the folders just made (or found) must not lead elsewhere
        if why:
            raise InputError(f"{source}: output {output}: {why}")
        progress = events.file_started(source, info.frames)
        stats = work(job, info, partial, progress)
        result = FileResult(
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
        if stats.latents is not None:  # --save-latents, published before the output like the sidecar
            target = latents_path(output)
            part = atomic.partial_path(target, claim.token)
            try:
                write_latents(part, stats.latents, stats.fps)
                atomic.publish(part, target)
            finally:
                part.unlink(missing_ok=True)
        if stats.sidecar is not None:  # before the output: an output never stands without it
            sidecar.write(output, sidecar.record(result, stats.sidecar), claim.token)
        else:
            sidecar.remove_stale(output)
        atomic.publish(partial, output)
        return result
    finally:
        # Clean-up must never replace the file's own error (or its result) with another.
        for step in (
            lambda: partial.unlink(missing_ok=True),
            lambda: board.release(claim),
            lambda: created_dirs and atomic.remove_empty_dirs(options.output_dir, output.parent),
        ):
            try:
                step()
            except OSError:
                pass  # a leftover is swept by the next run; the file's own result stands


def _failed(source: Path, output: Path, reason: str, started: float) -> FileResult:
    return FileResult(source, output, FAILED, seconds=time.monotonic() - started, reason=reason)
