"""Planning a batch: which inputs this worker takes and where each one's output goes, decided
before any input is opened or anything written.

Inputs are walked (``gvrcli.farm.discovery``) and each is given its output path. Outputs that
would collide, or be named like gvr's own files, are refused over *all* inputs before sharding,
so every worker of a farm makes the same plan and colliding inputs land in one shard. An output
that would land outside OUTPUT_DIR stops the batch here (exit 2), with nothing touched.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gvrcli.batch.options import BatchOptions
from gvrcli.batch.watchdog import probe_watched
from gvrcli.errors import InputError, UsageError
from gvrcli.farm import sidecar
from gvrcli.farm.collisions import refuse_collisions
from gvrcli.farm.discovery import Candidate, Territory, find_candidates
from gvrcli.media.formats import VIDEO_EXTENSIONS, OutputCodec, get_codec, output_relative_path
from gvrcli.media.latents import latents_path
from gvrcli.report import FAILED, BatchReport, FileResult


@dataclass(frozen=True)
class Job:
    """One input and the path its output is written to, under OUTPUT_DIR."""

    candidate: Candidate
    output: Path


def plan_batch(inputs: list[Path], options: BatchOptions, report: BatchReport) -> list[Job]:
    """This worker's jobs; inputs whose output would collide with another's, or is named like
    gvr's own files, are failed in ``report`` (a file that is not meant as a video only if it
    probes as one: a sidecar sharing a video's output name is just not an input). Their events
    follow the plan (``process_batch``)."""
    jobs, refused, _ = plan(inputs, options)
    cancel = threading.Event()
    for job, reason in refused:
        if not meant_as_input(job.candidate, options):
            try:
                probe_watched(job.candidate.source, options, cancel)
            except InputError:
                continue
        report.files.append(FileResult(job.candidate.source, job.output, FAILED, reason=reason))
    return jobs


def plan_jobs(inputs: list[Path], options: BatchOptions) -> list[Job]:
    """Inputs -> (input, output) pairs for this worker's shard, without opening any file."""
    return plan(inputs, options)[0]


def plan(inputs: list[Path], options: BatchOptions) -> tuple[list[Job], list[tuple[Job, str]], Territory]:
    """This worker's jobs, its inputs refused at planning (colliding or reserved output names, as
    (job, reason)), and where it may write.

    Collisions are found over *all* inputs, before sharding, and a file's shard is a hash of its
    output's relative path, so colliding inputs land in one shard and every shard agrees on which
    of them wins. Raises UsageError (nothing touched yet) when an output would land outside
    OUTPUT_DIR or inside an input (through ``..`` or a symbolic link in OUTPUT_DIR).
    """
    codec = get_codec(options.codec)
    candidates = find_candidates(
        inputs,
        recursive=options.recursive,
        include=options.include,
        exclude=options.exclude,
        follow_symlinks=options.follow_symlinks,
        output_dir=options.output_dir,
    )
    jobs = [Job(c, options.output_dir / output_path(c, options.output_name, codec)) for c in candidates]
    jobs, refused = refuse_collisions(jobs, options.output_dir, _beside(options), lambda j: meant_as_input(j.candidate, options))
    territory = Territory(options.output_dir, inputs, candidates)
    for job in jobs:
        why = territory.why_not(job.output)
        if why:
            raise UsageError(f"{job.candidate.source}: output {job.output}: {why}")
    if options.shard:
        jobs = [j for j in jobs if options.shard.takes(j.output.relative_to(options.output_dir))]
        refused = [(j, why) for j, why in refused if options.shard.takes(j.output.relative_to(options.output_dir))]
    return jobs, refused, territory


def output_path(candidate: Candidate, output_name: str | None, codec: OutputCodec) -> Path:
    """Where an input's output goes, relative to the output folder: OUTPUT's own name when OUTPUT
    names a file (file to file), else the input's path under its root with the container rule of
    ``formats.output_relative_path``."""
    return Path(output_name) if output_name else output_relative_path(candidate.relative, codec)


def meant_as_input(candidate: Candidate, options: BatchOptions) -> bool:
    """Named explicitly, or carrying the extension of an input kind this run reads (a video's, and
    with a latent-cascade bundle a latent file's): a failure of such a file is reported, whatever
    its kind (one error line, exit 1). Any other file that turns out not to be an input is
    silently not one."""
    suffix = candidate.source.suffix.lower()
    return candidate.explicit or suffix in VIDEO_EXTENSIONS or suffix in options.input_suffixes


def _beside(options: BatchOptions) -> Callable[[Path], dict[str, Path]]:
    """The files a job writes (or removes) beside its output: the sidecar (written with
    ``--sidecar``, removed as stale without it), the latents with ``--save-latents``."""

    def beside(output: Path) -> dict[str, Path]:
        files = {"sidecar": sidecar.sidecar_path(output)}
        if getattr(options, "save_latents", False):
            files["latents"] = latents_path(output)
        return files

    return beside
