"""Claims: lock files that let several workers share one output directory.

A worker claims an output by creating ``OUTPUT_DIR/.gvr-locks/<hash>.lock`` with O_EXCL (atomic
on local filesystems and NFSv3+). The lock holds the owner's pid, host and a random token; a
heartbeat thread refreshes its mtime. A lock is stale when its owner is a dead process on this
host, or when its heartbeat is older than ``stale_after`` (owners on other hosts). A stale lock is
broken by renaming it to a unique name first, so of two workers breaking it only one wins.
The folder is removed when the last lock in it is released.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

LOCK_DIR_NAME = ".gvr-locks"
# The heartbeat refreshes every 10 s; a lock untouched for 2 minutes has missed 12 beats, far
# beyond a busy NFS server's attribute-cache delays, so its owner is gone.
HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 120.0

HOST = socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


@dataclass
class Claim:
    """A held lock on one output. ``release()`` removes it (only if it is still ours)."""

    path: Path
    token: str

    def owned(self) -> bool:
        try:
            return json.loads(self.path.read_text()).get("token") == self.token
        except (OSError, ValueError):
            return False

    def release(self) -> None:
        if self.owned():
            try:
                self.path.unlink()
            except FileNotFoundError:
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
        key = os.fsencode(str(output.resolve()))
        return self.lock_dir / (hashlib.sha1(key).hexdigest()[:20] + ".lock")

    def try_claim(self, output: Path) -> Claim | None:
        """Claim ``output``, breaking a stale lock; None when a live worker holds it."""
        path = self.lock_path(output)
        for _ in range(3):  # a stale lock broken under us may need a second try
            token = uuid.uuid4().hex
            body = json.dumps(
                {"pid": os.getpid(), "host": HOST, "token": token, "output": str(output), "started": time.time()}
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if self._break_if_stale(path):
                    continue
                return None
            except FileNotFoundError:
                continue  # the folder was removed by a releasing worker between mkdir and open
            with os.fdopen(fd, "w") as f:
                f.write(body)
            claim = Claim(path, token)
            with self._lock:
                self._held[path] = claim
            self._start_heartbeat()
            return claim
        return None

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
            info = json.loads(path.read_text())
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            # Half-written lock: stale only once it is old (its writer may be mid-write now).
            try:
                return time.time() - path.stat().st_mtime > self.stale_after
            except OSError:
                return False
        if info.get("host") == HOST and not _pid_alive(int(info.get("pid", -1))):
            return True
        return time.time() - mtime > self.stale_after

    def _break_if_stale(self, path: Path) -> bool:
        if not self.is_stale(path):
            return False
        try:
            before = path.read_text()
        except OSError:
            return True  # gone already: retry the claim
        broken = path.with_name(f"{path.name}.broken-{uuid.uuid4().hex}")
        try:
            os.rename(path, broken)
        except FileNotFoundError:
            return True  # another worker broke it first
        try:
            if broken.read_text() != before:
                # We took a fresh lock that replaced the stale one between our read and rename:
                # put it back (link fails if yet another lock appeared; then that one stands).
                try:
                    os.link(broken, path)
                except OSError as e:
                    if e.errno != errno.EEXIST:
                        raise
                return False
        finally:
            broken.unlink(missing_ok=True)
        return True

    def stale_outputs(self) -> list[Path]:
        """Outputs whose lock was left by a dead worker (its partial may still lie beside them)."""
        outputs = []
        try:
            locks = [p for p in self.lock_dir.glob("*.lock") if self.is_stale(p)]
        except OSError:
            return []
        for lock in locks:
            try:
                outputs.append(Path(json.loads(lock.read_text())["output"]))
            except (OSError, ValueError, KeyError):
                continue
        return outputs

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
                    os.utime(path, (now, now))
                except OSError:
                    pass
