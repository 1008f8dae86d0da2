"""``gvr upscale`` as a library: ``upscale(inputs, options)`` does the work and returns a report.

Order of work, chosen so a bad run fails before touching anything: options and output directory
are checked, the model is found, its manifest read and the backend loaded (exit 2 / 75), and only
then are inputs walked, sharded, probed and processed (``gvrcli.batch.runner``: claims, partials,
one input failing never stopping the others).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import av

from gvrcli.batch.model import engine_settings, find_model, first_workload, load_watched
from gvrcli.batch.options import UpscaleOptions, check_batch
from gvrcli.batch.planning import plan_batch
from gvrcli.batch.runner import Work, process_batch
from gvrcli.batch.watchdog import probe_watched
from gvrcli.errors import Cancelled, InputError, UsageError
from gvrcli.inference.backends import compiled_cache, make_backend
from gvrcli.inference.cascade import upscale_latent_file
from gvrcli.inference.colorfix import check_method
from gvrcli.inference.engine import Upscaler
from gvrcli.inference.memory import peak_resident_mb, resident_mb
from gvrcli.inference.speed import Choice, MachineCache, choose_cpu_backend, machine_key, machine_models, run_probe
from gvrcli.inference.vae import read_vae
from gvrcli.media.encode import EncodeSettings
from gvrcli.media.formats import get_codec
from gvrcli.media.latents import SUFFIX as LATENT_SUFFIX
from gvrcli.media.latents import LatentInfo, is_latent_file, probe_latents
from gvrcli.pipeline import FileStats, upscale_file
from gvrcli.progress import BatchEvents, SilentEvents
from gvrcli.report import BatchReport


def upscale(
    inputs: list[Path],
    options: UpscaleOptions,
    events: BatchEvents | None = None,
    cancel: threading.Event | None = None,
    session: dict | None = None,
) -> BatchReport:
    """Upscale every video in ``inputs`` into ``options.output_dir``. ``session``: a dict in which
    the loaded model is kept for the next call with the same model and runtime options. Batch-wide errors (bad options,
    bad model, missing GPU) are raised as GvrError before any input is opened; per-file failures
    are in the report."""
    events = events or SilentEvents()
    cancel = cancel or threading.Event()
    started = time.monotonic()
    inputs = [Path(p) for p in inputs]
    check_method(options.color_fix)
    options = check_batch(inputs, options)
    encode = EncodeSettings(get_codec(options.codec), options.crf, options.pix_fmt)
    if options.pix_fmt:
        try:
            av.VideoFormat(options.pix_fmt)
        except ValueError:
            raise UsageError(f"unknown pixel format {options.pix_fmt!r}") from None

    model_path, manifest = find_model(options, events)
    vae = read_vae(model_path, manifest) if manifest.has_vae else None  # another VAE's files: exit 2 here
    if options.save_latents and vae is None:
        raise UsageError(f"--save-latents: model {model_path} is not a latent-cascade bundle (gvr export --vae)")
    if vae is not None and (options.size is not None or options.scale not in (None, manifest.scale)):
        # The denoiser's output is a latent grid the VAE decodes 8 px per cell: another size would
        # need resampling in pixels after the decode, which the cascade does not do (yet).
        raise UsageError(f"--size/--scale: the latent-cascade bundle {model_path} upscales x{manifest.scale} only")
    settings = engine_settings(options, manifest)
    task = None
    if options.plan is not None:  # one frame range of a plan (gvrcli.farm.range_task), into its segment
        from gvrcli.farm.range_task import range_task

        task = range_task(inputs, options, model_path, manifest, settings, events)
        options, encode = task.options, task.encode
    report = BatchReport(model=str(model_path), precision=options.precision or manifest.precision, color_fix=options.color_fix)
    report.model_facts = {"untrained": manifest.untrained, "model_note": manifest.note or None}  # the plan and summary say it
    if vae is not None:
        options = dataclasses.replace(options, input_suffixes=(LATENT_SUFFIX,))
    jobs = plan_batch(inputs, options, report)

    # TensorRT builds its engine for a shape profile: the chunk length and the largest LR tile (--tile).
    gpu = dict(trt_cache=options.trt_cache, frames=settings.chunk_frames, lr_max=(options.tile, options.tile) if options.tile else None)
    speed_cache = MachineCache(compiled_cache("speed"), machine_key(manifest))
    choice: list[Choice] = []

    def cpu_choice() -> tuple[str, str]:  # auto on a CPU: the backend predicted fastest for this batch's first file
        if choice:  # asked again (the fp32 fallback's load): the same answer
            return choice[0].backend, choice[0].reason
        workload = first_workload(jobs, options, settings)
        baseline = resident_mb() + (model_path.stat().st_size / 2**20 if model_path.is_file() else 0.0)  # + the weights, roughly
        probe = (lambda path, names: {}) if options.dry_run else run_probe  # a dry run measures nothing
        choice.append(choose_cpu_backend(model_path, manifest, settings, workload, speed_cache, baseline_mb=baseline, probe=probe))
        return choice[0].backend, choice[0].reason

    # A session (``gvrcli.api.Session``) keeps the loaded model from call to call.
    key = (str(model_path), manifest.weights_sha256, options.backend, options.device, options.threads, options.precision, settings.chunk_frames, options.tile)
    held = session.get(key) if session is not None and not options.dry_run else None
    if held is None:
        backend = make_backend(model_path, options.backend, options.device, options.threads, options.precision, manifest, cpu_choice=cpu_choice, **gpu)
    else:
        backend = held[0]
    speeds = choice[0].models if choice else machine_models(speed_cache)
    loaded = None
    if not options.dry_run:
        try:
            loaded = held[1] if held else load_watched(backend, manifest, vae, settings, model_path, options, cancel)
        except Cancelled:  # a signal during the load: nothing started, exit 130/143 with the summary
            report.seconds = time.monotonic() - started
            return report
        if session is not None:
            session[key] = (backend, loaded)
        report.backend, report.precision = loaded.description, loaded.precision
        why = f" (auto: {backend.reason})" if backend.reason else ""
        note = f"; {manifest.note}" if manifest.note else ""  # the start line says what runs, in one line
        events.message(f"gvr: backend {loaded.description}{why}, precision {loaded.precision}, {settings.steps} steps{note}")
        if options.cfg != 1.0 and not manifest.has_text:
            events.warning(f"gvr: --cfg {options.cfg} has no effect: the model has no text path")
        if loaded.note:
            events.warning(f"gvr: {loaded.note}")

    provenance = None
    if options.sidecar and loaded is not None:
        provenance = {
            "model": str(Path(model_path).resolve()),
            "weights_sha256": manifest.weights_sha256,
            "backend": loaded.description,
            "device": options.device,
            "precision": loaded.precision,
            "steps": settings.steps,
            "noise_aug": settings.noise_aug,
            "seed": settings.seed,
            "codec": options.codec,
            "scale": settings.scale if settings.size is None else None,
            "size": list(settings.size) if settings.size else None,
            "cfg": settings.cfg,
        }

    fp32_lock, fp32_model = threading.Lock(), []

    def fp32_fallback():
        """The same model at fp32, for the NaN/Inf guard: loaded on first need, shared by workers.
        A fp16 or int8 artefact has no fp32 form: that raises, and the chunk's file fails."""
        with fp32_lock:
            if not fp32_model:
                again = make_backend(model_path, options.backend, options.device, options.threads, "fp32", manifest, cpu_choice=cpu_choice, **gpu)
                fp32_model.append(again.load(manifest))
                events.message(f"gvr: loaded {fp32_model[0].description} at fp32 to recompute non-finite chunks")
            return fp32_model[0]

    def make_work() -> Work:  # one Upscaler per worker thread: each keeps its own model-time counter
        upscaler = Upscaler(loaded, settings, fallback=fp32_fallback if loaded.precision != "fp32" else None)
        if upscaler.speed is not None:  # this machine's factor; the first chunk's measure is kept for next time
            upscaler.speed = speeds.get(upscaler.speed.backend, upscaler.speed)
            upscaler.on_speed = lambda model: speed_cache.write({model.backend: model.scale})

        def work(job, info, partial, progress) -> FileStats:
            # Files read beside an input (its prompt) follow the walk's rule for links.
            tree = None if options.follow_symlinks else job.candidate.root or job.candidate.source.parent
            if isinstance(info, LatentInfo):
                before = upscaler.model_seconds
                frames, latents, warnings = upscale_latent_file(
                    info, partial, upscaler, vae, encode, cancel=cancel, on_frames=progress.frames_out,
                    keep_latents=options.save_latents, input_tree=tree,
                )
                stats = FileStats(frames, upscaler.model_seconds - before, warnings, "none", {"precision": upscaler.model.precision})
                stats.latents, stats.fps, stats.sidecar = latents, float(info.fps), provenance
                return stats
            stats = upscale_file(
                info,
                partial,
                upscaler,
                encode,
                cancel=cancel,
                progress=progress,
                stall_timeout=options.stall_timeout,
                color_fix=options.color_fix,
                scene_cuts=options.scene_cuts,
                vae=vae,
                keep_latents=options.save_latents,
                input_tree=tree,
                window=task.window if task else None,
            )
            stats.sidecar = task.record(stats, partial, loaded) if task else provenance
            return stats

        return work

    interrupt = loaded.interrupt if loaded else None  # a model step in flight may take minutes on a CPU
    def probe(path: Path, cancel: threading.Event):
        """Videos as always; with a VAE bundle, latent files too (``gvrcli.media.latents``)."""
        if not is_latent_file(path):
            return probe_watched(path, options, cancel)
        if vae is None:
            raise InputError(f"{path}: a latent file needs a latent-cascade bundle (--model BUNDLE/ from gvr export --vae)")
        return probe_latents(path, manifest.latent_channels, vae.spatial_factor, vae.temporal_factor, options.max_pixels)

    process_batch(jobs, options, make_work, report, events, cancel, interrupt=interrupt, probe=probe)
    report.seconds = time.monotonic() - started
    report.extra["peak_rss_mib"] = round(peak_resident_mb())
    return report


