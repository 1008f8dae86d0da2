"""Claims: lock files that let several workers share one output directory.

A worker claims an output by creating ``OUTPUT_DIR/.gvr-locks/<hash>.lock`` with O_EXCL (atomic
on local filesystems and NFSv3+). The lock holds the owner's pid, host, a random token and the
output's path *relative to OUTPUT_DIR*; the hash is of that relative path too, so workers that
reach one OUTPUT_DIR by different paths (a symlink, a bind mount, another working directory) see
each other's locks. A heartbeat thread refreshes the lock's mtime. A lock is stale when its owner
is a dead process on this host, or when its heartbeat is older than ``stale_after`` (owners on
other hosts). A stale lock is broken by renaming it to a unique name first, so of two workers
breaking it only one wins. The folder is removed when the last lock in it is released.

Everything in the folder is treated as hostile: locks are read without following links and
without blocking (a FIFO planted there cannot hang a worker), at most ``MAX_LOCK_BYTES``, and
validated field by field. Anything that is not a lock gvr could have written is stale at once
(an empty file, which a writer may be about to fill, only once its mtime is old).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gvrbase.atomic import make_dirs

LOCK_DIR_NAME = ".gvr-locks"
# The heartbeat refreshes every 10 s; a lock untouched for 2 minutes has missed 12 beats, far
# beyond a busy NFS server's attribute-cache delays, so its owner is gone.
HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 120.0
MAX_LOCK_BYTES = 64 * 1024
_PID_MAX = 1 << 22  # Linux's largest pid_max

HOST = socket.gethostname()


class ClaimError(OSError):
    """The lock folder cannot hold locks (it is a file, a link, unwritable)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def read_lock(path: Path) -> dict | None:
    """A lock's body as written by gvr, or None when ``path`` is anything else (gone, a FIFO, a
    link, a folder, too large, not JSON, wrong types). Never blocks, never follows a link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, MAX_LOCK_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_LOCK_BYTES:
        return None
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    pid, host, token = body.get("pid"), body.get("host"), body.get("token")
    if type(pid) is not int or not 0 < pid < _PID_MAX or not isinstance(host, str) or not isinstance(token, str):
        return None
    return body


def relative_key(output_dir: Path, output: Path) -> str | None:
    """``output``'s path relative to ``output_dir`` as POSIX text, or None when it is not a plain
    path strictly inside it (absolute elsewhere, ``..``, NUL, empty)."""
    try:
        rel = output.relative_to(output_dir) if output.is_absolute() == output_dir.is_absolute() else None
    except ValueError:
        rel = None
    if rel is None:
        return None
    text = rel.as_posix()
    return text if _plain_relative(text) else None


def _plain_relative(text: object) -> bool:
    if not isinstance(text, str) or not text or "\0" in text or text.startswith("/"):
        return False
    parts = PurePosixPath(text).parts
    return bool(parts) and all(p not in ("", ".", "..") for p in parts) and parts[0] != LOCK_DIR_NAME


@dataclass
class Claim:
    """A held lock on one output. ``release()`` removes it (only if it is still ours)."""

    path: Path
    token: str

    def owned(self) -> bool:
        body = read_lock(self.path)
        return body is not None and body.get("token") == self.token

    def release(self) -> None:
        if self.owned():
            try:
                self.path.unlink()
            except OSError:
                pass
        try:
            self.path.parent.rmdir()  # succeeds only when no other worker holds a lock
        except OSError:
            pass


@dataclass
class ClaimBoard:
    """All claims of one worker in one output directory, with one heartbeat thread for them all."""

    output_dir: Path
    stale_after: float = STALE_AFTER_SECONDS
    heartbeat: float = HEARTBEAT_SECONDS
    _held: dict[Path, Claim] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def lock_dir(self) -> Path:
        return self.output_dir / LOCK_DIR_NAME

    def lock_path(self, output: Path) -> Path:
        key = relative_key(self.output_dir, output)
        if key is None:
            raise ClaimError(errno.EINVAL, f"{output} is not inside the output directory {self.output_dir}")
        return self._lock_path_for(key)

    def _lock_path_for(self, key: str) -> Path:
        return self.lock_dir / (hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:20] + ".lock")

    def check_lock_dir(self) -> None:
        """Raise ClaimError unless the lock folder is absent or a real folder (not a file, FIFO or link)."""
        try:
            st = os.lstat(self.lock_dir)
        except FileNotFoundError:
            return
        except OSError as e:
            raise ClaimError(e.errno, f"{self.lock_dir}: {e.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise ClaimError(errno.ENOTDIR, f"{self.lock_dir} exists and is not a folder (gvr keeps its locks there)")

    def _ensure_lock_dir(self) -> None:
        try:
            make_dirs(self.output_dir)
            os.mkdir(self.lock_dir)
        except FileExistsError:
            pass
        except OSError as e:
            raise ClaimError(e.errno, f"cannot create {self.lock_dir} ({e.strerror})") from None
        self.check_lock_dir()

    def try_claim(self, output: Path) -> Claim | None:
        """Claim ``output``, breaking a stale lock; None when a live worker holds it. Raises
        ClaimError when the lock folder cannot hold locks."""
        key = relative_key(self.output_dir, output)
        if key is None:
            raise ClaimError(errno.EINVAL, f"{output} is not inside the output directory {self.output_dir}")
        path = self._lock_path_for(key)
        for _ in range(3):  # a stale lock broken under us may need a second try
            token = uuid.uuid4().hex
            body = json.dumps({"pid": os.getpid(), "host": HOST, "token": token, "output": key, "started": time.time()})
            self._ensure_lock_dir()
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                if self._break_if_stale(path):
                    continue
                return None
            except FileNotFoundError:
                continue  # the folder was removed by a releasing worker between mkdir and open
            except OSError as e:
                raise ClaimError(e.errno, f"cannot create a lock in {self.lock_dir} ({e.strerror})") from None
            self._write_body(fd, path, body)
            claim = Claim(path, token)
            with self._lock:
                self._held[path] = claim
            self._start_heartbeat()
            return claim
        return None

    def _write_body(self, fd: int, path: Path, body: str) -> None:
        """Fill a lock just created. If that fails (a full disk), the empty lock is removed at once
        (it is ours: O_EXCL made it) with its folder if that is now empty, and the file fails with
        ClaimError: an empty lock left behind would look like one being written for two minutes."""
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body.encode())
        except OSError as e:
            _discard(path)
            try:
                self.lock_dir.rmdir()
            except OSError:
                pass
            raise ClaimError(e.errno, f"cannot write a lock in {self.lock_dir} ({e.strerror})") from None

    def holder(self, output: Path) -> str:
        """Who holds ``output``'s lock, for messages ("pid 12 on node-3"), or ''."""
        try:
            body = read_lock(self.lock_path(output))
        except ClaimError:
            return ""
        return f"pid {body['pid']} on {body['host']}" if body else ""

    def release(self, claim: Claim) -> None:
        with self._lock:
            self._held.pop(claim.path, None)
        claim.release()

    def close(self) -> None:
        """Stop the heartbeat and release whatever is still held (on interrupt or at the end)."""
        self._stop.set()
        with self._lock:
            held = list(self._held.values())
            self._held.clear()
        for claim in held:
            claim.release()

    def is_stale(self, path: Path) -> bool:
        try:
            st = os.lstat(path)
        except OSError:
            return False
        body = read_lock(path)
        if body is None:
            # Not a lock gvr wrote. Only an empty regular file may be one being written right now.
            return not (stat.S_ISREG(st.st_mode) and st.st_size == 0) or time.time() - st.st_mtime > self.stale_after
        if body["host"] == HOST and not _pid_alive(body["pid"]):
            return True
        return time.time() - st.st_mtime > self.stale_after

    def _break_if_stale(self, path: Path) -> bool:
        if not self.is_stale(path):
            return False
        before = read_lock(path)
        broken = path.with_name(f"{path.name}.broken-{uuid.uuid4().hex}")
        try:
            os.rename(path, broken)
        except FileNotFoundError:
            return True  # another worker broke it first
        except OSError:
            return False
        try:
            if before is not None and read_lock(broken) != before:
                # We took a fresh lock that replaced the stale one between our read and rename:
                # put it back (link fails if yet another lock appeared; then that one stands).
                try:
                    os.link(broken, path)
                except OSError:
                    pass
                return False
        finally:
            _discard(broken)
        return True

    def stale_locks(self) -> list[tuple[Path, str | None]]:
        """Locks left by dead workers, each with the output it names (None when the lock is not a
        valid lock of this folder: it is only removed, nothing it names is touched)."""
        try:
            self.check_lock_dir()
            with os.scandir(self.lock_dir) as it:
                names = sorted(e.name for e in it)
        except OSError:
            return []
        found = []
        for name in names:
            path = self.lock_dir / name
            if ".broken-" in name or not self.is_stale(path):
                continue
            body = read_lock(path)
            key = body.get("output") if body else None
            if isinstance(key, str) and key.startswith("/") and "\0" not in key:
                # Written by an older gvr, which kept absolute paths: trusted only inside this folder.
                key = relative_key(self.output_dir, Path(key)) or relative_key(
                    Path(os.path.realpath(self.output_dir)), Path(key)
                )
            found.append((path, key if _plain_relative(key) else None))
        return found

    def remove_lock(self, path: Path) -> None:
        """Break a stale lock (or anything else planted under a lock's name) without touching what it names."""
        if path.parent == self.lock_dir and self._break_if_stale(path):
            try:
                self.lock_dir.rmdir()
            except OSError:
                pass

    def _start_heartbeat(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name="gvr-claim-heartbeat", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            with self._lock:
                held = list(self._held)
            now = time.time()
            for path in held:
                try:
                    os.utime(path, (now, now), follow_symlinks=False)
                except OSError:
                    pass


def _discard(path: Path) -> None:
    """Remove a broken-away lock: a file or link, or an empty folder planted under a lock's name."""
    try:
        os.unlink(path)
    except IsADirectoryError:
        try:
            os.rmdir(path)
        except OSError:
            pass
    except OSError:
        pass
