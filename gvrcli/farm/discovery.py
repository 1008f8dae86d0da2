"""Finding the inputs: walk directories, filter by globs, and refuse output dirs inside inputs.

Directories are walked recursively (``--no-recursive`` for one level) in sorted order so every
worker sees the same list. Symbolic links are not followed unless asked: a link loop cannot hang
the walk and a link pointing outside the input root cannot pull in files nobody meant to include.
Hidden entries (names starting with ``.``) are skipped: the runtime's own partial and lock files
are hidden, as are most tools' sidecars. So are prompt sidecars (``NAME.text.safetensors``,
``gvrcli.inference.text``): they belong to the video beside them and are never inputs themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gvrcli.errors import UsageError
from gvrcli.farm.claims import LOCK_DIR_NAME
from gvrcli.inference.text import is_sidecar


@dataclass(frozen=True)
class Candidate:
    """A file that may be a video: where it is, and where it sits relative to its input root."""

    source: Path
    relative: Path  # mirrored under OUTPUT_DIR
    explicit: bool  # named on the command line (not found by a walk)
    root: Path | None = None  # the input directory it was found in (None when named explicitly)


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
    output_dir: Path | None = None,
) -> list[Candidate]:
    """Every file under ``inputs`` that passes the globs, in a deterministic order. A walk never
    enters ``output_dir`` (reached through a followed link, its outputs would become inputs)."""
    out_real = os.path.realpath(output_dir) if output_dir is not None else None
    found: list[Candidate] = []
    for root in inputs:
        if root.is_dir():
            found.extend(_walk(root, recursive=recursive, follow_symlinks=follow_symlinks, out_real=out_real))
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


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk(root: Path, *, recursive: bool, follow_symlinks: bool, out_real: str | None = None) -> list[Candidate]:
    """Depth-first, sorted, iterative (a tree thousands of levels deep cannot exhaust the stack).

    Non-directory entries that are not regular files (FIFOs, sockets, devices) are candidates too:
    probing refuses them without opening them, so one with a video extension is a failed input.
    """
    out: list[Candidate] = []
    seen_dirs: set[tuple[int, int]] = set()  # (st_dev, st_ino): a followed link loop ends here
    root_in_output = out_real is not None and _inside(os.path.realpath(root), out_real)

    def entries_of(directory: Path) -> list:
        try:
            st = directory.stat()
        except OSError:
            return []
        if (st.st_dev, st.st_ino) in seen_dirs:
            return []
        seen_dirs.add((st.st_dev, st.st_ino))
        if directory != root and out_real is not None and not root_in_output:
            if _inside(os.path.realpath(directory), out_real):
                return []  # OUTPUT_DIR reached through a link: not an input
        try:
            with os.scandir(directory) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError:
            return []  # unreadable directory: nothing we can list

    stack = [iter(entries_of(root))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if entry.name.startswith(".") or is_sidecar(Path(entry.name)):
            continue
        link = entry.is_symlink()
        if link and not follow_symlinks:
            continue
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir(follow_symlinks=follow_symlinks)
            is_file = entry.is_file(follow_symlinks=follow_symlinks)
        except OSError:
            continue
        if is_dir:
            if recursive:
                stack.append(iter(entries_of(path)))
        elif is_file or not link:  # a regular file, or a FIFO/socket/device (a dangling link is not)
            if link and out_real is not None and not root_in_output and _inside(os.path.realpath(path), out_real):
                continue  # a link to one of our own outputs
            out.append(Candidate(path, path.relative_to(root), explicit=False, root=root))
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
    lock_dir = out / LOCK_DIR_NAME
    if os.path.lexists(lock_dir) and not (lock_dir.is_dir() and not lock_dir.is_symlink()):
        raise UsageError(f"{output_dir / LOCK_DIR_NAME} exists and is not a folder (gvr keeps its locks there); remove it")


class Territory:
    """Where gvr may write and delete: inside OUTPUT_DIR's real path, and never inside an input
    directory or onto an input file (real paths, so symbolic links and ``..`` cannot sneak a
    write past the check). Every output, and so its partial and the folders made for it, is
    checked when the run is planned, and again just before it is written."""

    def __init__(self, output_dir: Path, inputs: list[Path], candidates: list[Candidate] = ()):
        self.output_dir = output_dir
        self.root = os.path.realpath(output_dir)
        self.input_dirs = [os.path.realpath(p) for p in inputs if p.is_dir()]
        self.input_files = {os.path.realpath(c.source) for c in candidates}

    def why_not(self, path: Path) -> str | None:
        """None when ``path`` may be written, else why not (one phrase)."""
        real = os.path.realpath(path)
        for folder in self.input_dirs:
            if _inside(real, folder):
                return f"it would land inside input directory {folder}: gvr never writes into an input directory"
        if real in self.input_files:
            return "it would replace an input file"
        if real == self.root or not _inside(real, self.root):
            return f"it would land outside {self.output_dir} (at {real}, through a symbolic link)"
        return None
