"""One file through decode -> a FrameStream -> encode: three stages overlapped by threads and bounded queues.

This is the threaded machinery, apart from what a file's upscale sets up around it
(``gvrcli.pipeline``) and shared with ``gvr degrade`` (``gvrcli.quality.pairs``), so the threads,
queues and watchdog live in one place and the commands only say what runs in each stage.

Decoding and encoding run in their own threads (FFmpeg releases the GIL, and so does the model
runtime), so the model is rarely idle waiting for either. The queues are small, so memory stays
bounded whatever the video's length. A watchdog bounds every wait: a stage that makes no progress
for ``stall_timeout`` seconds (a decoder hanging on a hostile file) fails the file instead of
hanging the batch; a hung FFmpeg call cannot be killed from Python, so its daemon thread is left
behind and the batch moves on.

Each stage reports what it does into the file's work ledger (``gvrcli.progress_plan``) with the
seconds it took: frames decoded and written here, so progress moves with the work.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from gvrcli.errors import Cancelled, StalledError
from gvrcli.media.decode import DecodedFrame, VideoDecoder
from gvrcli.media.encode import EncodeSettings, VideoEncoder
from gvrcli.media.probe import VideoInfo
from gvrcli.media.scenes import ShotDetector
from gvrcli.progress_plan import DECODE, WorkLedger

_END = object()
_CUT = object()  # in the model's queue: the next frame starts a new shot
DEFAULT_STALL_TIMEOUT = 300.0  # seconds without a frame through a stage; far above one chunk's inference
# Progress weights (seconds) until a stage has measured its own: per LR pixel of a decoded frame
# (noise drawn included) and of a frame written, per HR pixel of a frame in a sampler step. Rough
# (a CPU); what matters is that the sampler outweighs the rest, so decoding's burst at the start
# does not run the percentage ahead of the work.
DECODE_PRIOR, ENCODE_PRIOR, MODEL_PRIOR = 1e-7, 1e-7, 2e-7


class _Stage(threading.Thread):
    """A daemon thread whose exception is kept for the pipeline to re-raise."""

    def __init__(self, name: str, target: Callable[[], None]):
        super().__init__(name=name, daemon=True)
        self._target_fn, self.error = target, None

    def run(self) -> None:
        try:
            self._target_fn()
        except BaseException as e:  # handed to the pipeline thread, which reports it
            self.error = e


class FrameStream(Protocol):
    """The middle stage: takes decoded frames in order, hands back finished ones (index, planar
    (3, H, W) float32 in [0, 1]) when it has them. ``StreamingUpscaler`` is one; so is a degrader."""

    done_until: int  # frames handed back so far

    def push(self, rgb: np.ndarray, prepared) -> list[tuple[int, np.ndarray]]: ...
    def finish(self) -> list[tuple[int, np.ndarray]]: ...
    def cut(self) -> list[tuple[int, np.ndarray]]: ...  # the next frame starts a new shot (with ``shots``)


def _nothing(frame: DecodedFrame) -> None:
    return None


@dataclass
class StreamJob:
    """One file for ``stream_file``: what runs in each stage, and the limits they run under.

    Decode (its own thread): ``info.path``'s frames ``frames`` = (first, stop) (only those are
    decoded to RGB and passed on); ``prepare(frame)`` runs on each and its result goes to
    ``stream.push`` with it. With ``shots`` this thread runs the shot detector and holds
    ``shots.lookahead`` frames back, so a cut is known before its frame reaches ``stream``, which
    is told with ``cut()``. Up to ``queue_frames`` decoded frames wait for the middle stage.

    Middle (the calling thread): ``stream``, a ``FrameStream`` (the model, or a degrader).

    Encode (its own thread): ``post(out, frame_in)`` runs on each output frame with its input frame
    (held only until its output comes out); the frames go into ``partial`` with ``encode``;
    ``copy_streams`` False writes the video alone (no audio or subtitles).

    ``cancel`` stops the file; ``progress`` is told of each frame decoded and written, with the
    seconds each took (its weight); ``stall_timeout`` bounds every wait but the model's."""

    info: VideoInfo
    partial: Path
    stream: FrameStream
    encode: EncodeSettings
    _: KW_ONLY
    cancel: threading.Event
    prepare: Callable[[DecodedFrame], object] = _nothing
    queue_frames: int = 8
    progress: WorkLedger | None = None
    stall_timeout: float = DEFAULT_STALL_TIMEOUT
    post: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
    shots: ShotDetector | None = None
    frames: tuple[int, int | None] = (0, None)
    copy_streams: bool = True


def stream_file(job: StreamJob) -> tuple[int, tuple[str, ...]]:
    """Decode ``job.info.path``, pass its frames through ``job.stream``, encode what comes out into
    ``job.partial`` (``StreamJob`` says what runs where). Returns (frames written, encoder
    warnings)."""
    run = _Run(job)
    info, progress = job.info, run.progress
    progress.plan(DECODE, max(info.frames, 0), cost=DECODE_PRIOR * info.width * info.height)
    progress.plan(progress.output, max(info.frames, 0), cost=ENCODE_PRIOR * info.width * info.height)
    decode_thread = _Stage("gvr-decode", lambda: _decode_stage(run))
    encode_thread = _Stage("gvr-encode", lambda: _encode_stage(run))
    try:
        decode_thread.start()
        encode_thread.start()
        _middle_stage(run, decode_thread, encode_thread)
        _wait_for_encoder(run, encode_thread)
        warnings = tuple(run.encoders[0].warnings) if run.encoders else ()
        return job.stream.done_until, warnings
    except BaseException:
        run.stop.set()
        # Close the encoder only once its thread has let go of it (FFmpeg objects are not
        # thread-safe); a thread stuck in a write keeps it, and the partial is deleted anyway.
        encode_thread.join(timeout=5)
        if not encode_thread.is_alive():
            for enc in run.encoders:
                enc.abort()
        raise
    finally:
        run.stop.set()
        decode_thread.join(timeout=2)
        if not decode_thread.is_alive():
            for decoder in run.decoders:
                decoder.close()


def _decode_stage(run: _Run) -> None:
    """The decode thread: the job's frames to RGB, ``prepare`` on each, the shot detector over them
    (holding ``lookahead`` frames back, so a cut's marker goes into the queue before its frame),
    and the end marker last, whatever happened."""
    job, shots = run.job, run.job.shots
    held: deque = deque()  # frames the shot detector may still find a cut at

    def forward(item) -> None:
        if shots is not None and item[0].index in shots.cuts:
            run.put(run.frames_in, _CUT)
        run.put(run.frames_in, item)

    try:
        run.decoders.append(VideoDecoder(job.info))
        frames = run.decoders[0].frames(*job.frames) if job.frames != (0, None) else run.decoders[0].frames()
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            if frame is None or run.stop.is_set():
                break
            item = (frame, job.prepare(frame))
            if shots is not None:
                shots.push(frame.rgb)
            run.progress.advance(DECODE, 1, seconds=time.perf_counter() - started)
            if shots is None:
                run.put(run.frames_in, item)
                continue
            held.append(item)
            while len(held) > shots.lookahead:
                forward(held.popleft())
        if run.stop.is_set():
            return
        if shots is not None:
            shots.finish()
        while held and not run.stop.is_set():
            forward(held.popleft())
    finally:
        run.put(run.frames_in, _END)


def _middle_stage(run: _Run, decode_thread: _Stage, encode_thread: _Stage) -> None:
    """The calling thread: each decoded frame into ``job.stream`` (a cut's marker as ``cut()``, the
    end as ``finish()``), each frame it hands back to the encoder with its timestamp and, for
    ``post``, its input frame; then the end marker. The decoder is watched; the stream (the model,
    minutes a chunk) is not."""
    job, progress = run.job, run.progress
    pts_of: dict[int, int | None] = {}
    input_of: dict[int, object] = {}  # input frames awaiting their output, for ``post``
    pushed = 0
    while True:
        item = run.get(run.frames_in, producer=decode_thread)
        if item is _CUT:
            ready = job.stream.cut()
        elif item is _END:
            decode_thread.join(timeout=job.stall_timeout)  # it is past its last put: its error is being recorded
            _check(decode_thread)
            progress.plan(DECODE, pushed)  # the true count, whatever the probe said
            progress.plan(progress.output, pushed)
            ready = job.stream.finish()
        else:
            frame, prepared = item
            pts_of[frame.index] = frame.pts
            pushed += 1
            if job.post is not None:
                input_of[frame.index] = frame.rgb
            ready = job.stream.push(frame.rgb, prepared)
        for index, hr in ready:
            run.put(run.frames_out, (hr, pts_of.pop(index), input_of.pop(index, None)), consumer=encode_thread)
        if item is _END:
            break
    run.put(run.frames_out, _END, consumer=encode_thread)


def _encode_stage(run: _Run) -> None:
    """The encode thread: ``post`` on each finished frame, the encoder opened at the first (its size
    is the stream's output size), each frame written; closed at the end unless the file stopped."""
    job, info = run.job, run.job.info
    encoder = None
    while True:
        item = run.get(run.frames_out)  # waits on the model: no watchdog here
        if item is _END:
            break
        rgb, pts, frame_in = item  # planar (3, H, W), its timestamp, its input frame (h, w, 3) or None
        started = time.perf_counter()
        if frame_in is not None:
            rgb = job.post(rgb, frame_in)
        if encoder is None:
            h, w = rgb.shape[1:]
            encoder = VideoEncoder(
                job.partial,
                info.path if job.copy_streams else None,
                w,
                h,
                run.decoders[0].time_base,
                info.rate,
                run.decoders[0].tags,
                job.encode,
                high_bit_depth=info.high_bit_depth,
            )
            run.encoders.append(encoder)
        encoder.write(rgb, pts)
        run.progress.frames_out(1, seconds=time.perf_counter() - started)
    if encoder is not None and not run.stop.is_set():
        encoder.close()


def _wait_for_encoder(run: _Run, encode_thread: _Stage) -> None:
    """The calling thread, after the end marker: the encoder's last frames and its close, under the
    watchdog and the cancel; its failure re-raised here."""
    job = run.job
    deadline = time.monotonic() + job.stall_timeout
    while encode_thread.is_alive():
        encode_thread.join(timeout=0.2)
        if job.cancel.is_set():
            raise Cancelled()
        if time.monotonic() > deadline:
            raise StalledError(f"{job.info.path}: encoding stalled (no progress for {job.stall_timeout:.0f} s)")
    _check(encode_thread)


class _Run:
    """What one ``stream_file`` call's stages share: the queue of decoded frames (to the middle
    stage) and of finished ones (to the encoder), the flag that tells the stage threads to quit,
    the decoder and encoder those threads open (closed by the calling thread once they let go), and
    the watchdog's waits on the queues."""

    def __init__(self, job: StreamJob):
        self.job = job
        self.progress = job.progress or WorkLedger(job.info.frames)
        self.stop = threading.Event()  # tells our stages to quit (failure or cancel)
        self.frames_in: queue.Queue = queue.Queue(maxsize=job.queue_frames)
        self.frames_out: queue.Queue = queue.Queue(maxsize=8)
        self.decoders: list[VideoDecoder] = []  # opened in the decode thread: opening can hang too
        self.encoders: list[VideoEncoder] = []

    def put(self, q: queue.Queue, item, consumer: _Stage | None = None) -> None:
        """Blocking put. With a ``consumer``, the watchdog applies: a consumer that died or made no
        room for ``stall_timeout`` fails the file. Without one (the decoder feeding the model) the
        wait is plain backpressure: a model may take minutes per chunk."""
        stall_timeout = self.job.stall_timeout
        deadline = time.monotonic() + stall_timeout
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return
            except queue.Full:
                if consumer is None:
                    continue
                _check(consumer)
                if not consumer.is_alive() or time.monotonic() > deadline:
                    raise StalledError(f"{self.job.info.path}: encoding stalled (no progress for {stall_timeout:.0f} s)") from None

    def get(self, q: queue.Queue, producer: _Stage | None = None):
        """Blocking get; with a ``producer`` (the decoder), the watchdog applies to it."""
        stall_timeout = self.job.stall_timeout
        deadline = time.monotonic() + stall_timeout
        while True:
            if self.job.cancel.is_set():
                raise Cancelled()
            try:
                return q.get(timeout=0.2)
            except queue.Empty:
                if self.stop.is_set():
                    return _END
                if producer is not None and time.monotonic() > deadline:
                    raise StalledError(f"{self.job.info.path}: decoding stalled (no progress for {stall_timeout:.0f} s)") from None


def _check(stage: _Stage) -> None:
    """Re-raise a stage's failure in the pipeline thread (the batch turns it into one line)."""
    if stage.error is not None:
        raise stage.error
