"""One-line error text, for every floor: the exporter's refusals and the runtime's failures alike.

A converter's or a runtime's message can run to pages, and a file name may hold a newline; what a
user or a farm script reads is one line (``gvr: error: ...``, ``error: ...``).
"""

from __future__ import annotations

import re

FIRST_LINE_CHARS = 200  # a converter's or runtime's message can run to pages; one line is the report
# OpenVINO stacks "Exception from src/...cpp:117:" lines above its message: where, not what.
_WHERE = re.compile(r"^Exception from \S+:\d+:$")


def first_line(e: BaseException) -> str:
    """A foreign exception (FFmpeg, ONNX Runtime, OpenVINO, the ONNX exporter, the OS) as one line
    for a one-line error: an OS or FFmpeg error's own words (``strerror``: the caller names the
    file), else the exception's type and the first line of its message (past OpenVINO's
    "Exception from FILE:LINE:" lines), at most 200 characters.
    The type stays because a bare message can mean nothing alone (``KeyError: 'lr'``)."""
    strerror = getattr(e, "strerror", None)
    if isinstance(strerror, str) and strerror.strip():
        text = strerror.strip().splitlines()[0]
    else:
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
        said = [line for line in lines if not _WHERE.match(line)] or lines  # OpenVINO's "where" lines only if nothing else
        text = f"{type(e).__name__}: {said[0]}" if said else type(e).__name__
    return text if len(text) <= FIRST_LINE_CHARS else text[: FIRST_LINE_CHARS - 1] + "…"


def one_line(text: str) -> str:
    """``text`` kept on one line for the scripts that parse a report: file names may hold newlines
    and carriage returns, so they are escaped (``\\n``, ``\\r``), not dropped."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def error_line(message: object) -> str:
    """The one line (no newline at its end) a refused or failed command writes to stderr:
    ``gvr: error: MESSAGE``, whichever command and floor the message comes from."""
    return f"gvr: error: {one_line(str(message))}"


def error_summary(message: object, code: int) -> dict:
    """The JSON ``summary`` event that goes with ``error_line`` on stdout under ``--json``."""
    return {"event": "summary", "error": message, "exit_code": code}
