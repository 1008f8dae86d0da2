"""The one error type the exporter raises for bad input: a one-line message and exit code 2."""

from __future__ import annotations


class ExportError(Exception):
    """A request the exporter refuses (unknown config, wrong checkpoint, unwritable or existing
    output, a flag the target does not take) or an export that fails its own checks.

    ``str(err)`` is one line meant for the user; the CLI prints it and exits with ``exit_code``.
    """

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # one line, whatever the cause said


class VerifyError(ExportError):
    """A backend's output is outside its tolerance against PyTorch."""

    exit_code = 1
