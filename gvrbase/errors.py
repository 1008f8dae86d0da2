"""One-line error text, for every floor: the exporter's refusals and the runtime's failures alike.

A converter's or a runtime's message can run to pages, and a file name may hold a newline; what a
user or a farm script reads is one line (``gvr: error: ...``, ``error: ...``).
"""

from __future__ import annotations

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
