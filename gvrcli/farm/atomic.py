"""Atomic outputs: write under a hidden partial name in the output's folder, rename when complete.

A reader (or a rerun deciding what to skip) sees either no output or a complete one. The partial
sits in the same folder as the output so the final rename never crosses filesystems, and keeps the
output's extension last so FFmpeg picks the same container for it.
"""

from __future__ import annotations

import os
from pathlib import Path

PARTIAL_MARK = ".gvr-partial-"


def partial_path(output: Path, token: str) -> Path:
    return output.with_name(f".{output.stem}{PARTIAL_MARK}{token[:12]}{output.suffix}")


def partials_of(output: Path) -> list[Path]:
    """Partial files left for ``output`` by any worker (call only while holding its claim)."""
    prefix = f".{output.stem}{PARTIAL_MARK}"
    try:
        return [p for p in output.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(output.suffix)]
    except OSError:
        return []


def remove_partials(output: Path) -> int:
    removed = 0
    for p in partials_of(output):
        try:
            p.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def publish(partial: Path, output: Path) -> None:
    """Make the finished partial the output: flush it to disk, rename, flush the folder entry."""
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, output)
    try:
        fd = os.open(output.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on directories; the rename itself is still atomic
    finally:
        os.close(fd)


def remove_empty_dirs(top: Path, leaf: Path) -> None:
    """Remove ``leaf`` and its parents up to (not including) ``top`` while they are empty."""
    top = top.resolve()
    d = leaf.resolve()
    while d != top and top in d.parents:
        try:
            d.rmdir()
        except OSError:
            return
        d = d.parent
