"""The model an upscale batch runs: found (``--model`` or the built-in default), its engine
settings for the options, and its load under the watchdog.

Apart from the batch itself because the farm's tasks need the same answers without running one:
``gvr plan`` fixes a plan's chunk grid from the model's settings (``gvrcli.farm.range_task``) and
``gvr warmup`` sizes its synthetic clip from them (``gvrcli.farm.warmup``).
"""

from __future__ import annotations

import threading
from pathlib import Path

from gvrcli.batch.options import BatchOptions, UpscaleOptions, size_multiple
from gvrcli.batch.planning import Job
from gvrcli.batch.watchdog import probe_watched, watched
from gvrcli.errors import GvrError, RetryableError, StalledError
from gvrcli.inference.backends import check_model
from gvrcli.inference.engine import EngineSettings, Upscaler
from gvrcli.inference.modelfile import read_manifest, resolve_default_model, resolve_model_path
from gvrcli.inference.vae import check_vae
from gvrcli.media.latents import is_latent_file
from gvrcli.progress import BatchEvents


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
        tile=options.tile,
        tile_overlap=options.tile_overlap,
        memory_budget_mb=options.memory_budget_mb,
        jobs=options.jobs,
    )


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
