"""Nothing half-written: every artefact is written under a temporary name beside its final path
and renamed into place only when complete (a rename within one folder is atomic)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from export.errors import ExportError


def check_writable(out: Path, force: bool) -> None:
    """Refuse an existing output without ``force`` and a folder we cannot write into, before any work."""
    if out.exists() and not force:
        raise ExportError(f"{out} already exists (use --force to replace it)")
    parent = out.parent if out.parent != Path("") else Path(".")
    probe = parent
    while not probe.exists():  # the nearest existing ancestor is what must be writable
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {out}: {probe} is not a writable folder")


@contextlib.contextmanager
def staged(out: Path, force: bool, is_dir: bool = False):
    """Yield a temporary path next to ``out``; on success move it onto ``out``, else delete it."""
    check_writable(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; a published folder gets the usual mode
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e}") from None
    stage = tmp if is_dir else tmp / out.name
    try:
        yield stage
        _replace(stage, out, force)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace(stage: Path, out: Path, force: bool) -> None:
    if out.exists():
        if not force:
            raise ExportError(f"{out} already exists (use --force to replace it)")
        if out.is_dir() and not out.is_symlink():
            # Keep the old folder until the new one is in place.
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(stage, out)
            shutil.rmtree(old, ignore_errors=True)
            return
    if stage.is_dir():
        if out.exists():
            out.unlink()
        os.replace(stage, out)
        return
    # A file plus any sidecars (ONNX external data) written beside it in the stage folder.
    for extra in stage.parent.iterdir():
        if extra != stage:
            os.replace(extra, out.parent / extra.name)
    os.replace(stage, out)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
