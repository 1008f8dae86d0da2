"""Atomic outputs, for the runtime and the exporter alike: nothing half-written is ever seen.

Every output is written under a hidden name in its own destination folder and renamed into place
only when complete, so a reader (or a rerun deciding what to skip) sees no output or a whole one:

* **same folder, so same filesystem**: partials and staging folders sit beside the output, so the
  final ``rename`` never crosses filesystems (where it would be a copy, visible half-done);
* **flushed before renamed**: each file is ``fsync``ed before its rename and the folder after it,
  so a power cut cannot leave a complete-looking name over missing blocks (on ext4/XFS a rename
  can reach the disk before the data it names);
* **links are replaced, never followed**: ``os.replace`` swaps the name itself, and an existing
  folder is moved aside whole (into the staging folder, deleted with it), so a link placed at the
  destination cannot steer a write, or a deletion, into another tree;
* **an existing folder is kept until its replacement is in place**, then removed;
* **names fit**: a partial's name stays within NAME_MAX even for an output whose own name nearly
  fills it, and keeps the output's extension last so FFmpeg picks the same container.

``gvr upscale`` writes each output to ``partial_path`` under its claim and ``publish``es it; the
exporter stages a graph with its companions (``staged``) or an OpenVINO IR folder
(``staged_folder``). Both import this module from the ground floor (neither imports the other for
it), so the two cannot drift apart.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from gvrbase.filemode import publish_mode

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
    """Make the finished partial the output: give it the user's default mode (0666 & ~umask: a
    writer such as safetensors makes 0600), flush it to disk, rename, flush the folder entry."""
    publish_mode(partial)
    fsync(partial)
    os.replace(partial, output)
    fsync(output.parent)


@contextlib.contextmanager
def written(output: Path):
    """Yield a fresh partial path beside ``output`` for one writer to fill (a checkpoint, a cache
    file); when the block completes it is ``publish``ed as ``output``, when it raises it is removed.
    The partial is created empty and exclusively (``O_EXCL``), so no other name is ever written."""
    output = Path(output)
    while True:
        partial = partial_path(output, os.urandom(TOKEN_CHARS // 2).hex())
        try:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            break
        except FileExistsError:
            continue
    try:
        yield partial
        publish(partial, output)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to disk. Some systems refuse to open or flush a
    folder (Windows, some network filesystems); the rename before it is still atomic, only not yet
    durable, so for a folder that is not an error."""
    folder = os.path.isdir(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if folder:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """``fsync`` every regular file and folder under ``root`` (links are not followed)."""
    for dirpath, _, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            if stat.S_ISREG(os.lstat(os.path.join(dirpath, name)).st_mode):
                fsync(Path(dirpath) / name)
        fsync(Path(dirpath))


@contextlib.contextmanager
def staged(folder: Path, replace: bool = False):
    """Yield a hidden, empty staging folder inside ``folder``; when the block completes, every file
    written into it (a graph and its companions) is flushed and renamed into ``folder``, all or
    none. FileExistsError names one that exists already, unless ``replace``. The staging folder is
    deleted afterwards, whatever happened."""
    holder = _holder(Path(folder), "stage")
    try:
        new = holder / "new"
        new.mkdir()
        yield new
        names = sorted(os.listdir(new))
        if not replace:
            for name in names:  # checked before any rename: nothing lands unless everything can
                _refuse_existing(Path(folder) / name)
        fsync_tree(new)
        _LIVE.discard(holder)  # publishing: a signal now must not remove what is being replaced
        for name in names:
            _replace(new / name, Path(folder) / name, holder, replace)
        fsync(Path(folder))
    finally:
        _drop(holder)


@contextlib.contextmanager
def staged_folder(output: Path, replace: bool = False):
    """Yield a new, empty folder to fill; when the block completes it is flushed and becomes
    ``output`` in one rename (an existing ``output`` is moved aside first, and removed only once
    the new one is in place). FileExistsError if ``output`` exists, unless ``replace``."""
    output = Path(output)
    holder = _holder(output.parent, output.name)
    try:
        new = holder / "new"
        new.mkdir()  # made with the usual mode (the holder is mkdtemp's private 0700)
        yield new
        if not replace:
            _refuse_existing(output)
        fsync_tree(new)
        _LIVE.discard(holder)  # publishing: a signal now must not remove what is being replaced
        _replace(new, output, holder, replace)
        fsync(output.parent)
    finally:
        _drop(holder)


# The staging folders of ``staged``/``staged_folder`` blocks still open in this process: what a
# signal handler removes before exiting (``remove_staging``), when unwinding is not to be trusted
# (a signal raised inside an exporter's C++ callback can be swallowed there).
_LIVE: set[Path] = set()


def _holder(folder: Path, name: str) -> Path:
    """A hidden private folder in ``folder`` (so on the destination's filesystem) for the new
    files and for anything they replace; ``mkdir -p`` of ``folder`` first."""
    make_dirs(folder)
    holder = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=folder))
    _LIVE.add(holder)
    return holder


def _drop(holder: Path) -> None:
    shutil.rmtree(holder, ignore_errors=True)
    _LIVE.discard(holder)


def remove_staging() -> None:
    """Remove every staging folder this process still has open (from a signal handler, then exit).
    Nothing was renamed into place from them yet, so nothing published is lost."""
    for holder in list(_LIVE):
        _drop(holder)


def _refuse_existing(path: Path) -> None:
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "already exists", str(path))


def _replace(new: Path, target: Path, trash: Path, replace: bool) -> None:
    """Rename ``new`` onto ``target``. A file over a file (or a link) is one atomic rename; an
    existing folder, or anything of the other kind, is first moved into ``trash`` whole: never
    emptied in place, never followed if it is a link."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not replace:
        _refuse_existing(target)
    if mode is not None and (stat.S_ISDIR(mode) or new.is_dir()):
        os.replace(target, trash / f"old.{target.name}")
    os.replace(new, target)


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
