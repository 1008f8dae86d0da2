"""The frame every ``gvr`` command runs in: its progress output, its signal handling, one-line
errors and the exit code.

Apart from ``gvrcli.cli`` so the commands there read as what they take and which library call
they make; how a run is watched, stopped and ended is the same for all of them, and lives here.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from pathlib import Path

import typer

from gvrbase.errors import error_line
from gvrcli.errors import EXIT_SOME_FAILED, EXIT_USAGE, GvrError, exit_with_error


def install_signal_handlers(cancel: threading.Event) -> dict:
    """SIGINT/SIGTERM stop the batch cleanly (partials removed, claims released, exit 130/143).
    A second signal exits at once; the next run cleans up what that leaves."""
    received: dict = {"signal": 0}

    def handler(signum, frame):
        if received["signal"]:
            os._exit(128 + signum)
        received["signal"] = signum
        cancel.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return received


def fail(message: str, as_json: bool, code: int) -> None:
    """End the command: one ``gvr: error:`` line (and with ``--json`` a summary event), exit ``code``."""
    exit_with_error(message, code, as_json)


def make_events(as_json: bool, interval: float, openjd: bool, action: str):
    """Rich on a terminal, plain lines for logs, JSON lines with --json."""
    from gvrcli.progress import JsonEvents, PlainEvents, RichEvents

    if not (math.isfinite(interval) and interval >= 0):
        fail(f"--progress-interval must be a finite number >= 0 (got {interval})", as_json, EXIT_USAGE)
    if as_json:
        return JsonEvents(interval=interval)
    if sys.stdout.isatty() and os.environ.get("TERM") != "dumb":
        return RichEvents()
    return PlainEvents(interval=interval, openjd=openjd, action=action)


def run_batch_command(paths: list[str], usage: str, as_json: bool, events, run, after=None) -> None:
    """A batch command's frame: INPUT... then one directory (last), signals, one-line errors,
    the exit code. ``run(inputs, directory, cancel)`` builds the options and calls the library."""
    if len(paths) < 2:
        fail(f"give at least one input and the directory ({usage})", as_json, EXIT_USAGE)
    *inputs, directory = map(Path, paths)
    cancel = threading.Event()
    received = install_signal_handlers(cancel)
    report = guarded(lambda: run(inputs, directory, cancel), events, as_json)
    finish(report, events, received, after)


def guarded(run, events, as_json: bool):
    """``run()``'s result; an error it raises ends the command with one line (and the JSON
    summary) and its exit code, a fault no check foresaw as an internal error (exit 1)."""
    try:
        return run()
    except GvrError as e:
        events.close()  # no progress line after the error's summary
        fail(str(e), as_json, e.exit_code)
    except Exception as e:  # a fault no check foresaw: still one line, and the JSON summary
        events.close()
        fail(f"internal error ({type(e).__name__}: {e})", as_json, EXIT_SOME_FAILED)


def finish(report, events, received: dict, after=None) -> None:
    """Report how the run ended and exit with its code."""
    report.interrupted = received["signal"]
    if report.fatal:
        sys.stderr.write(error_line(report.fatal) + "\n")
    if report.interrupted:
        sys.stderr.write(f"gvr: stopped by {signal.Signals(report.interrupted).name}; partial outputs removed\n")
    events.finished(report)
    if after is not None:
        after(report)
    raise typer.Exit(report.exit_code)
