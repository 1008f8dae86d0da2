"""Progress and event output: a Rich display on a terminal, plain lines for logs, JSON for programs.

* Terminal (stdout is a TTY): a Rich progress display, overall files/frames plus per-file fps
  and ETA. Rich honours NO_COLOR.
* Not a terminal: plain lines on stdout, no carriage returns or colour codes, at most one
  ``Progress: 42%`` line per interval (the form Deadline-style plugins parse), and with
  ``openjd=True`` an ``openjd_progress: 42.0`` line beside it (Open Job Description).
* ``--json``: one JSON object per line on stdout and nothing else there.
Human messages (warnings, per-file failures) go to stderr in every mode.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from pathlib import Path
from typing import Protocol, TextIO

from gvrcli.report import FAILED, BatchReport, FileResult


class BatchEvents(Protocol):
    def message(self, text: str) -> None: ...
    def plan(self, files: int, frames: int) -> None: ...
    def planned(self, source: Path, output: Path, status: str) -> None: ...
    def file_started(self, source: Path, frames: int) -> None: ...
    def frames(self, source: Path, count: int) -> None: ...
    def file_finished(self, result: FileResult) -> None: ...
    def finished(self, report: BatchReport) -> None: ...


class SilentEvents:
    """For library callers that only want the returned report."""

    def message(self, text): pass
    def plan(self, files, frames): pass
    def planned(self, source, output, status): pass
    def file_started(self, source, frames): pass
    def frames(self, source, count): pass
    def file_finished(self, result): pass
    def finished(self, report): pass


class _Counter:
    """Frames and files done so far, shared by the printers (calls come from worker threads)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.total_files = self.total_frames = 0
        self.files_done = self.frames_done = 0
        self.estimate: dict[Path, int] = {}

    def percent(self) -> float:
        if self.total_frames <= 0:
            return 100.0 * self.files_done / self.total_files if self.total_files else 0.0
        return min(100.0, 100.0 * self.frames_done / self.total_frames)


def one_line(text: str) -> str:
    """File names may hold newlines; a report line must stay one line for the scripts that parse it."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _failure_line(result: FileResult) -> str:
    return f"error: {one_line(result.reason)}"


def _done_line(result: FileResult) -> str:
    target = f" -> {result.output}" if result.output is not None else ""
    return one_line(f"done: {result.source}{target} ({result.frames} frames, {result.fps:.2f} fps)")


class PlainEvents:
    """Line-oriented output for logs and farm schedulers."""

    def __init__(
        self, out: TextIO = None, err: TextIO = None, interval: float = 10.0, openjd: bool = False, action: str = "upscale"
    ):
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.action = action  # what the frames are for, in the plan line: upscale, degrade, evaluate
        self.interval, self.openjd = interval, openjd
        self.c = _Counter()
        self._last_print = 0.0
        self._last_percent = -1

    def _say(self, line: str, stream: TextIO | None = None) -> None:
        stream = stream or self.out
        stream.write(one_line(line) + "\n")
        stream.flush()

    def message(self, text):
        self._say(text, self.err)

    def plan(self, files, frames):
        with self.c.lock:
            self.c.total_files, self.c.total_frames = files, frames
        self._say(f"gvr: {files} video(s), {frames} frames to {self.action}")

    def planned(self, source, output, status):
        self._say(f"{status}: {source} -> {output}")

    def file_started(self, source, frames):
        self._say(f"start: {source} ({frames} frames)")

    def frames(self, source, count):
        with self.c.lock:
            self.c.frames_done += count
        self._progress(force=False)

    def file_finished(self, result):
        with self.c.lock:
            self.c.files_done += 1
        if result.status == FAILED:
            self._say(_failure_line(result), self.err)
        elif result.status == "skipped":
            self._say(f"skipped: {result.source} ({result.reason})")
        else:
            for w in result.warnings:
                self._say(f"warning: {result.source}: {w}", self.err)
            self._say(_done_line(result))
        self._progress(force=False)

    def finished(self, report):
        self._progress(force=True)
        s = report.summary()
        self._say(
            f"gvr: {s['done']} done, {s['skipped']} skipped, {s['failed']} failed; "
            f"{s['frames']} frames in {s['seconds']:.1f} s ({s['fps']:.2f} fps)"
        )

    def _progress(self, force: bool) -> None:
        with self.c.lock:
            percent = int(self.c.percent())
            now = time.monotonic()
            due = force or (now - self._last_print >= self.interval and percent != self._last_percent)
            if not due or percent == self._last_percent:
                return
            self._last_print, self._last_percent = now, percent
        self._say(f"Progress: {percent}%")
        if self.openjd:
            self._say(f"openjd_progress: {percent:.1f}")


def _finite(value):
    """JSON has no inf or NaN (a PSNR of identical videos is inf): they are written as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class JsonEvents:
    """One JSON object per line on stdout: plan, file_start, progress, file, summary."""

    def __init__(self, out: TextIO = None, err: TextIO = None, interval: float = 10.0):
        self.out, self.err, self.interval = out or sys.stdout, err or sys.stderr, interval
        self.c = _Counter()
        self._lock = threading.Lock()
        self._last_print = 0.0

    def _emit(self, obj: dict) -> None:
        with self._lock:
            self.out.write(json.dumps(_finite(obj), ensure_ascii=False) + "\n")
            self.out.flush()

    def message(self, text):
        self.err.write(one_line(text) + "\n")
        self.err.flush()

    def plan(self, files, frames):
        self.c.total_files, self.c.total_frames = files, frames
        self._emit({"event": "plan", "files": files, "frames": frames})

    def planned(self, source, output, status):
        self._emit({"event": "planned", "source": str(source), "output": str(output), "status": status})

    def file_started(self, source, frames):
        self._emit({"event": "file_start", "source": str(source), "frames": frames})

    def frames(self, source, count):
        with self.c.lock:
            self.c.frames_done += count
            now = time.monotonic()
            if now - self._last_print < self.interval:
                return
            self._last_print = now
            percent = self.c.percent()
        self._emit({"event": "progress", "percent": round(percent, 1), "frames": self.c.frames_done})

    def file_finished(self, result):
        if result.status == FAILED:
            self.message(_failure_line(result))
        self._emit({"event": "file", **result.to_dict()})

    def finished(self, report):
        self._emit(report.summary())


class RichEvents(PlainEvents):
    """A live Rich display: overall files and frames, and the current files with fps and ETA."""

    def __init__(self, err: TextIO = None):
        super().__init__(err=err)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=False)
        self.err_console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}", justify="left"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.overall = None
        self.per_file: dict[Path, tuple[int, float]] = {}
        self._files_done = 0

    def message(self, text):
        self.err_console.print(text, markup=False, highlight=False, style="yellow")

    def plan(self, files, frames):
        self.c.total_files, self.c.total_frames = files, frames
        self.progress.start()
        self.overall = self.progress.add_task(f"files 0/{files}", total=max(frames, 1), fps="")

    def planned(self, source, output, status):
        self.console.print(f"{status}: {source} -> {output}", markup=False, highlight=False)

    def file_started(self, source, frames):
        task = self.progress.add_task(source.name, total=max(frames, 1), fps="")
        self.per_file[source] = [task, time.monotonic(), 0]

    def frames(self, source, count):
        if self.overall is not None:
            self.progress.advance(self.overall, count)
        entry = self.per_file.get(source)
        if entry:
            entry[2] += count
            fps = entry[2] / max(time.monotonic() - entry[1], 1e-6)
            self.progress.update(entry[0], advance=count, fps=f"{fps:.2f} fps")

    def file_finished(self, result):
        self._files_done += 1
        if self.overall is not None:
            self.progress.update(self.overall, description=f"files {self._files_done}/{self.c.total_files}")
        entry = self.per_file.pop(result.source, None)
        if entry:
            self.progress.remove_task(entry[0])
        if result.status == FAILED:
            self.err_console.print(_failure_line(result), markup=False, highlight=False, style="red")
        elif result.status == "done":
            self.progress.console.print(
                _done_line(result),
                markup=False,
                highlight=False,
            )
            for w in result.warnings:
                self.err_console.print(f"warning: {result.source}: {w}", markup=False, style="yellow")

    def finished(self, report):
        self.progress.stop()
        s = report.summary()
        self.console.print(
            f"gvr: {s['done']} done, {s['skipped']} skipped, {s['failed']} failed; "
            f"{s['frames']} frames in {s['seconds']:.1f} s ({s['fps']:.2f} fps)",
            markup=False,
            highlight=False,
        )
