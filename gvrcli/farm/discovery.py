"""Finding the inputs: walk directories, filter by globs, and refuse output dirs inside inputs.

Directories are walked recursively (``--no-recursive`` for one level) in sorted order so every
worker sees the same list. Symbolic links are not followed unless asked: a link loop cannot hang
the walk and a link pointing outside the input root cannot pull in files nobody meant to include.
Hidden entries (names starting with ``.``) are skipped: the runtime's own partial and lock files
are hidden, as are most tools' sidecars.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gvrcli.errors import UsageError


@dataclass(frozen=True)
class Candidate:
    """A file that may be a video: where it is, and where it sits relative to its input root."""

    source: Path
    relative: Path  # mirrored under OUTPUT_DIR
    explicit: bool  # named on the command line (not found by a walk)


def _matches(relative: Path, patterns: tuple[str, ...]) -> bool:
    # PurePosixPath.match anchors at the right, so "*.mp4" matches at any depth and
    # "shots/*.mov" matches that folder's files.
    rel = PurePosixPath(relative.as_posix())
    return any(rel.match(p) or rel.name == p for p in patterns)


def find_candidates(
    inputs: list[Path],
    *,
    recursive: bool = True,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    follow_symlinks: bool = False,
) -> list[Candidate]:
    """Every file under ``inputs`` that passes the globs, in a deterministic order."""
    found: list[Candidate] = []
    for root in inputs:
        if root.is_dir():
            found.extend(_walk(root, recursive=recursive, follow_symlinks=follow_symlinks))
        elif root.exists():
            found.append(Candidate(root, Path(root.name), explicit=True))
        else:
            raise UsageError(f"{root}: no such file or directory")
    selected = [
        c
        for c in found
        if (c.explicit or not include or _matches(c.relative, include)) and not _matches(c.relative, exclude)
    ]
    return selected


def _walk(root: Path, *, recursive: bool, follow_symlinks: bool) -> list[Candidate]:
    out: list[Candidate] = []
    seen_dirs: set[tuple[int, int]] = set()  # (st_dev, st_ino): a followed link loop ends here

    def visit(directory: Path) -> None:
        try:
            st = directory.stat()
        except OSError:
            return
        if (st.st_dev, st.st_ino) in seen_dirs:
            return
        seen_dirs.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            return  # unreadable directory: nothing we can list
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink() and not follow_symlinks:
                continue
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir(follow_symlinks=follow_symlinks)
                is_file = entry.is_file(follow_symlinks=follow_symlinks)
            except OSError:
                continue
            if is_dir:
                if recursive:
                    visit(path)
            elif is_file:
                out.append(Candidate(path, path.relative_to(root), explicit=False))

    visit(root)
    return out


def check_output_dir(inputs: list[Path], output_dir: Path) -> None:
    """Refuse an output directory that is, or lies inside, an input directory (or is a named file's folder).

    Inside a walked directory the outputs would become inputs of the next run; beside a named
    file they would share its folder.
    """
    out = output_dir.resolve()
    for path in inputs:
        if path.is_dir():
            folder = path.resolve()
            inside = out == folder or folder in out.parents
        else:
            folder = path.resolve().parent
            inside = out == folder
        if inside:
            raise UsageError(
                f"output directory {output_dir} is inside input directory {folder}: "
                "gvr never writes into an input directory"
            )
    if out.exists() and not out.is_dir():
        raise UsageError(f"output directory {output_dir} exists and is not a directory")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"output directory {output_dir} is not writable")
