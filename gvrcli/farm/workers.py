"""The other workers sharing OUTPUT_DIR: waiting for the files they hold, cleaning up after the dead.

Several workers (a farm's shards, two runs over one folder) may write into one output folder; the
claims (``gvrcli.farm.claims``) keep them off each other's files. This is what a worker does about
the others once its own files are done: it waits for the files a live worker holds, so exit 0
still means every input is done, and it removes what killed workers left (their partials and
locks), so a finished run leaves nothing but outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

from gvrbase import atomic
from gvrcli.farm.claims import ClaimBoard, ClaimError
from gvrcli.farm.discovery import Territory
from gvrcli.report import SKIPPED, FileResult


# How often a worker that has nothing left but files other live workers hold looks again.
WAIT_POLL_SECONDS = 1.0


def wait_for_other_workers(held, board, overwrite, report, events, cancel) -> list:
    """Wait until each file another worker holds (``held``: (job, probed info) pairs) is finished
    (its output appears: skipped) or its lock is gone or stale (returned, to be done here).
    Stopped by a signal, the files still held elsewhere are reported skipped."""
    names = ", ".join(f"{job.candidate.source} ({board.holder(job.output) or 'a live lock'})" for job, _ in held[:3])
    more = f" and {len(held) - 3} more" if len(held) > 3 else ""
    events.message(f"gvr: waiting for other workers to finish {len(held)} file(s): {names}{more}")
    waiting, ready = list(held), []
    while waiting and not cancel.is_set():
        still = []
        for job, info in waiting:
            try:
                lock = board.lock_path(job.output)
                free = not os.path.lexists(lock) or board.is_stale(lock)
            except ClaimError:
                free = True  # trying the file itself reports what is wrong with the lock folder
            # With --overwrite an old output may be there already: then only the lock's release says done.
            if job.output.exists() and (free or not overwrite):
                result = FileResult(job.candidate.source, job.output, SKIPPED, reason="output exists (done by another worker)")
                report.files.append(result)
                events.file_finished(result)
            else:
                (ready if free else still).append((job, info))
        waiting = still
        if ready:
            break
        cancel.wait(WAIT_POLL_SECONDS)
    if cancel.is_set():
        for job, _ in ready + waiting:
            result = FileResult(job.candidate.source, job.output, SKIPPED, reason="another worker is processing it")
            report.files.append(result)
            events.file_finished(result)
        return []
    return ready + waiting


def sweep_dead_workers(board: ClaimBoard, output_dir: Path, territory: Territory) -> None:
    """Remove what killed workers left (their partials and locks), even for outputs outside this
    run's shard, so a finished run leaves nothing but outputs. Each output is claimed first, so a
    live worker that is recovering the same output is never disturbed. A lock is only trusted to
    name an output inside OUTPUT_DIR (relative, no ``..``, not through a link out of it); anything
    else in the lock folder is removed without touching what it names."""
    for lock, key in board.stale_locks():
        output = output_dir / key if key is not None else None
        if output is None or territory.why_not(output) or board.lock_path(output) != lock:
            board.remove_lock(lock)
        if output is None or territory.why_not(output):
            continue
        try:
            claim = board.try_claim(output)
        except ClaimError:
            return
        if claim is None:
            continue
        atomic.remove_partials(output)
        board.release(claim)
        atomic.remove_empty_dirs(output_dir, output.parent)
