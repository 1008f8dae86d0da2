"""Progress and event output: a Rich display on a terminal, plain lines for logs, JSON for programs.

What is done is counted by the work ledger (``gvrcli.progress_plan``): every sampler step of every
tile of every chunk moves the percentage, not only written frames. A heartbeat thread prints (or
redraws) at least every ``interval`` seconds while files are in flight, even when the percentage
has not moved, with the stage at work (``decode 12/20``, ``model step 3/40 of chunk 1/2``,
``encode 5/20``) and an ETA from the measured rate, so neither a person nor a farm scheduler's
stalled-task check takes a long chunk for a hang.

* Terminal (stdout is a TTY): a Rich display, the batch's bar (files, frames, ETA) and a bar per
  file in flight that moves with each sampler step, with its stage and ETA. Rich honours NO_COLOR.
* Not a terminal: plain lines on stdout, no carriage returns or colour codes. Each heartbeat is a
  ``Progress: 42%`` line (the form Deadline-style plugins parse) and a ``status:`` line (stage,
  frames written, ETA); with ``openjd=True`` also ``openjd_progress: 42.0`` and
  ``openjd_status: ...`` (Open Job Description).
* ``--json``: one JSON object per line on stdout and nothing else there; each heartbeat is a
  ``progress`` event.
Human messages (the start line, warnings, per-file failures) go to stderr in every mode; on a
terminal only warnings are yellow and failures red, the start line is plain text. No line follows the
summary: ``finished`` (and ``close``, for a run that ends in an error) stops the heartbeat first.
"""

from __future__ import annotations

import json
import math
import sys
import threading
from pathlib import Path
from typing import Protocol, TextIO

from gvrbase.errors import one_line
from gvrcli.progress_plan import ENCODE, BatchLedger, BatchSnapshot, FileSnapshot, WorkLedger
from gvrcli.report import FAILED, BatchReport, FileResult

MIN_PERIOD = 0.1  # seconds: the heartbeat of --progress-interval 0 (every change, as near as matters)


class BatchEvents(Protocol):
    def message(self, text: str) -> None:
        """What the run is doing (the start line, a shard, waiting for other workers)."""
    def warning(self, text: str) -> None:
        """Something the user should act on, or a fallback taken: yellow on a terminal."""
    def plan(self, files: int, frames: int, sources=None, **facts) -> None:
        """The work ahead; ``sources``: the files it is (those finished outside it do not move the
        percentage); ``facts`` describe the run (upscale: ``untrained``, ``model_note``), for the
        JSON ``plan`` event."""
    def planned(self, source: Path, output: Path, status: str) -> None: ...
    def file_started(self, source: Path, frames: int, output: str = ENCODE) -> WorkLedger:
        """The file's ledger, for its work to report into (``output`` names its frames' stage)."""
    def file_finished(self, result: FileResult) -> None: ...
    def finished(self, report: BatchReport) -> None: ...
    def close(self) -> None:
        """Stop the heartbeat (a run ending in an error, before its last line)."""


class Heartbeat:
    """Calls ``beat()`` every ``period`` seconds from a daemon thread while started: ``start()``
    when a file is in flight, ``pause()`` when none is, ``stop()`` for good (it waits for a beat in
    progress). A beat that raises (stdout closed) ends the heartbeat, never the work."""

    def __init__(self, period: float, beat):
        self.period, self.beat = period if period > 0 else MIN_PERIOD, beat
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        with self._lock:
            if self._closed or (self._thread is not None and self._thread.is_alive() and not self._stop.is_set()):
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="gvr-progress", daemon=True)
            self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.period):
            try:
                self.beat()
            except Exception:
                return

    def pause(self) -> None:
        with self._lock:
            self._stop.set()

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            self._stop.set()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


class _Tracked:
    """The bookkeeping every display shares: the batch's ledger, and the heartbeat that runs
    while a file is in flight."""

    def __init__(self, period: float):
        self.ledger = BatchLedger()
        self.heartbeat = Heartbeat(period, self._beat)
        self.flight_lock = threading.Lock()  # a file starting and the last one finishing: heartbeat on or off
        self.out_lock = threading.Lock()  # one line at a time; none after ``closed``
        self.closed = False

    def _beat(self) -> None: ...

    def plan(self, files, frames, sources=None, **facts):
        self.ledger.plan(files, frames, sources)

    def warning(self, text):
        self.message(text)

    def file_started(self, source, frames, output=ENCODE):
        with self.flight_lock:
            ledger = self.ledger.start_file(source, frames, output)
            self.heartbeat.start()
        return ledger

    def file_finished(self, result):
        with self.flight_lock:
            self.ledger.finish_file(result.source)
            if not self.ledger.in_flight:
                self.heartbeat.pause()

    def close(self):
        self.heartbeat.stop()
        with self.out_lock:
            self.closed = True

    def settle(self, report: BatchReport) -> None:
        """At the end of a run that ended by itself (not by a signal or a fatal error) the plan is
        done, at 100%: also a rerun whose files were all skipped, and a --dry-run."""
        if not report.interrupted and not report.fatal:
            self.ledger.settle()


class SilentEvents(_Tracked):
    """For library callers that only want the returned report (the ledgers still count)."""

    def __init__(self):
        super().__init__(period=0)

    def message(self, text): pass
    def planned(self, source, output, status): pass
    def file_started(self, source, frames, output=ENCODE):
        return self.ledger.start_file(source, frames, output)
    def finished(self, report): pass


def clock(seconds: float | None) -> str:
    """An ETA as people read it: 0:42, 12:05, 1:02:03; ``?`` while there is no rate."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def file_status(f: FileSnapshot) -> str:
    """``model step 12/40 of chunk 1/3; 0/20 frames; ETA 0:31``."""
    return f"{f.status}; {f.frames}/{f.total_frames} frames; ETA {clock(f.eta_seconds)}"


def _status_lines(snap: BatchSnapshot) -> list[str]:
    batch = f"; batch ETA {clock(snap.eta_seconds)}" if snap.files > 1 else ""
    if not snap.in_flight:
        return [f"{snap.files_done}/{snap.files} files done{batch}"]
    return [f"{f.source.name if f.source else ''}: {file_status(f)}{batch}" for f in snap.in_flight]


def _failure_line(result: FileResult) -> str:
    return f"error: {one_line(result.reason)}"


def _done_line(result: FileResult) -> str:
    target = f" -> {result.output}" if result.output is not None else ""
    plan = result.extra.get("plan")
    plan = f"; {plan['short']}" if isinstance(plan, dict) and "short" in plan else ""
    return one_line(f"done: {result.source}{target} ({result.frames} frames, {result.fps:.2f} fps{plan})")


class PlainEvents(_Tracked):
    """Line-oriented output for logs and farm schedulers."""

    def __init__(
        self, out: TextIO = None, err: TextIO = None, interval: float = 10.0, openjd: bool = False, action: str = "upscale"
    ):
        super().__init__(interval)
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.action = action  # what the frames are for, in the plan line: upscale, degrade, evaluate
        self.openjd = openjd

    def _say(self, *lines: str, stream: TextIO | None = None) -> None:
        stream = stream or self.out
        with self.out_lock:
            if self.closed:
                return
            for line in lines:
                stream.write(one_line(line) + "\n")
            stream.flush()

    def message(self, text):
        self._say(text, stream=self.err)

    def plan(self, files, frames, sources=None, **facts):
        super().plan(files, frames, sources)
        self._say(f"gvr: {files} video(s), {frames} frames to {self.action}")

    def planned(self, source, output, status):
        self._say(f"{status}: {source} -> {output}")

    def file_started(self, source, frames, output=ENCODE):
        ledger = super().file_started(source, frames, output)
        self._say(f"start: {source} ({frames} frames)")
        return ledger

    def file_finished(self, result):
        super().file_finished(result)
        if result.status == FAILED:
            self._say(_failure_line(result), stream=self.err)
        elif result.status == "skipped":
            self._say(f"skipped: {result.source} ({result.reason})")
        else:
            for w in result.warnings:
                self._say(f"warning: {result.source}: {w}", stream=self.err)
            self._say(_done_line(result))

    def _beat(self) -> None:
        snap = self.ledger.snapshot()
        self._say(*self._progress_lines(snap), *self._tagged("status", _status_lines(snap)))

    def _progress_lines(self, snap: BatchSnapshot) -> list[str]:
        percent = 100.0 * snap.fraction
        return [f"Progress: {int(percent)}%", *([f"openjd_progress: {percent:.1f}"] if self.openjd else [])]

    def _tagged(self, tag: str, lines: list[str]) -> list[str]:
        return [f"{tag}: {line}" for line in lines] + ([f"openjd_{tag}: {line}" for line in lines] if self.openjd else [])

    def finished(self, report):
        self.heartbeat.stop()
        self.settle(report)
        s = report.summary()
        self._say(
            *self._progress_lines(self.ledger.snapshot()),
            f"gvr: {s['done']} done, {s['skipped']} skipped, {s['failed']} failed; "
            f"{s['frames']} frames in {s['seconds']:.1f} s ({s['fps']:.2f} fps)",
        )
        self.close()


def _finite(value):
    """JSON has no inf or NaN (a PSNR of identical videos is inf): they are written as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _seconds(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def progress_event(snap: BatchSnapshot) -> dict:
    """The ``progress`` event: the batch (``percent``, ``frames`` written, ``eta_seconds``), the
    first file in flight's ``stage`` and ``status`` at top level, and every file in flight."""
    files = [
        {
            "source": str(f.source),
            "percent": round(100.0 * f.fraction, 2),
            "frames": f.frames,
            "total_frames": f.total_frames,
            "stage": f.stage,
            "status": f.status,
            "eta_seconds": _seconds(f.eta_seconds),
        }
        for f in snap.in_flight
    ]
    first = files[0] if files else {}
    return {
        "event": "progress",
        "percent": round(100.0 * snap.fraction, 2),
        "frames": snap.frames,
        "eta_seconds": _seconds(snap.eta_seconds),
        "elapsed_seconds": round(snap.elapsed, 1),
        "files_done": snap.files_done,
        "stage": first.get("stage"),
        "status": first.get("status"),
        "files": files,
    }


class JsonEvents(_Tracked):
    """One JSON object per line on stdout: plan, file_start, progress, file, summary."""

    def __init__(self, out: TextIO = None, err: TextIO = None, interval: float = 10.0):
        super().__init__(interval)
        self.out, self.err = out or sys.stdout, err or sys.stderr

    def _emit(self, obj: dict) -> None:
        line = json.dumps(_finite(obj), ensure_ascii=False) + "\n"
        with self.out_lock:
            if self.closed:
                return
            self.out.write(line)
            self.out.flush()

    def message(self, text):
        self.err.write(one_line(text) + "\n")
        self.err.flush()

    def plan(self, files, frames, sources=None, **facts):
        super().plan(files, frames, sources)
        self._emit({"event": "plan", "files": files, "frames": frames, **facts})

    def planned(self, source, output, status):
        self._emit({"event": "planned", "source": str(source), "output": str(output), "status": status})

    def file_started(self, source, frames, output=ENCODE):
        ledger = super().file_started(source, frames, output)
        self._emit({"event": "file_start", "source": str(source), "frames": frames})
        return ledger

    def _beat(self) -> None:
        self._emit(progress_event(self.ledger.snapshot()))

    def file_finished(self, result):
        super().file_finished(result)
        if result.status == FAILED:
            self.message(_failure_line(result))
        self._emit({"event": "file", **result.to_dict()})

    def finished(self, report):
        self.heartbeat.stop()
        self.settle(report)
        self._emit(progress_event(self.ledger.snapshot()))
        self._emit(report.summary())
        self.close()


class RichEvents(_Tracked):
    """A live Rich display: the batch's bar (files, frames, ETA) and, per file in flight, a bar
    that moves with each sampler step, its stage, frames and ETA."""

    def __init__(self, console=None, err_console=None, period: float = 0.25):
        super().__init__(period)
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.console = console or Console(stderr=False)
        self.err_console = err_console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}", justify="left"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            transient=False,
            auto_refresh=False,  # the heartbeat redraws: one thread, and every beat is seen
        )
        self.overall = None
        self.tasks: dict[Path, int] = {}
        self._lock = threading.Lock()  # tasks: the heartbeat and the workers both change them

    def message(self, text):
        self.err_console.print(text, markup=False, highlight=False)

    def warning(self, text):
        self.err_console.print(text, markup=False, highlight=False, style="yellow")

    def plan(self, files, frames, sources=None, **facts):
        super().plan(files, frames, sources)
        self.progress.start()
        self.overall = self.progress.add_task(f"files 0/{files}", total=100.0, status="")

    def planned(self, source, output, status):
        self.console.print(f"{status}: {source} -> {output}", markup=False, highlight=False)

    def file_started(self, source, frames, output=ENCODE):
        ledger = super().file_started(source, frames, output)
        with self._lock:
            self.tasks[source] = self.progress.add_task(source.name, total=100.0, status="starting")
        return ledger

    def _beat(self) -> None:
        snap = self.ledger.snapshot()
        with self._lock:
            if self.overall is None:  # not started: files refused before the plan
                return
            self.progress.update(
                self.overall,
                completed=100.0 * snap.fraction,
                description=f"files {snap.files_done}/{snap.files}",
                status=f"{snap.frames} frames; ETA {clock(snap.eta_seconds)}",
            )
            for f in snap.in_flight:
                task = self.tasks.get(f.source)
                if task is not None:
                    self.progress.update(task, completed=100.0 * f.fraction, status=file_status(f))
            self.progress.refresh()

    def file_finished(self, result):
        super().file_finished(result)
        with self._lock:
            task = self.tasks.pop(result.source, None)
            if task is not None:
                self.progress.remove_task(task)
        self._beat()
        if result.status == FAILED:
            self.err_console.print(_failure_line(result), markup=False, highlight=False, style="red")
        elif result.status == "done":
            self.progress.console.print(_done_line(result), markup=False, highlight=False)
            for w in result.warnings:
                self.err_console.print(f"warning: {result.source}: {w}", markup=False, style="yellow")

    def finished(self, report):
        self.heartbeat.stop()
        self.settle(report)
        self._beat()
        self.progress.stop()
        self.close()
        s = report.summary()
        self.console.print(
            f"gvr: {s['done']} done, {s['skipped']} skipped, {s['failed']} failed; "
            f"{s['frames']} frames in {s['seconds']:.1f} s ({s['fps']:.2f} fps)",
            markup=False,
            highlight=False,
        )

    def close(self):
        super().close()
        self.progress.stop()
