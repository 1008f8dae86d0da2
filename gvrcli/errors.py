"""Failures the runtime reports, each carrying the exit code a farm script acts on.

0 all done · 1 some inputs failed (the others were processed) · 2 usage or model error, nothing
touched · 75 (EX_TEMPFAIL) a fault a retry may cure · 130/143 stopped by SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import sys

from gvrbase.errors import error_line, error_summary

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


def exit_with_error(message: str, code: int = EXIT_USAGE, as_json: bool = False) -> None:
    """End a command with one ``gvr: error:`` line on stderr (and, with ``--json``, the summary event
    on stdout) and ``code``. Newlines in the message (file names may hold them) are escaped."""
    sys.stderr.write(error_line(message) + "\n")
    sys.stderr.flush()
    if as_json:
        sys.stdout.write(json.dumps(error_summary(message, code)) + "\n")
        sys.stdout.flush()
    raise SystemExit(code)
