"""The work ledger: how much of a file's (and a batch's) work is done, counted as the work is done.

Why: one temporal chunk of a trained model at 50 steps takes minutes on a CPU. Counting written
frames leaves the percentage frozen that long, and a person, or a farm scheduler's stalled-task
check, takes gvr for hung. So each stage of a file reports units of work as it does them into one
``WorkLedger``: decode per frame, the sampler per step of each tile of each chunk
(``SamplerWork``), encode per frame written. Any other stage (a VAE's encode and decode) reports
the same way: ``plan(name, total, cost)`` once, then ``stage(name, done, total)`` or
``advance(name, units, seconds)``.

* Weights are seconds: a stage's units count at its measured seconds per unit (the seconds its
  reports carry); until it has measured one, at its prior scaled by how the measured stages
  compare with theirs (a slow machine is slow at everything). So the split between sampler steps
  and decode/encode follows this machine and this model, not a guess, and decoding's burst at the
  start of a file does not run the percentage ahead of the sampler's work.
* The shown fraction never goes backwards. The plan changes as work goes (a scene cut adds a chunk,
  the probed frame count was off, a measured cost differs from its prior); when that lowers the raw
  fraction, the ledger holds where it stands and spreads what is left of 100% over the work left.
* ETA from the measured rate: elapsed x (cost left / cost done), ``None`` until the heaviest stage
  has measured a unit (before that there is no rate worth the name).

``BatchLedger`` weighs files by their frames and gives the batch's fraction and ETA the same way.
All methods are thread-safe: the decode, model and encode threads report, a display thread reads.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

DECODE, MODEL, ENCODE = "decode", "model", "encode"


@dataclass
class _Stage:
    total: float
    prior: float  # seconds per unit until measured
    done: float = 0.0
    measured_units: float = 0.0
    measured_seconds: float = 0.0
    started: bool = False
    detail: str = ""

    def cost(self, speed: float = 1.0) -> float:
        """Seconds per unit: measured, else the prior scaled by ``speed`` (measured over prior,
        of the stages measured so far: how this machine compares with the priors)."""
        return self.measured_seconds / self.measured_units if self.measured_units > 0 else self.prior * speed

    def complete(self) -> bool:
        return self.done >= self.total


@dataclass(frozen=True)
class FileSnapshot:
    source: Path | None
    fraction: float  # shown: monotonic, 1.0 when finished
    raw: float  # done cost / planned cost now (may go down when the plan grows)
    eta_seconds: float | None
    stage: str | None  # the stage working now: decode, model, encode, ... (None: not started)
    status: str  # what it is doing, in words: "model step 12/40 of chunk 1/3"
    frames: int  # output frames (written, for upscale and degrade)
    total_frames: int


class WorkLedger:
    """One file's work, by stage. ``output`` names the stage whose units are the file's output
    frames (``frames`` in progress events); it is planned at ``frames`` units from the start, so a
    file whose work reports nothing else still moves with its frames."""

    def __init__(self, frames: int, source: Path | None = None, output: str = ENCODE, clock=time.monotonic):
        self.source, self.output, self.clock = source, output, clock
        self.lock = threading.Lock()
        self.started_at = clock()
        self._stages: dict[str, _Stage] = {}
        self._anchor = (0.0, 0.0)  # (shown, raw) where the shown fraction last had to be held
        self._shown = 0.0
        self._raw_last = 0.0
        self._last: str | None = None  # the stage reported last
        self._finished = False
        self.plan(output, max(frames, 0), cost=0.01)

    # -- reporting ------------------------------------------------------------------------------

    def plan(self, name: str, total: float, cost: float | None = None) -> None:
        """Set (or re-set) stage ``name`` to ``total`` units, ``cost`` seconds per unit until it is
        measured. A re-plan never drops below the work already done."""
        with self.lock:
            s = self._stages.get(name)
            if s is None:
                s = self._stages[name] = _Stage(total=0.0, prior=cost if cost is not None else 0.01)
            elif cost is not None:
                s.prior = cost
            s.total = max(float(total), s.done)
            self._update()

    def stage(self, name: str, done: float, total: float | None = None, seconds: float | None = None, detail: str | None = None) -> None:
        """Stage ``name`` has done ``done`` of ``total`` units (absolute; ``total`` None keeps the
        plan). ``seconds``: the time the units since the last report took, to weigh the stage."""
        with self.lock:
            self._report(name, lambda s: float(done), total, seconds, detail)

    def advance(self, name: str, units: float = 1, seconds: float | None = None, detail: str | None = None) -> None:
        """``units`` more of stage ``name`` done (0 only marks it working now), in ``seconds``."""
        with self.lock:
            self._report(name, lambda s: s.done + units, None, seconds, detail)

    def _report(self, name, done_of, total, seconds, detail) -> None:
        s = self._stages.get(name)
        if s is None:
            s = self._stages[name] = _Stage(total=0.0, prior=0.01)
        done = done_of(s)
        if seconds is not None and done > s.done:
            s.measured_units += done - s.done
            s.measured_seconds += max(seconds, 0.0)
        s.done = max(s.done, done)
        if total is not None:
            s.total = float(total)
        s.total = max(s.total, s.done)
        s.started = True
        s.detail = detail or f"{name} {_count(s.done)}/{_count(s.total)}"
        self._last = name
        self._update()

    def measured_seconds(self, name: str) -> float:
        """The seconds stage ``name`` reported so far (0 for a stage never reported)."""
        with self.lock:
            s = self._stages.get(name)
            return s.measured_seconds if s is not None else 0.0

    def frames_out(self, count: int = 1, seconds: float | None = None) -> None:
        """``count`` output frames done (written)."""
        self.advance(self.output, count, seconds)

    def finish(self) -> None:
        with self.lock:
            self._finished = True
            self._shown = 1.0

    # -- reading --------------------------------------------------------------------------------

    def snapshot(self) -> FileSnapshot:
        with self.lock:
            raw = self._raw()
            out = self._stages[self.output]
            working = self._working()
            return FileSnapshot(
                source=self.source,
                fraction=self._shown,
                raw=1.0 if self._finished else raw,
                eta_seconds=0.0 if self._finished else self._eta(raw),
                stage=working,
                status="done" if self._finished else (self._stages[working].detail if working else "starting"),
                frames=int(out.done),
                total_frames=int(out.total),
            )

    def _costs(self) -> dict[str, float]:
        measured = [s for s in self._stages.values() if s.measured_units > 0]
        expected = sum(s.measured_units * s.prior for s in measured)
        speed = sum(s.measured_seconds for s in measured) / expected if expected > 0 else 1.0
        return {name: s.cost(speed) for name, s in self._stages.items()}

    def _raw(self) -> float:
        cost = self._costs()
        total = sum(s.total * cost[n] for n, s in self._stages.items())
        done = sum(s.done * cost[n] for n, s in self._stages.items())
        return min(1.0, done / total) if total > 0 else 0.0

    def _update(self) -> None:
        """The shown fraction: raw, mapped from the last anchor onto what is left, never lower."""
        if self._finished:
            return
        raw = self._raw()
        shown_at, raw_at = self._anchor
        if raw < self._raw_last:  # the plan grew: hold here, and spread the rest over the work left
            self._anchor = shown_at, raw_at = self._shown, raw
        self._raw_last = raw
        if raw_at >= 1.0:
            shown = shown_at
        else:
            shown = shown_at + (1.0 - shown_at) * (raw - raw_at) / (1.0 - raw_at)
        self._shown = min(1.0, max(self._shown, shown))

    def _heaviest(self, names) -> str:
        cost = self._costs()
        return max(names, key=lambda n: self._stages[n].total * cost[n])

    def _eta(self, raw: float) -> float | None:
        if self._stages[self._heaviest(self._stages)].measured_units <= 0 or raw <= 0:
            return None
        return (self.clock() - self.started_at) * (1.0 - raw) / raw

    def _working(self) -> str | None:
        """The stage to name now: the heaviest one under way, else the one reported last."""
        busy = [n for n, s in self._stages.items() if s.started and not s.complete()]
        return self._heaviest(busy) if busy else self._last


def _count(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def chunk_plan(frames: int, length: int, overlap: int, ends_in_cut: bool) -> tuple[int, int, int]:
    """(full chunks, frames of the last partial chunk or 0) of the temporal chunks
    ``StreamingUpscaler`` runs over a shot of ``frames`` frames (chunks of ``length`` overlapping
    by ``overlap``), in closed form: the plan's size never grows with the frame count (a header
    may claim billions). A shot ended by a cut runs what its window holds as a last chunk, the
    overlap of the chunk before included; the end of the file only runs frames no chunk has covered.
    Returns (full, length, tail)."""
    if frames <= 0:
        return 0, length, 0
    if frames < length:
        return 0, length, frames
    full = (frames - length) // (length - overlap) + 1
    left = frames - (length + (full - 1) * (length - overlap))  # frames after the last full chunk
    tail = overlap + left if ends_in_cut else (overlap + left if left > 0 else 0)
    return full, length, tail


def chunk_sizes(frames: int, length: int, overlap: int, ends_in_cut: bool) -> list[int]:
    """``chunk_plan`` as the list of each chunk's frames (for tests and small shots only)."""
    full, length, tail = chunk_plan(frames, length, overlap, ends_in_cut)
    return [length] * full + ([tail] if tail > 0 else [])


class SamplerWork:
    """The sampler's share of a file in a ``WorkLedger``: chunks x tiles x steps, as the engine's
    ``on_tile`` and ``on_step`` hooks report them.

    A chunk of T frames is T x (steps + CONDITION) units, whatever its tiling (each of u tiles
    is T/u of it), so learning the tiling never moves the plan. The chunks are planned from the
    frame count, ``chunk_frames``/``chunk_overlap`` and the cuts found so far (``cut_at``);
    ``end_at`` fixes the true frame count once decoding ends."""

    CONDITION = 1.0  # the condition graph (and the codec's encode), in sampler steps: reported with step 1

    def __init__(self, ledger: WorkLedger, frames: int, length: int, overlap: int, steps: int, cost: float, clock=time.perf_counter):
        self.ledger, self.length, self.overlap, self.steps = ledger, length, overlap, steps
        self.cost, self.clock = cost, clock  # prior seconds per frame-step
        self.frames, self.cuts, self.ended = max(frames, 0), [0], False
        self.chunk, self.chunks, self.chunk_frames = 0, 0, 0
        self.tile, self.tiles = 1, 1
        self._mark = clock()
        self._replan()

    def _replan(self) -> None:
        chunks = frames = 0
        bounds = [*self.cuts, self.frames]
        for k, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
            full, length, tail = chunk_plan(end - start, self.length, self.overlap, ends_in_cut=k < len(bounds) - 2)
            chunks, frames = chunks + full + (tail > 0), frames + full * length + tail
        self.chunks = max(chunks, self.chunk)
        self.ledger.plan(MODEL, frames * (self.steps + self.CONDITION), self.cost)

    def pushed(self, index: int) -> None:
        """Frame ``index`` reached the sampler: a probe that undercounted frames grows the plan."""
        if index >= self.frames:
            self.frames = index + 1
            self._replan()

    def cut_at(self, index: int) -> None:
        self.cuts.append(index)
        self._replan()

    def end_at(self, frames: int) -> None:
        self.frames, self.ended = frames, True
        self._replan()

    def on_tile(self, tile: int, tiles: int, frames: int) -> None:
        """The engine starts tile ``tile`` of ``tiles`` of a chunk of ``frames`` frames."""
        if tile == 1:
            self.chunk += 1
            self.chunks = max(self.chunks, self.chunk)
        self.tile, self.tiles, self.chunk_frames = tile, tiles, frames
        self._mark = self.clock()
        self.ledger.advance(MODEL, 0, detail=self._detail(0))

    def on_step(self, step: int, steps: int) -> None:
        now = self.clock()
        units = self.chunk_frames / self.tiles * (1 + (self.CONDITION if step == 1 else 0))
        self.ledger.advance(MODEL, units, seconds=now - self._mark, detail=self._detail(step))
        self._mark = now

    def _detail(self, step: int) -> str:
        where = f"model step {step}/{self.steps} of chunk {self.chunk}/{self.chunks}"
        return where + (f", tile {self.tile}/{self.tiles}" if self.tiles > 1 else "")


@dataclass(frozen=True)
class BatchSnapshot:
    fraction: float
    eta_seconds: float | None
    frames: int  # output frames so far, all files
    files_done: int
    files: int
    elapsed: float
    in_flight: list[FileSnapshot] = field(default_factory=list)


class BatchLedger:
    """The batch: files weighted by their (probed) frames; finished files count whole, whatever
    their outcome (their work is over). Files outside the plan (refused, skipped unprobed: the
    plan's ``sources`` leave them out) are not part of it. A settled batch (``settle``: the run
    ended by itself, every planned file dealt with or only listed) is at 100%."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.planned = self.settled = False
        self.sources: set[Path] | None = None  # the planned files; None: every file finished after plan
        self.files = self.frames = 0
        self.files_done = 0
        self.frames_out = 0  # of finished files
        self.weight_done = 0.0  # of finished files
        self.measured = False  # a started file has finished: the batch has a rate
        self.started_at: float | None = None
        self.in_flight: dict[Path, tuple[WorkLedger, float]] = {}
        self._shown = 0.0

    def plan(self, files: int, frames: int, sources=None) -> None:
        with self.lock:
            self.planned, self.files, self.frames = True, files, frames
            self.sources = set(sources) if sources is not None else None

    def settle(self) -> None:
        """The run ended by itself (no signal, no fatal error): nothing planned is left, also when
        every file was skipped (a plan of 0 files) or only listed (--dry-run)."""
        with self.lock:
            self.settled = True

    def start_file(self, source: Path, frames: int, output: str = ENCODE) -> WorkLedger:
        ledger = WorkLedger(frames, source, output, self.clock)
        with self.lock:
            if self.started_at is None:
                self.started_at = self.clock()
            self.in_flight[source] = (ledger, float(max(frames, 1)))
        return ledger

    def finish_file(self, source: Path) -> None:
        with self.lock:
            entry = self.in_flight.pop(source, None)
            if not self.planned or (entry is None and self.sources is not None and source not in self.sources):
                return
            self.files_done += 1
            if entry is not None:
                entry[0].finish()
                self.measured = True
                self.weight_done += entry[1]
                self.frames_out += entry[0].snapshot().frames
            else:  # finished unstarted (another worker did it): an average file's share
                left = self.files - self.files_done + 1
                started = sum(w for _, w in self.in_flight.values())
                self.weight_done += max(0.0, self.frames - self.weight_done - started) / max(left, 1)

    def snapshot(self) -> BatchSnapshot:
        with self.lock:
            flights = list(self.in_flight.values())
            files, frames, files_done, settled = self.files, self.frames, self.files_done, self.settled
            weight_done, frames_out, started_at, measured = self.weight_done, self.frames_out, self.started_at, self.measured
        snaps = [(ledger.snapshot(), w) for ledger, w in flights]
        total = max(float(frames), weight_done + sum(w for _, w in snaps), 1.0)
        shown = (weight_done + sum(s.fraction * w for s, w in snaps)) / total
        raw = (weight_done + sum(s.raw * w for s, w in snaps)) / total
        if settled or (files and files_done >= files):
            shown = raw = 1.0
        elapsed = self.clock() - started_at if started_at is not None else 0.0
        has_rate = measured or any(s.eta_seconds is not None for s, _ in snaps)
        eta = elapsed * (1.0 - raw) / raw if has_rate and raw > 0 else None
        with self.lock:
            self._shown = shown = min(1.0, max(self._shown, shown))
        return BatchSnapshot(
            fraction=shown,
            eta_seconds=eta if eta is None or math.isfinite(eta) else None,
            frames=frames_out + sum(s.frames for s, _ in snaps),
            files_done=files_done,
            files=files,
            elapsed=elapsed,
            in_flight=[s for s, _ in snaps],
        )
