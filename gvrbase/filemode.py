"""Files gvr writes get the permissions every other tool gives them: ``0o666 & ~umask``.

Atomic writes stage a file under a temporary name and rename it into place. ``tempfile.mkstemp``
creates that file with mode 0600, and safetensors' ``save_file`` writes 0600 too, so a checkpoint
or a ``--save-latents`` output would be private while the video beside it is 0644. ``publish_mode``
gives the staged file the mode ``open()`` would have given it, before the rename.

On the ground floor: the model's checkpoints (``models.checkpoint``) and the atomic outputs of the
exporter and the runtime all use it.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_cached: int | None = None


def umask() -> int:
    """The process's umask, read without changing it where the OS says it (Linux 4.7+:
    ``/proc/self/status``); elsewhere set and restored once, under a lock, and remembered
    (``os.umask`` has no read-only form, and setting it briefly races with other threads)."""
    global _cached
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _lock:
        if _cached is None:
            _cached = os.umask(0o022)
            os.umask(_cached)
        return _cached


def default_mode() -> int:
    """The mode a new regular file gets from ``open()``: 0o666 less the umask (0644 under umask 022)."""
    return 0o666 & ~umask()


def publish_mode(path: str | os.PathLike) -> None:
    """Give the staged file at ``path`` (a file gvr made) the mode a plain ``open()`` would have.
    Opened without following a link and without blocking (a FIFO put in its place), then changed
    through the descriptor, so the mode lands on the file gvr wrote or nowhere. A filesystem that
    refuses modes (SMB/CIFS mounts, some FUSE) keeps its own: the output is still written."""
    if os.name != "posix":  # Windows: only the read-only bit exists, and a new file has it clear
        return
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.fchmod(fd, default_mode())
    except OSError:  # EPERM/ENOTSUP where the filesystem has no Unix modes
        pass
    finally:
        os.close(fd)
