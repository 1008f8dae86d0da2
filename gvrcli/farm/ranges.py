"""One video across many machines: a plan of frame ranges, range tasks whose frames are
bit-identical to a single run's, and the checks the join makes on their segments.

Why a range can be exact: the engine's output for a frame is the ramp-blended sum of the temporal
chunks covering it (``gvrcli.inference.streaming.StreamingUpscaler``), each chunk computed from its
own LR frames and from noise drawn per *video* frame index (``FrameNoise``), never from what an
earlier chunk did. So the chunk grid (``chunk_grid``: where each chunk starts and ends, fixed by
the shot cuts, the frame count and the chunk length/overlap) is all a range needs: it starts a
fresh ``StreamingUpscaler`` at the first chunk covering its first frame, with that chunk's shot
start, feeds the frames up to the end of the last chunk covering its last frame, cuts where the
single run cut and finishes as it finished. The same chunks run in the same order on the same
inputs and noise, and the frames of the range come out blended exactly as in the single run. The
frames before and after the range are context, decoded and computed, then dropped.

The plan cuts at shot boundaries where it can (no context: no chunk crosses a cut), else at chunk
starts: there one chunk, ``chunk_frames`` frames of model work, is computed by both neighbours.

Exactness also needs the same numerics and the same tiles in every chunk on every machine, and what
a run would choose by itself follows the machine: ``--backend auto`` picks the runtime predicted
fastest, and the tile planner follows the process's memory and its measured speed. So the plan
freezes both (``options``' ``backend`` and ``tile``: what ``--backend auto`` and ``--tile 0`` come
to on the machine that plans, or the values given), and every range runs them: the same tile in
every chunk, no planner. A single run given the same ``--backend`` and ``--tile`` gives the same
frames.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from gvrbase import atomic
from gvrcli.errors import UsageError

FORMAT, VERSION = "gvr-plan", 2  # 2: options freeze the backend and the tile
MAX_PLAN_BYTES = 16 << 20  # a film's cuts and ranges take kilobytes
MAX_RECORD_BYTES = 64 << 20  # a segment's record: its frames' timestamps, run-length coded
SAMPLE_BYTES = 1 << 20  # the input's fingerprint hashes this much at its start, middle and end
SEGMENT_MARK = ".gvr-range-"


@dataclass(frozen=True)
class Chunk:
    """One temporal chunk of the single run: frames [start, end) of the shot starting at ``shot``;
    ``trigger`` says what ran it: a full window ("push"), the shot's cut ("cut") or the end ("finish")."""

    start: int
    end: int
    shot: int
    trigger: str


def chunk_grid(frames: int, cuts: list[int], length: int, overlap: int) -> list[Chunk]:
    """The chunks ``StreamingUpscaler`` runs on ``frames`` frames with these cuts (frames starting a
    shot), in order: its control flow, counted instead of run."""
    chunks: list[Chunk] = []
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < frames), frames]
    for shot, end in zip(bounds[:-1], bounds[1:]):
        start = done_until = shot
        while start + length <= end:  # the window fills when frame start + length - 1 arrives
            chunks.append(Chunk(start, start + length, shot, "push"))
            done_until = start + length
            start += length - overlap
        if end < frames:
            if end > start:  # cut(): the frames held, even if an earlier chunk covered them all
                chunks.append(Chunk(start, end, shot, "cut"))
        elif end > done_until:  # finish(): only frames no chunk has covered yet
            chunks.append(Chunk(start, end, shot, "finish"))
    return chunks


@dataclass(frozen=True)
class Window:
    """What a range task decodes and runs: frames [first, stop) through a fresh engine whose shot
    starts at ``shot``, keeping the frames [a, b); ``cuts`` inside it are told to the engine."""

    a: int
    b: int
    first: int
    stop: int
    shot: int
    cuts: tuple[int, ...]
    ends_in_cut: bool
    seek_pts: int | None = None  # frame ``first``'s timestamp, where the plan records it: decoding seeks there

    @property
    def context(self) -> int:
        """Frames decoded and computed besides the range's own."""
        return (self.stop - self.first) - (self.b - self.a)


def window_of(a: int, b: int, frames: int, cuts: list[int], length: int, overlap: int) -> Window:
    touching = [c for c in chunk_grid(frames, cuts, length, overlap) if c.start < b and c.end > a]
    first, stop = touching[0].start, max(c.end for c in touching)
    inside = tuple(c for c in cuts if first < c < stop)
    return Window(a, b, first, stop, touching[0].shot, inside, stop in cuts)


def split(frames: int, cuts: list[int], length: int, overlap: int, segments: int) -> list[tuple[int, int]]:
    """``segments`` ranges (fewer only when the video has fewer frames) of about equal length, cut at
    shot boundaries where one is near (within a chunk of the ideal place), else at chunk starts,
    else anywhere (a boundary inside a chunk costs the same context, the chunk computed twice)."""
    chunks = chunk_grid(frames, cuts, length, overlap)
    candidates = {c: 1 for c in range(1, frames)}  # any frame, last: exactly min(segments, frames) ranges
    candidates.update({c: 0 for c in (ch.start for ch in chunks) if 0 < c < frames})
    candidates.update({c: -1 for c in cuts if 0 < c < frames})  # a cut costs no context
    bounds = {0, frames}
    for k in range(1, segments):
        ideal = k * frames / segments
        if not candidates:
            break
        best = min(candidates, key=lambda c: (abs(c - ideal) + (candidates[c] + 1) * length, c))
        bounds.add(best)
        del candidates[best]
    edges = sorted(bounds)
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def input_fingerprint(path: Path) -> dict:
    """Size, modification time and a SHA-256 of its first, middle and last MiB: what says the input
    is the file the plan was made from, without reading a film end to end."""
    st = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for offset in sorted({0, max(0, st.st_size // 2 - SAMPLE_BYTES // 2), max(0, st.st_size - SAMPLE_BYTES)}):
            f.seek(offset)
            digest.update(f.read(SAMPLE_BYTES))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sample_sha256": digest.hexdigest()}


def options_digest(options: dict) -> str:
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()


@dataclass
class Plan:
    input: dict  # path, frames, width, height and the fingerprint
    options: dict  # what decides the output's pixels (``output_options``), the frozen backend and tile among them
    chunk: tuple[int, int]  # frames, overlap
    cuts: list[int]
    ranges: list[tuple[int, int]]
    seek: dict[int, int] = field(default_factory=dict)  # chunk start -> its frame's timestamp (seeking)
    sha256: str = ""  # of the plan file's bytes (read_plan)
    path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return self.input["frames"]

    def window(self, a: int, b: int) -> Window:
        window = window_of(a, b, self.frames, self.cuts, *self.chunk)
        return dataclasses.replace(window, seek_pts=self.seek.get(window.first))

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "input": self.input,
            "options": self.options,
            "options_sha256": options_digest(self.options),
            "chunk": {"frames": self.chunk[0], "overlap": self.chunk[1]},
            "cuts": self.cuts,
            "ranges": [list(r) for r in self.ranges],
            "seek": [[frame, pts] for frame, pts in sorted(self.seek.items())],
            **self.extra,
        }


def write_plan(path: Path, plan: Plan) -> None:
    """Publish the plan atomically (a partial, then a rename)."""
    partial = atomic.partial_path(path, os.urandom(8).hex())
    try:
        partial.write_text(json.dumps(plan.to_json(), indent=1) + "\n", encoding="utf-8")
        atomic.publish(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """A regular file's bytes, opened so a FIFO or device cannot block, at most ``limit`` of them."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise UsageError(f"{what} {path}: cannot open ({e.strerror or e})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError(f"{what} {path}: not a regular file")
        chunks, size = [], 0
        while block := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(block)
            size += len(block)
            if size > limit:
                raise UsageError(f"{what} {path}: over {limit >> 20} MiB")
        return b"".join(chunks)
    except OSError as e:
        raise UsageError(f"{what} {path}: cannot read ({e.strerror or e})") from None
    finally:
        os.close(fd)


def read_plan(path: Path) -> Plan:
    """The plan at ``path``, checked whole; a bad one is one UsageError line (exit 2)."""
    data = read_bounded(path, MAX_PLAN_BYTES, "plan")
    try:
        body = json.loads(data)
        plan = _parse_plan(body)
    except (ValueError, TypeError, KeyError, RecursionError) as e:
        raise UsageError(f"plan {path}: not a gvr plan ({str(e)[:200]})") from None
    plan.sha256, plan.path = hashlib.sha256(data).hexdigest(), path
    return plan


def _int(value, low: int = 0, high: int = 1 << 53) -> int:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"{value!r} is not an integer in [{low}, {high}]")
    return value


def _parse_plan(body) -> Plan:
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise ValueError(f"format is not {FORMAT!r}")
    if body.get("version") != VERSION:
        raise ValueError(f"version {body.get('version')!r}, this gvr reads {VERSION}: make the plan again")
    src, options = body["input"], body["options"]
    if not isinstance(src, dict) or not isinstance(src.get("path"), str) or not isinstance(options, dict):
        raise ValueError("input or options is not an object")
    if not isinstance(options.get("backend"), str) or options["backend"] in ("", "auto"):
        raise ValueError("options name no backend")
    tile = options.get("tile")
    if not isinstance(tile, list) or len(tile) != 2:
        raise ValueError("options' tile is not [width, height]")
    for side in tile:
        _int(side, 1, 1 << 20)
    if not isinstance(src.get("sample_sha256"), str):
        raise ValueError("input has no fingerprint")
    frames = _int(src["frames"], 1)
    for key in ("size", "mtime_ns", "width", "height", "bit_depth"):
        _int(src[key], 0, 1 << 63)
    if body.get("options_sha256") != options_digest(options):
        raise ValueError("options_sha256 does not match its options")
    length, overlap = _int(body["chunk"]["frames"], 1), _int(body["chunk"]["overlap"])
    if overlap >= length:
        raise ValueError("chunk overlap is not below its length")
    cuts = body["cuts"]
    if not isinstance(cuts, list) or [_int(c, 1, frames - 1) for c in cuts] != sorted(set(cuts)):
        raise ValueError("cuts are not increasing frame numbers inside the video")
    ranges = body["ranges"]
    if not isinstance(ranges, list) or not ranges or not all(isinstance(r, list) and len(r) == 2 for r in ranges):
        raise ValueError("ranges is not a list of [first, end] pairs")
    edges = [_int(r[0], 0, frames) for r in ranges] + [_int(ranges[-1][1], 0, frames)]
    if edges[0] != 0 or edges[-1] != frames or any(r[1] != edges[k + 1] or r[1] <= r[0] for k, r in enumerate(ranges)):
        raise ValueError("ranges do not tile the video's frames in order")
    return Plan(src, options, (length, overlap), list(cuts), [tuple(r) for r in ranges], seek=_parse_seek(body.get("seek", []), frames))


def _parse_seek(pairs, frames: int) -> dict[int, int]:
    """``[[frame, pts], ...]``: frames inside the video and timestamps both strictly increasing (a
    plan without it, or with an empty one, decodes every range from the start)."""
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise ValueError("seek is not a list of [frame, timestamp] pairs")
    seek = {_int(f, 1, frames - 1): _int(t, -(1 << 62), 1 << 62) for f, t in pairs}
    if list(seek) != sorted(seek) or len(seek) != len(pairs) or list(seek.values()) != sorted(set(seek.values())):
        raise ValueError("seek's frames and timestamps are not both increasing")
    return seek


def seek_table(pts: list[int | None], starts) -> dict[int, int]:
    """The timestamps of the frames in ``starts`` (chunk starts past 0), when the whole stream's
    timestamps are known and strictly increasing (else none: seeking needs a frame's timestamp to
    say which frame it is)."""
    if any(p is None for p in pts) or any(b <= a for a, b in zip(pts, pts[1:])):
        return {}
    return {s: pts[s] for s in sorted(set(starts)) if 0 < s < len(pts)}


def parse_range(text: str) -> tuple[int, int]:
    """``A-B``: frames A to B-1 (``B`` excluded, as the plan lists them)."""
    a, dash, b = text.partition("-")
    if not (dash and a.strip().isdigit() and b.strip().isdigit()) or int(b) <= int(a):
        raise UsageError(f"--range {text!r}: give FIRST-END with END > FIRST, e.g. 0-120 (END excluded)")
    return int(a), int(b)


def segment_path(output: Path, a: int, b: int) -> Path:
    """Range [a, b)'s segment, beside the final output and named after it (less its extension:
    one set of segments joins into any container): lossless FFV1 in Matroska."""
    return output.with_name(f"{output.stem}{SEGMENT_MARK}{a:09d}-{b:09d}.mkv")


def encode_pts(pts: list[int | None]) -> list[list]:
    """Timestamps as runs [first, step, count] (a constant rate is one run); None stays a run of its own."""
    runs: list[list] = []
    for p in pts:
        last = runs[-1] if runs else None
        if p is not None and last and last[0] is not None:
            step = last[1] if last[2] > 1 else p - last[0]
            if last[0] + step * last[2] == p:
                last[1], last[2] = step, last[2] + 1
                continue
        runs.append([p, 0, 1])
    return runs


def decode_pts(runs, limit: int) -> list[int | None]:
    out: list[int | None] = []
    for run in runs:
        if not (isinstance(run, list) and len(run) == 3):
            raise ValueError("timestamps are not [first, step, count] runs")
        first, step, count = run
        if first is not None:
            _int(first, -(1 << 62), 1 << 62)
        _int(step, -(1 << 40), 1 << 40)
        if len(out) + _int(count, 1) > limit:
            raise ValueError("more timestamps than frames")
        out += [None] * count if first is None else [first + step * k for k in range(count)]
    return out


class PlannedShots:
    """The plan's cuts inside a range's window, in the shape ``streaming.stream_file`` reads a
    ``ShotDetector`` (the range decodes only part of the video, so it cannot detect them itself)."""

    lookahead, failed = 0, ""

    def __init__(self, cuts: tuple[int, ...]):
        self.cuts = list(cuts)

    def push(self, rgb) -> list[int]:
        return self.cuts

    def finish(self) -> list[int]:
        return self.cuts


class RangeStream:
    """A ``StreamingUpscaler`` started at the window's first chunk, as the single run reaches it;
    hands back only the range's frames. ``done_until`` counts those."""

    def __init__(self, engine, window: Window):
        self.engine, self.window = engine, window
        engine.start = engine.done_until = window.first
        engine.shot_start = window.shot
        self.done_until = 0

    def _keep(self, ready):
        kept = [(i, frame) for i, frame in ready if self.window.a <= i < self.window.b]
        self.done_until += len(kept)
        return kept

    def push(self, rgb, prepared):
        return self._keep(self.engine.push(rgb, prepared))

    def cut(self):
        return self._keep(self.engine.cut())

    def finish(self):
        # The single run reached the window's end at a cut (cut()), at the video's end (finish()),
        # or mid-shot, where its last chunk has already run (finish() then only hands frames back).
        return self._keep(self.engine.cut() if self.window.ends_in_cut else self.engine.finish())

    @property
    def chunk_starts(self) -> list[int]:
        return self.engine.chunk_starts
