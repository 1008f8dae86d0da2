"""Failures the runtime reports, each carrying the exit code a farm script acts on.

0 all done · 1 some inputs failed (the others were processed) · 2 usage or model error, nothing
touched · 75 (EX_TEMPFAIL) a fault a retry may cure · 130/143 stopped by SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import sys

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_RETRY = 75  # sysexits.h EX_TEMPFAIL: schedulers treat it as "requeue"
EXIT_SIGINT = 130  # 128 + SIGINT, the shell convention
EXIT_SIGTERM = 143  # 128 + SIGTERM


class GvrError(Exception):
    """An error with a one-line message meant for the user, and the exit code it maps to."""

    exit_code = EXIT_USAGE


class UsageError(GvrError):
    """Bad options or paths: refused before any video is touched."""


class ModelError(GvrError):
    """The model file is missing, unreadable, or its manifest is missing or inconsistent."""


class RetryableError(GvrError):
    """A fault a retry may cure: a requested GPU provider did not load, the device ran out of memory."""

    exit_code = EXIT_RETRY


class InputError(GvrError):
    """One input cannot be processed (broken, unsupported, too large). The batch goes on."""

    exit_code = EXIT_SOME_FAILED


class StalledError(InputError):
    """The per-file watchdog saw no progress for too long (a decoder hanging on a hostile file)."""


class Cancelled(Exception):
    """SIGINT/SIGTERM arrived: stop, remove partial outputs, release claims."""


FIRST_LINE_CHARS = 200  # a converter's or runtime's message can run to pages; one line is the report


def first_line(e: BaseException) -> str:
    """A foreign exception (FFmpeg, ONNX Runtime, OpenVINO, the ONNX exporter, the OS) as one line
    for a one-line error: an OS or FFmpeg error's own words (``strerror``: the caller names the
    file), else the exception's type and the first line of its message, at most 200 characters.
    The type stays because a bare message can mean nothing alone (``KeyError: 'lr'``)."""
    strerror = getattr(e, "strerror", None)
    if isinstance(strerror, str) and strerror.strip():
        text = strerror.strip().splitlines()[0]
    else:
        message = str(e).strip()
        text = f"{type(e).__name__}: {message.splitlines()[0]}" if message else type(e).__name__
    return text if len(text) <= FIRST_LINE_CHARS else text[: FIRST_LINE_CHARS - 1] + "…"


def exit_with_error(message: str, code: int = EXIT_USAGE, as_json: bool = False) -> None:
    """End a command with one ``gvr: error:`` line on stderr (and, with ``--json``, the summary event
    on stdout) and ``code``. Newlines in the message (file names may hold them) are escaped."""
    line = str(message).replace("\r", "\\r").replace("\n", "\\n")
    sys.stderr.write(f"gvr: error: {line}\n")
    sys.stderr.flush()
    if as_json:
        sys.stdout.write(json.dumps({"event": "summary", "error": message, "exit_code": code}) + "\n")
        sys.stdout.flush()
    raise SystemExit(code)
