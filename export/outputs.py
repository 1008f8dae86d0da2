"""Where the exporter may write, and how a refusal reads: an existing output is refused without
``--force``, an unwritable folder before any work starts. The writing itself is
``gvrbase.atomic``'s, the same atomic outputs the runtime writes (staged beside the output, flushed,
renamed, links never followed), so an artefact is never seen half-written, whichever side wrote it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from export.errors import ExportError
from gvrbase import atomic
from gvrbase.errors import first_line


def check_writable(out: Path, force: bool) -> None:
    """Refuse an existing output without ``force`` and a folder we cannot write into, before any work."""
    if os.path.lexists(out) and not force:
        raise ExportError(_exists(out))
    parent = out.parent if out.parent != Path("") else Path(".")
    probe = parent
    while not probe.exists():  # the nearest existing ancestor is what must be writable
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {out}: {probe} is not a writable folder")


@contextlib.contextmanager
def staged(out: Path, force: bool, is_dir: bool = False):
    """Yield the path to write ``out`` at (a file, plus any companions written beside it, or a
    folder); on success it becomes ``out``, else nothing is left."""
    check_writable(out, force)
    with _refusals(out):
        if is_dir:
            with atomic.staged_folder(out, replace=force) as stage:
                yield stage
        else:
            with atomic.staged(out.parent, replace=force) as stage:
                yield stage / out.name


@contextlib.contextmanager
def staged_into(folder: Path, force: bool):
    """Yield a folder to write several files into; on success they all land in ``folder``, else none."""
    with _refusals(folder), atomic.staged(folder, replace=force) as stage:
        yield stage


@contextlib.contextmanager
def _refusals(out: Path):
    """The disk's refusals (another writer got there first, no space, no permission) as ExportError."""
    try:
        yield
    except FileExistsError as e:
        raise ExportError(_exists(e.filename or out)) from None
    except OSError as e:
        raise ExportError(f"cannot write {out}: {first_line(e)}") from None


def _exists(path) -> str:
    return f"{path} already exists (use --force to replace it)"
