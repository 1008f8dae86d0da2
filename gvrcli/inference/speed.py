"""Speed planning: how long a tile takes on a backend, so the planner can pick the fastest plan.

The memory planner (``gvrcli.inference.memory``) lists the tile grids that fit the budget; this
module predicts each one's model time, and ``auto`` compares the CPU backends by the same
prediction. Fewest computed pixels is not fastest: at 720p -> 1440p the fewest-pixels grid under
the auto budget was 23 strips 72 px wide, each 1.5 attention windows wide, so a third of every
strip's tokens were padding and a quarter overlap (69.8 s, against 46.8 s for 60 square tiles).

**The cost model**, per backend (``SpeedModel``): one step-graph call on a clip of T frames whose
HR (latent) tile is H x W costs

    call_ms + ns_per_px(P) x (H W T + padding_share x (P T' - H W T)),
    P = H and W each rounded up to whole attention windows, T' = T rounded up to whole temporal units,

where ``ns_per_px`` is interpolated (in log P) between calibrated points: per-pixel cost moves
with the tile's size (a small working set stays in cache; a huge one pays for memory traffic).
Only the attention sees the padded tokens (the model pads inside its attention, ``models.attention``);
``padding_share`` is the part of a pixel's cost that does, measured by timing an aligned tile
against one a little larger that pads to the same windows. The condition graph costs
``condition_steps`` steps of the same tile. The points come from
``benchmarks/calibrate_speed.py`` and ship in ``gvrcli.inference.speed_table`` with the CPU they
were measured on.

**This machine**: a factor per backend (``SpeedModel.scale``) corrects the per-pixel term. It is
measured, never assumed: ``auto`` runs a short probe step per CPU backend (a child process, a
small tile, a few seconds) the first time a job is large enough for the choice to matter, and
keeps the factors in a small file under ``~/.cache/gvr/speed/`` keyed by the CPU, the runtimes'
versions and the model (``MachineCache``); the first chunk of every file corrects its backend's
factor again from its own measured steps (``Upscaler``), for the rest of the file and for later
runs. The cache file is read the way every gvr input is: non-blocking, regular files only, size
capped, schema checked; anything else is ignored and measured again.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from gvrbase.atomic import written
from gvrcli.inference.speed_table import CALIBRATED

CPU_BACKENDS = ("ort-cpu", "openvino")
SCHEMA = 1
CACHE_MAX_BYTES = 64 * 1024  # a cache file is a few hundred bytes; anything larger is not ours
SCALE_BOUNDS = (0.02, 50.0)  # a factor outside this says the measurement went wrong, not the CPU
PROBE_WORTH_S = 30.0  # predicted model seconds of a job below which a probe is not worth its ~3 s
PROBE_TIMEOUT_S = 120.0
PROBE_WINDOWS = 3  # the probe's tile: this many attention windows a side, one temporal unit


@dataclass(frozen=True)
class SpeedModel:
    """Predicted seconds of one backend's graph calls (see the module docstring)."""

    backend: str
    call_ms: float  # fixed cost of one graph call
    points: tuple[tuple[float, float], ...]  # (padded HR pixels per frame, ns per such pixel), ascending
    condition_steps: float = 0.3  # the condition graph, in steps of the same tile
    padding_share: float = 1.0  # the part of a pixel's cost its padded tokens cost too (attention)
    setup_s: float = 0.0  # per run, beyond the model's calls: loading the model, compiling its shapes
    scale: float = 1.0  # this machine's correction of the per-pixel term
    source: str = "table"  # where ``scale`` came from: table, cache, probe, first chunk

    def ns_per_px(self, pixels: float) -> float:
        """Per-pixel cost at a tile of ``pixels`` padded HR pixels per frame, before ``scale``."""
        xs = [p for p, _ in self.points]
        i = bisect.bisect_left(xs, pixels)
        if i == 0:
            return self.points[0][1]
        if i == len(xs):
            return self.points[-1][1]
        (x0, y0), (x1, y1) = self.points[i - 1], self.points[i]
        f = (math.log(pixels) - math.log(x0)) / (math.log(x1) - math.log(x0))
        return y0 + f * (y1 - y0)

    def pixel_seconds(self, frames: int, hr: tuple[int, int], window: tuple[int, int], unit: int) -> float:
        """The per-pixel term of one call, before ``scale``."""
        real = hr[0] * hr[1] * frames
        padded = _padded(hr[0], window[0]) * _padded(hr[1], window[1])
        work = real + self.padding_share * (padded * _padded(frames, unit) - real)
        return self.ns_per_px(padded) * work * 1e-9

    def call_seconds(self, frames: int, hr: tuple[int, int], window: tuple[int, int], unit: int) -> float:
        """One step-graph call on a clip of ``frames`` frames, HR tile ``hr`` (rows, cols)."""
        return self.call_ms / 1000 + self.scale * self.pixel_seconds(frames, hr, window, unit)

    def corrected(self, measured_s: float, frames: int, hr: tuple[int, int], window: tuple[int, int], unit: int, source: str) -> "SpeedModel":
        """This model with ``scale`` fitted to one measured call (the fixed part kept)."""
        pixel = self.pixel_seconds(frames, hr, window, unit)
        if not (math.isfinite(measured_s) and measured_s > 0 and pixel > 0):
            return self
        scale = min(max((measured_s - self.call_ms / 1000) / pixel, SCALE_BOUNDS[0]), SCALE_BOUNDS[1])
        return replace(self, scale=scale, source=source)


def _padded(n: int, multiple: int) -> int:
    return -(-n // max(1, multiple)) * max(1, multiple)


@dataclass(frozen=True)
class Timing:
    """What the planner needs to time a tile: the backend's model, the calls per tile (sampler steps
    x calls per step, guidance doubles them), the attention window in HR (latent) cells and the
    temporal unit. Hashable: the memory planner caches plans by it."""

    model: SpeedModel
    steps: float
    window: tuple[int, int]
    unit: int

    def tile_seconds(self, frames: int, hr: tuple[int, int]) -> float:
        call = self.model.call_seconds(frames, hr, self.window, self.unit)
        return (self.steps + self.model.condition_steps) * call

    def aligned(self, hr: tuple[int, int]) -> bool:
        """No padded tokens: both HR sides whole windows."""
        return hr[0] % self.window[0] == 0 and hr[1] % self.window[1] == 0


def table_model(backend: str) -> SpeedModel | None:
    """The shipped calibration of ``backend`` (None for a backend without one: GPUs)."""
    entry = CALIBRATED["backends"].get(backend)
    if entry is None:
        return None
    points = tuple((float(p), float(ns)) for p, ns in entry["points"])
    return SpeedModel(
        backend, float(entry["call_ms"]), points, float(entry["condition_steps"]), float(entry["padding_share"]), float(entry["setup_s"])
    )


def window_of(manifest) -> tuple[int, int]:
    """The model's 2D attention window in HR latent cells (pixels for a pixel-space model)."""
    return manifest.patch * manifest.window[0], manifest.patch * manifest.window[1]


def chunk_lengths(frames: int, chunk: int, overlap: int) -> list[int]:
    """The chunks ``StreamingUpscaler`` runs over ``frames`` frames (no scene cuts): full chunks
    stepping ``chunk - overlap``, then what is left with the overlap in front."""
    if frames <= chunk:
        return [frames] if frames > 0 else []
    full = 1 + (frames - chunk) // (chunk - overlap)
    left = frames - (chunk + (full - 1) * (chunk - overlap))
    return [chunk] * full + ([overlap + left] if left > 0 else [])


# --------------------------------------------------------------------------------------------------
# This machine: the cache file and the probe
# --------------------------------------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        fd = os.open("/proc/cpuinfo", os.O_RDONLY | os.O_NONBLOCK)
        try:
            text = os.read(fd, 1 << 16).decode("utf-8", "replace")
        finally:
            os.close(fd)
    except OSError:
        text = ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or platform.machine()


def _version(*distributions: str) -> str:
    from importlib import metadata

    for name in distributions:
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return "-"


def machine_key(manifest) -> str:
    """What the speed factors depend on: the CPU, the cores this process may use, the runtimes'
    versions and the model (its manifest, which carries its weights' hash)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = hashlib.sha256(manifest.to_json().encode()).hexdigest()[:16]
    runtimes = f"{_version('onnxruntime', 'onnxruntime-gpu')}; {_version('openvino')}"
    return f"{_cpu_name()} x{cores}; {runtimes}; model {model}; speed schema {SCHEMA}"


class MachineCache:
    """The per-machine speed factors: ``<folder>/<hash of the key>.json``, one small file per key.
    Unreadable, oversized, non-regular, foreign or malformed files read as absent (measure again);
    writes are atomic (temp file + rename) and their failures are ignored: a cache, never a
    reason to fail a job."""

    def __init__(self, folder: Path | None, key: str):
        self.key = key
        self.path = None if folder is None else Path(folder) / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")

    def read(self) -> dict[str, float]:
        """backend -> factor, only the entries that pass every check."""
        raw = _read_bounded(self.path) if self.path is not None else None
        try:
            data = json.loads(raw) if raw is not None else None
        except ValueError:  # bad JSON, bad UTF-8
            return {}
        if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("key") != self.key:
            return {}
        backends = data.get("backends")
        if not isinstance(backends, dict):
            return {}
        out = {}
        for name, value in backends.items():
            if name in CPU_BACKENDS and isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value) and SCALE_BOUNDS[0] <= value <= SCALE_BOUNDS[1]:
                    out[name] = float(value)
        return out

    def write(self, factors: dict[str, float]) -> None:
        if self.path is None:
            return
        merged = {**self.read(), **factors}
        text = json.dumps({"schema": SCHEMA, "key": self.key, "backends": merged}, indent=1, sort_keys=True)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with written(self.path) as partial:
                partial.write_text(text)
        except OSError:
            pass


def _read_bounded(path: Path) -> bytes | None:
    """The file's bytes if it is a regular file of at most CACHE_MAX_BYTES, else None. Opened
    non-blocking and without following a final symlink, so a FIFO or device cannot hang us."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > CACHE_MAX_BYTES:
            return None
        data = os.read(fd, CACHE_MAX_BYTES + 1)
        return data if len(data) <= CACHE_MAX_BYTES else None
    except OSError:
        return None
    finally:
        os.close(fd)


def probe_shape(manifest) -> tuple[int, tuple[int, int], tuple[int, int]]:
    """(frames, LR tile, HR tile) of the probe: PROBE_WINDOWS windows a side, one temporal unit."""
    wy, wx = window_of(manifest)
    s = manifest.scale
    hr = (PROBE_WINDOWS * wy, PROBE_WINDOWS * wx)
    return manifest.temporal_unit, (max(1, hr[0] // s), max(1, hr[1] // s)), hr


def run_probe(model_path: Path, backends: list[str], timeout: float = PROBE_TIMEOUT_S) -> dict[str, float]:
    """backend -> median seconds of one probe step, measured in a child process (its memory and
    threads end with it). A backend that fails or a child that times out gives no entry."""
    cmd = [sys.executable, "-m", "gvrcli.inference.speed_probe", str(model_path), *backends]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    out = {}
    for line in done.stdout.decode("utf-8", "replace").splitlines()[-len(backends) - 2:]:
        try:
            entry = json.loads(line)
            seconds = float(entry["seconds"])
        except (ValueError, TypeError, KeyError):
            continue
        if entry.get("backend") in backends and math.isfinite(seconds) and seconds > 0:
            out[entry["backend"]] = seconds
    return out


# --------------------------------------------------------------------------------------------------
# Predictions: a file's model time on a backend, and ``auto``'s choice of CPU backend
# --------------------------------------------------------------------------------------------------


def predict_file_seconds(timing: Timing, memory, settings, frames: int, h: int, w: int, multiple: int) -> float:
    """Model seconds of a clip of ``frames`` LR frames h x w: its chunks, each in ``--tile`` tiles
    or planned by the memory planner with ``timing`` (the grid it would run)."""
    from gvrcli.inference.memory import plan_tiles
    from gvrcli.inference.tiling import window_starts

    H, W = settings.output_size(h, w)
    memory = replace(memory, scale=math.sqrt(H * W / (h * w)))
    ov, total = settings.tile_overlap, 0.0
    for n in chunk_lengths(frames, settings.chunk_frames, settings.chunk_overlap):
        fixed = settings.fixed_tile(h, w)
        if fixed is not None:
            th, tw = fixed
            tiles = len(window_starts(h, th, ov)) * len(window_starts(w, tw, ov))
            total += tiles * timing.tile_seconds(n, ((th * H + h // 2) // h, (tw * W + w // 2) // w))
        else:
            total += plan_tiles(memory, n, h, w, budget_mb=settings.memory_budget_mb, overlap=ov, multiple=multiple, timing=timing).seconds
    return total


@dataclass(frozen=True)
class Choice:
    backend: str
    reason: str  # for the start line
    models: dict  # backend -> SpeedModel, this machine's factors applied
    predicted: dict  # backend -> predicted model seconds of the workload


def machine_models(cache: MachineCache, backends=CPU_BACKENDS) -> dict[str, SpeedModel]:
    """The shipped models with this machine's cached factors applied (``source`` cache). A backend
    not measured here yet takes the measured ones' geometric mean (``source`` still table): this
    CPU's speed against the table's is a better guess for it than the table's own, and comparing a
    measured backend with an unscaled one would favour whichever was not measured."""
    factors = cache.read()
    guess = math.exp(sum(math.log(f) for f in factors.values()) / len(factors)) if factors else 1.0
    models = {}
    for name in backends:
        model = table_model(name)
        if model is not None:
            models[name] = replace(model, scale=factors[name], source="cache") if name in factors else replace(model, scale=guess)
    return models


def choose_cpu_backend(
    model_path: Path, manifest, settings, workload: tuple[int, int, int], cache: MachineCache, *,
    backends=CPU_BACKENDS, baseline_mb: float = 0.0, probe=run_probe,
) -> Choice:
    """The CPU backend predicted fastest for ``workload`` (frames, LR height, width) under the
    settings' budget, each backend planned with its own memory model. Backends this machine has
    no factor for are probed first (``run_probe``), when the job is large enough for it to matter
    (PROBE_WORTH_S) and ``GVR_SPEED_PROBE`` is not ``off``; the factors are kept in ``cache``."""
    models = machine_models(cache, backends)
    if not models:
        return Choice(backends[0], "no speed table", {}, {})

    def predictions() -> dict[str, float]:  # the model's time and the backend's setup (load, shape compiles)
        return {name: model.setup_s + _predict(model, manifest, settings, workload, baseline_mb) for name, model in models.items()}

    predicted = predictions()
    missing = [name for name, model in models.items() if model.source == "table"]
    probing = os.environ.get("GVR_SPEED_PROBE", "").lower() != "off"
    if missing and probing and min(predicted.values()) >= PROBE_WORTH_S:
        frames, _, hr = probe_shape(manifest)
        for name, seconds in probe(model_path, missing).items():
            models[name] = models[name].corrected(seconds, frames, hr, window_of(manifest), manifest.temporal_unit, "probe")
        cache.write({name: model.scale for name, model in models.items() if model.source == "probe"})
        predicted = predictions()
    best = min(predicted, key=predicted.get)
    others = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in sorted(predicted.items()) if name != best)
    sources = "/".join(sorted({model.source for model in models.values()}))
    reason = f"no GPU; predicted fastest on this CPU: {predicted[best]:.0f} s (model and setup) vs {others} (speeds from {sources})"
    return Choice(best, reason, models, predicted)


def _predict(model: SpeedModel, manifest, settings, workload: tuple[int, int, int], baseline_mb: float) -> float:
    from gvrcli.inference.loaded import ACTIVATION_FACTOR, ACTIVATION_FIXED_MB
    from gvrcli.inference.memory import MemoryModel, activation_scale

    runtime = "openvino" if model.backend == "openvino" else "onnxruntime"
    frames, h, w = workload
    factor = ACTIVATION_FACTOR[runtime] * activation_scale(manifest)
    memory = MemoryModel(1.0, manifest.latent_channels, factor, ACTIVATION_FIXED_MB[runtime], baseline_mb, settings.jobs)
    timing = Timing(model, settings.steps, window_of(manifest), manifest.temporal_unit)
    return predict_file_seconds(timing, memory, settings, frames, h, w, manifest.spatial_multiple)
