"""``gvr upscale`` as a library: ``upscale(inputs, options)`` does the work and returns a report.

Order of work, chosen so a bad run fails before touching anything: options and output directory
are checked, the model is found, its manifest read and the backend loaded (exit 2 / 75), and only
then are inputs walked, sharded, probed and processed (``gvrcli.batch.runner``: claims, partials,
one input failing never stopping the others).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from pathlib import Path

import av

from gvrcli.batch.model import Model, Runtime, engine_settings, read_model
from gvrcli.batch.options import UpscaleOptions, check_batch
from gvrcli.batch.planning import plan_batch
from gvrcli.batch.runner import Work, process_batch
from gvrcli.batch.watchdog import probe_watched
from gvrcli.errors import Cancelled, InputError, UsageError
from gvrcli.inference.cascade import upscale_latent_file
from gvrcli.inference.colorfix import check_method
from gvrcli.inference.memory import peak_resident_mb
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
    the loaded model is kept for the next call with the same model and runtime options. Batch-wide
    errors (bad options, bad model, missing GPU) are raised as GvrError before any input is
    opened; per-file failures are in the report."""
    events = events or SilentEvents()
    cancel = cancel or threading.Event()
    started = time.monotonic()
    inputs = [Path(p) for p in inputs]
    options, encode = _checked(inputs, options)
    model = read_model(options, events)
    settings = engine_settings(options, model.manifest)
    task = None
    if options.plan is not None:  # one frame range of a plan (gvrcli.farm.range_task), into its segment
        from gvrcli.farm.range_task import range_task

        task = range_task(inputs, options, model.path, model.manifest, events)
        options, settings, encode = task.options, task.settings, task.encode
    report = _new_report(model, options)
    if model.vae is not None:
        options = dataclasses.replace(options, input_suffixes=(LATENT_SUFFIX,))
    jobs = plan_batch(inputs, options, report)

    runtime = Runtime(model, options, settings, jobs, events)
    runtime.choose_backend(session)
    if not options.dry_run:
        try:
            runtime.load(cancel)
        except Cancelled:  # a signal during the load: nothing started, exit 130/143 with the summary
            report.seconds = time.monotonic() - started
            return report
        _announce(runtime, report, events)

    provenance = _provenance(runtime) if options.sidecar else None
    make_work = functools.partial(_work, runtime, encode, task, provenance, cancel)  # called once per worker thread
    interrupt = runtime.loaded.interrupt if runtime.loaded else None  # a model step in flight may take minutes on a CPU
    process_batch(jobs, options, make_work, report, events, cancel, interrupt=interrupt, probe=_input_probe(model, options))
    report.seconds = time.monotonic() - started
    report.extra["peak_rss_mib"] = round(peak_resident_mb())
    return report


def _checked(inputs: list[Path], options: UpscaleOptions) -> tuple[UpscaleOptions, EncodeSettings]:
    """The options to run with (``check_batch``) and the encoder's settings; exit 2 on a bad
    option, colour fix or pixel format."""
    check_method(options.color_fix)
    options = check_batch(inputs, options)
    encode = EncodeSettings(get_codec(options.codec), options.crf, options.pix_fmt)
    if options.pix_fmt:
        try:
            av.VideoFormat(options.pix_fmt)
        except ValueError:
            raise UsageError(f"unknown pixel format {options.pix_fmt!r}") from None
    return options, encode


def _new_report(model: Model, options: UpscaleOptions) -> BatchReport:
    report = BatchReport(model=str(model.path), precision=options.precision or model.manifest.precision, color_fix=options.color_fix)
    report.model_facts = {"untrained": model.manifest.untrained, "model_note": model.manifest.note or None}  # the plan and summary say it
    return report


def _announce(runtime: Runtime, report: BatchReport, events: BatchEvents) -> None:
    """What runs, in the report and in one start line; a warning for what will not act as asked."""
    loaded, backend, manifest, options = runtime.loaded, runtime.backend, runtime.model.manifest, runtime.options
    report.backend, report.precision = loaded.description, loaded.precision
    why = f" (auto: {backend.reason})" if backend.reason else ""
    note = f"; {manifest.note}" if manifest.note else ""  # the start line says what runs, in one line
    events.message(f"gvr: backend {loaded.description}{why}, precision {loaded.precision}, {runtime.settings.steps} steps{note}")
    if options.cfg != 1.0 and not manifest.has_text:
        events.warning(f"gvr: --cfg {options.cfg} has no effect: the model has no text path")
    if loaded.note:
        events.warning(f"gvr: {loaded.note}")


def _provenance(runtime: Runtime) -> dict | None:
    """What ``--sidecar`` records beside each output about the model and settings that made it
    (None on a dry run: nothing is loaded, nothing written)."""
    loaded, manifest, options, settings = runtime.loaded, runtime.model.manifest, runtime.options, runtime.settings
    if loaded is None:
        return None
    return {
        "model": str(Path(runtime.model.path).resolve()),
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


def _work(runtime: Runtime, encode: EncodeSettings, task, provenance: dict | None, cancel: threading.Event) -> Work:
    """One worker thread's work: its own Upscaler, run on each video it is given (``upscale_file``)
    or, with a latent-cascade bundle, on a latent file (``upscale_latent_file``). ``task``: the
    plan's range task (``gvrcli.farm.range_task``), or None."""
    upscaler = runtime.upscaler()
    options, vae = runtime.options, runtime.model.vae

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
        stats.sidecar = task.record(stats, partial, runtime.loaded) if task else provenance
        return stats

    return work


def _input_probe(model: Model, options: UpscaleOptions):
    """How each input is probed: videos as always; with a VAE bundle, latent files too
    (``gvrcli.media.latents``)."""

    def probe(path: Path, cancel: threading.Event):
        if not is_latent_file(path):
            return probe_watched(path, options, cancel)
        if model.vae is None:
            raise InputError(f"{path}: a latent file needs a latent-cascade bundle (--model BUNDLE/ from gvr export --vae)")
        return probe_latents(path, model.manifest.latent_channels, model.vae.spatial_factor, model.vae.temporal_factor, options.max_pixels)

    return probe
