"""Atomic outputs: write under a hidden partial name in the output's folder, rename when complete.

A reader (or a rerun deciding what to skip) sees either no output or a complete one. The partial
sits in the same folder as the output so the final rename never crosses filesystems, and keeps the
output's extension last so FFmpeg picks the same container for it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

PARTIAL_MARK = ".gvr-partial-"
TOKEN_CHARS = 12
NAME_MAX = 255  # bytes in one file name (Linux, macOS, NTFS, NFS)


def _name_bytes(name: str) -> int:
    return len(os.fsencode(name))


def _partial_prefix(output: Path) -> str:
    """What every partial of ``output`` starts with. The partial must fit in NAME_MAX even when
    the output's own name nearly fills it: then the stem is shortened and a hash of the full name
    keeps outputs that share a long prefix apart."""
    prefix = f".{output.stem}{PARTIAL_MARK}"
    room = NAME_MAX - TOKEN_CHARS - _name_bytes(output.suffix)
    if _name_bytes(prefix) <= room:
        return prefix
    digest = hashlib.sha1(os.fsencode(output.name)).hexdigest()[:8]
    stem = output.stem
    while stem and _name_bytes(f".{stem}~{digest}{PARTIAL_MARK}") > room:
        stem = stem[:-1]
    return f".{stem}~{digest}{PARTIAL_MARK}"


def partial_path(output: Path, token: str) -> Path:
    return output.with_name(f"{_partial_prefix(output)}{token[:TOKEN_CHARS]}{output.suffix}")


def is_reserved_name(name: str) -> bool:
    """Names gvr keeps for itself inside OUTPUT_DIR: an output may not be called like a partial."""
    return PARTIAL_MARK in name


def partials_of(output: Path) -> list[Path]:
    """Partial files left for ``output`` by any worker (call only while holding its claim). Only
    names of exactly the partial form count: prefix, a token, the output's extension."""
    pattern = re.compile(re.escape(_partial_prefix(output)) + f"[0-9a-f]{{{TOKEN_CHARS}}}" + re.escape(output.suffix))
    try:
        with os.scandir(output.parent) as it:
            return [output.parent / e.name for e in it if pattern.fullmatch(e.name)]
    except OSError:
        return []


def remove_partials(output: Path) -> int:
    removed = 0
    for p in partials_of(output):
        try:
            p.unlink()
            removed += 1
        except OSError:
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


def make_dirs(folder: Path) -> None:
    """``mkdir -p`` without recursion (``os.makedirs`` recurses once per missing level, and an
    input tree a thousand folders deep is mirrored into OUTPUT_DIR)."""
    missing = []
    d = Path(folder)
    while not d.is_dir():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            if not d.is_dir():
                raise


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
