"""The watchdog for a call that may never return: a probe of a hostile header, a model load over
a hung mount, the clean-up after dead workers.

Such a call runs in a daemon thread and the caller waits for it in short steps, so a stall is an
error the caller words (StalledError: a file fails, a stalled model load exits 75) and a signal
stops the wait at once (Cancelled). The stages that stream
a file bound their own waits (``gvrcli.pipeline``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from gvrcli.errors import Cancelled, StalledError
from gvrcli.media.probe import VideoInfo, probe_video


def probe_watched(path: Path, options, cancel: threading.Event) -> VideoInfo:
    """``probe_video`` under the watchdog: FFmpeg can hang reading a hostile header (stream-info
    probing decodes frames), and a hung probe must cost that file, not the batch. ``options``: any
    with ``max_pixels`` and ``stall_timeout`` (a batch's, ``gvr eval``'s)."""
    return watched(
        lambda: probe_video(path, options.max_pixels), options.stall_timeout, cancel,
        f"{path}: probing stalled (no answer for {options.stall_timeout:.0f} s)",
    )


def watched(fn, timeout: float, cancel: threading.Event, stalled: str, name: str = "gvr-probe"):
    """Run ``fn`` in a daemon thread; raise StalledError(``stalled``) when it has not returned
    within ``timeout`` s, Cancelled on a signal. A thread stuck in a system call cannot be killed:
    it is left behind, blocked, and the batch moves on."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed back to the calling thread below
            box["error"] = e

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while thread.is_alive():
        thread.join(timeout=0.2)
        if cancel.is_set():
            raise Cancelled()
        if time.monotonic() > deadline:
            raise StalledError(stalled)
    if "error" in box:
        raise box["error"]
    return box.get("value")
