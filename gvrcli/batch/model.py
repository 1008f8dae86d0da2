"""The model an upscale batch runs: found (``--model`` or the built-in default), its engine
settings for the options, its backend chosen and loaded (under the watchdog), and an Upscaler on
it for each worker thread.

Apart from the batch itself because the farm's tasks need the same answers without running one:
``gvr plan`` fixes a plan's chunk grid from the model's settings (``gvrcli.farm.range_task``) and
``gvr warmup`` sizes its synthetic clip from them (``gvrcli.farm.warmup``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from gvrcli.batch.options import BatchOptions, UpscaleOptions, size_multiple
from gvrcli.batch.planning import Job
from gvrcli.farm.discovery import Candidate
from gvrcli.batch.watchdog import probe_watched, watched
from gvrcli.errors import GvrError, RetryableError, StalledError, UsageError
from gvrcli.inference.loaded import check_model
from gvrcli.inference.caches import compiled_cache
from gvrcli.inference.backends import backend_name, make_backend
from gvrcli.inference.settings import EngineSettings, tile_shape
from gvrcli.inference.engine import Upscaler
from gvrcli.inference.memory import MemoryPlan, resident_mb
from gvrcli.inference.modelfile import read_manifest, resolve_default_model, resolve_model_path
from gvrcli.inference.speed import Choice, MachineCache, choose_cpu_backend, machine_key, machine_models, run_probe
from gvrcli.inference.vae import VaeGraphs, check_vae, read_vae
from gvrcli.media.latents import is_latent_file
from gvrcli.progress import BatchEvents
from models.manifest import ModelManifest


@dataclass(frozen=True)
class Model:
    """The model a batch runs: where it is, its manifest, and a latent-cascade bundle's VAE."""

    path: Path
    manifest: ModelManifest
    vae: VaeGraphs | None  # None: not a bundle


def read_model(options: UpscaleOptions, events: BatchEvents) -> Model:
    """``find_model``, then a bundle's VAE; exit 2 for options this model cannot honour."""
    model_path, manifest = find_model(options, events)
    vae = read_vae(model_path, manifest) if manifest.has_vae else None  # another VAE's files: exit 2 here
    if options.save_latents and vae is None:
        raise UsageError(f"--save-latents: model {model_path} is not a latent-cascade bundle (gvr export --vae)")
    if vae is not None and (options.size is not None or options.scale not in (None, manifest.scale)):
        # The denoiser's output is a latent grid the VAE decodes 8 px per cell: another size would
        # need resampling in pixels after the decode, which the cascade does not do (yet).
        raise UsageError(f"--size/--scale: the latent-cascade bundle {model_path} upscales x{manifest.scale} only")
    return Model(model_path, manifest, vae)


def find_model(options: UpscaleOptions, events: BatchEvents):
    """(path, manifest) of ``--model``, else of the built-in default nearest the ratio asked for
    (x4 from x3 up), which runs at any ratio."""
    nominal = 4 if (options.scale or 2) >= 3 else 2
    model_path = resolve_model_path(options.model) if options.model else resolve_default_model(nominal, say=lambda m: events.message(f"gvr: {m}"))
    return model_path, read_manifest(model_path)


def engine_settings(options: UpscaleOptions, manifest) -> EngineSettings:
    """The engine's settings for these options and this model (exit 2 on a bad value)."""
    return EngineSettings.from_manifest(
        manifest,
        scale=options.scale,
        size=options.size,
        size_multiple=size_multiple(options.codec, options.pix_fmt),
        cfg=options.cfg,
        steps=options.steps,
        noise_aug=options.noise_aug,
        seed=options.seed,
        chunk_frames=options.chunk_frames,
        chunk_overlap=options.chunk_overlap,
        tile=tuple(options.tile[::-1]) if isinstance(options.tile, (tuple, list)) else options.tile,  # (rows, cols)
        tile_overlap=options.tile_overlap,
        memory_budget_mb=options.memory_budget_mb,
        jobs=options.jobs,
    )


class Runtime:
    """The batch's backend for its model: chosen (``auto`` on a CPU picks the one predicted fastest
    for the batch's first input), loaded once or taken from a session, with the same model at fp32
    loaded on first need for the NaN/Inf guard; an ``Upscaler`` on it for each worker thread."""

    def __init__(self, model: Model, options: UpscaleOptions, settings: EngineSettings, jobs: list[Job], events: BatchEvents):
        self.model, self.options, self.settings, self.jobs, self.events = model, options, settings, jobs, events
        # TensorRT builds its engine for a shape profile: the chunk length and the largest LR tile (--tile).
        self.gpu = dict(trt_cache=options.trt_cache, frames=settings.chunk_frames, lr_max=tile_shape(settings.tile))
        self.speed_cache = MachineCache(compiled_cache("speed"), machine_key(model.manifest))
        self.choice: list[Choice] = []
        self.backend = None
        self.loaded = None  # the loaded model; None until ``load`` (and on a dry run)
        self.speeds: dict = {}
        self._session: dict | None = None
        self._key: tuple = ()
        self._held = None
        self._fp32_lock, self._fp32_model = threading.Lock(), []

    def choose_backend(self, session: dict | None) -> None:
        """The backend for the options, or the one ``session`` holds for the same model and runtime
        options (``gvrcli.api.Session`` keeps the loaded model from call to call)."""
        o, m = self.options, self.model
        self._key = (str(m.path), m.manifest.weights_sha256, o.backend, o.device, o.threads, o.precision, self.settings.chunk_frames, self.settings.tile)
        self._session = session
        self._held = session.get(self._key) if session is not None and not o.dry_run else None
        self.backend = self._make_backend(o.precision) if self._held is None else self._held[0]
        self.speeds = self.choice[0].models if self.choice else machine_models(self.speed_cache)

    def load(self, cancel: threading.Event) -> None:
        """Load the model and run its test step (``load_watched``), or take it from the session.
        Raises Cancelled on a signal, RetryableError when the load stalls."""
        m = self.model
        self.loaded = self._held[1] if self._held else load_watched(self.backend, m.manifest, m.vae, self.settings, m.path, self.options, cancel)
        if self._session is not None:
            self._session[self._key] = (self.backend, self.loaded)

    def upscaler(self) -> Upscaler:
        """A new Upscaler on the loaded model, for one worker thread (each keeps its own model-time
        counter)."""
        upscaler = Upscaler(self.loaded, self.settings, fallback=self._fp32_fallback if self.loaded.precision != "fp32" else None)
        if upscaler.speed is not None:  # this machine's factor; the first chunk's measure is kept for next time
            upscaler.speed = self.speeds.get(upscaler.speed.backend, upscaler.speed)
            upscaler.on_speed = lambda model: self.speed_cache.write({model.backend: model.scale})
        return upscaler

    def _make_backend(self, precision: str | None):
        o, m = self.options, self.model
        return make_backend(m.path, o.backend, o.device, o.threads, precision, m.manifest, cpu_choice=self._cpu_choice, **self.gpu)

    def _cpu_choice(self) -> tuple[str, str]:
        """``auto`` on a CPU: the backend predicted fastest for this batch's first file."""
        if self.choice:  # asked again (the fp32 fallback's load): the same answer
            return self.choice[0].backend, self.choice[0].reason
        m = self.model
        workload = first_workload(self.jobs, self.options, self.settings)
        baseline = resident_mb() + (m.path.stat().st_size / 2**20 if m.path.is_file() else 0.0)  # + the weights, roughly
        probe = (lambda path, names: {}) if self.options.dry_run else run_probe  # a dry run measures nothing
        self.choice.append(choose_cpu_backend(m.path, m.manifest, self.settings, workload, self.speed_cache, baseline_mb=baseline, probe=probe))
        return self.choice[0].backend, self.choice[0].reason

    def _fp32_fallback(self):
        """The same model at fp32, for the NaN/Inf guard: loaded on first need, shared by workers.
        A fp16 or int8 artefact has no fp32 form: that raises, and the chunk's file fails."""
        with self._fp32_lock:
            if not self._fp32_model:
                again = self._make_backend("fp32")
                self._fp32_model.append(again.load(self.model.manifest))
                self.events.message(f"gvr: loaded {self._fp32_model[0].description} at fp32 to recompute non-finite chunks")
            return self._fp32_model[0]


@dataclass(frozen=True)
class RunChoices:
    """What a run makes of ``--backend auto`` and ``--tile 0`` for one input on this machine."""

    backend: str  # a --backend name, never auto
    tile: tuple[int, int]  # LR (rows, cols): --tile as given, else the planner's for a full chunk
    why_backend: str  # "" when given
    plan: MemoryPlan | None  # the planner's answer (None when --tile was given)
    warnings: tuple[str, ...] = ()  # a budget no tile meets


def run_choices(model: Model, options: UpscaleOptions, settings: EngineSettings, source: Path, height: int, width: int,
                events: BatchEvents) -> RunChoices:
    """The backend a batch of ``source`` would run (``auto`` chosen as the batch chooses it) and the
    LR tile of its full chunks at height x width: the engine's own planner (``Upscaler.tile_size``)
    on the model loaded as a run loads it, with this machine's speed factors, before any chunk has
    corrected them. ``gvr plan`` freezes both, so every range runs the same numerics and tiles."""
    job = Job(Candidate(source, Path(source.name), True), options.output_dir / source.name)
    runtime = Runtime(model, options, settings, [job], events)
    runtime.choose_backend(None)
    name, why = backend_name(runtime.backend), runtime.backend.reason
    given = tile_shape(settings.tile)
    if given is not None:
        return RunChoices(name, given, why, None)
    runtime.load(threading.Event())
    upscaler = runtime.upscaler()
    tile = upscaler.tile_size(settings.chunk_frames, height, width)
    # A tile as wide as a frame no wider than the overlap: the same one tile, and a valid --tile.
    tile = (max(tile[0], settings.tile_overlap + 1), max(tile[1], settings.tile_overlap + 1))
    return RunChoices(name, tile, why, upscaler.plan, tuple(upscaler.warnings))


def load_watched(backend, manifest, vae, settings: EngineSettings, model_path: Path, options: UpscaleOptions, cancel: threading.Event):
    """Load the model and run its test step under the stall watchdog and the signal handling, like
    every other stage: a load that blocks (a runtime reading a shared cache over a hung mount) is
    one line and exit 75 after ``--stall-timeout``, and a signal ends it at once."""

    def load():
        loaded = backend.load(manifest)
        Upscaler(loaded, settings)  # refuses models the engine cannot run, before any video
        check_model(loaded, model_path)
        if vae is not None:
            check_vae(loaded, vae, model_path)
        return loaded

    try:
        return watched(load, options.stall_timeout, cancel, "", name="gvr-load")
    except StalledError:
        raise RetryableError(
            f"model {model_path}: loading stalled (no answer for {options.stall_timeout:g} s; a shared "
            "compiled-model cache on a hung mount?); retry, or raise --stall-timeout"
        ) from None


def first_workload(jobs: list[Job], options: BatchOptions, settings: EngineSettings) -> tuple[int, int, int]:
    """(frames, LR height, width) of the first input that probes as a video, for ``auto``'s
    prediction; a nominal 20-frame 960x540 clip when none does."""
    cancel = threading.Event()
    for job in jobs[:8]:
        if is_latent_file(job.candidate.source):
            continue
        try:
            info = probe_watched(job.candidate.source, options, cancel)
        except GvrError:
            continue
        return max(info.frames, 1) if info.frames else settings.chunk_frames, info.height, info.width
    return settings.chunk_frames, 540, 960
