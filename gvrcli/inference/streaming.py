"""Chunk scheduling: frames stream in, overlapping temporal chunks go to the engine, frames stream out.

At most one chunk of LR frames, its HR output and the overlap tail are held, so memory is bounded
whatever the video's length. Temporal chunks of ``chunk_frames`` overlap by ``chunk_overlap``
frames (the model's own interleaved temporal units run inside each chunk), and a frame seen by two
chunks is their ramp-weighted blend (``gvrcli.inference.tiling.ramp``), let out as soon as no later
chunk can change it. A scene cut ends the shot's last chunk there: no chunk, and so no attention,
spans two shots. ``Upscaler`` (``gvrcli.inference.engine``) does one chunk; this decides which.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from gvrcli.inference.engine import Upscaler
from gvrcli.inference.tiling import ramp


class StreamingUpscaler:
    """Feeds frames through ``Upscaler`` chunk by chunk; HR frames come out in order as soon as
    no later chunk can change them.

    ``push(frame, noise)`` and ``finish()`` return lists of ``(index, hr_frame)``, ``hr_frame``
    planar (3, H, W) float32 in [0, 1]; in latent mode frames are planar latents (C, h, w) in and
    (C, H, W) out. ``noise`` is the frame's ``(hr, lr)`` pair from
    ``Upscaler.frame_noise``; the pipeline draws it in the decode thread, off the model's path.
    """

    def __init__(self, upscaler: Upscaler):
        self.up = upscaler
        self.length = upscaler.settings.chunk_frames
        self.overlap = upscaler.settings.chunk_overlap
        self.window: deque[tuple] = deque()  # (LR frame, HR noise, LR noise) from index self.start on
        self.start = 0  # video index of self.window[0]
        self.done_until = 0  # frames below this index are already inside an upscaled chunk
        self.acc: dict[int, list] = {}  # index -> [weighted sum (C, H, W), weight]
        self._buffers: dict[str, np.ndarray] = {}  # chunk inputs, reused from chunk to chunk
        self.shot_start = 0  # first frame of the current shot: no chunk reaches back past it
        self.chunk_starts: list[int] = []  # first frame of each chunk run (``gvr eval``'s boundaries, via --sidecar)

    def push(self, frame: np.ndarray, noise: tuple[np.ndarray, np.ndarray] | None = None):
        if noise is None:
            size = frame.shape[1:] if self.up.latent else frame.shape[:2]
            noise = self.up.frame_noise(self.start + len(self.window), *size)
        self.window.append((frame, *noise))
        if len(self.window) < self.length:
            return []
        return self._run_chunk(last=False)

    def finish(self) -> list[tuple[int, np.ndarray]]:
        if self.start + len(self.window) > self.done_until:
            return self._run_chunk(last=True)
        return self._emit(until=self.start + len(self.window))

    def cut(self) -> list[tuple[int, np.ndarray]]:
        """A hard cut: the next frame pushed starts a new shot (``gvrcli.media.scenes``). The frames
        held are finished as this shot's last chunk (frames an earlier chunk left fading out are run
        again, fading in, so their weights still sum to one), and the next chunk starts afresh at
        the cut: no chunk, and so no attention, spans two shots."""
        ready = self._run_chunk(last=True) if self.window else []
        self.start += len(self.window)
        self.window.clear()
        self.done_until = self.shot_start = self.start
        return ready

    def _gather(self, name: str, item: int, planar: bool) -> np.ndarray:
        """The window's frames as one (C, T, H, W) array, written into a buffer kept between chunks."""
        first = self.window[0][item]
        C, H, W = (first.shape[2], *first.shape[:2]) if not planar else first.shape
        shape = (C, len(self.window), H, W)
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape:
            buf = self._buffers[name] = np.empty(shape, dtype=np.float32)
        for k, entry in enumerate(self.window):
            buf[:, k] = entry[item] if planar else entry[item].transpose(2, 0, 1)
        return buf

    def _run_chunk(self, last: bool) -> list[tuple[int, np.ndarray]]:
        n = len(self.window)
        lr = self._gather("lr", 0, planar=self.up.latent)
        hr_noise, lr_noise = self._gather("hr_noise", 1, planar=True), self._gather("lr_noise", 2, planar=True)
        frames = self.up.upscale_planar(lr, lr_noise, hr_noise)
        self.chunk_starts.append(self.start)
        fade_in = self.overlap if self.start > self.shot_start else 0
        weights = ramp(n, fade_in, 0 if last else self.overlap)
        for k, frame in enumerate(frames):
            w = float(weights[k])
            if w != 1.0:
                frame *= np.float32(w)
            entry = self.acc.get(self.start + k)
            if entry is None:
                self.acc[self.start + k] = [frame, w]
            else:
                entry[0] += frame
                entry[1] += w
        self.done_until = self.start + n
        if last:
            return self._emit(until=self.done_until)
        keep = self.overlap  # the next chunk starts with the last `overlap` frames of this one
        for _ in range(n - keep):
            self.window.popleft()
        self.start += n - keep
        return self._emit(until=self.start)

    def _emit(self, until: int) -> list[tuple[int, np.ndarray]]:
        ready = []
        for i in sorted(k for k in self.acc if k < until):
            total, weight = self.acc.pop(i)
            if weight != 1.0:
                total /= np.float32(weight)
            ready.append((i, total))
        return ready
