"""One check, when a run is planned, that every file it will write is one input's alone.

A job writes its output, and beside it its sidecar (``--sidecar``, removed when stale without it)
and its latents (``--save-latents``). Any of these may land where another job writes, or on a
folder another job's output needs (an input folder called ``a.mp4.latents.safetensors``), or on a
name reserved for gvr's partial and lock files. Such a job is refused when the run is planned,
over *all* inputs and before sharding, so every worker of every shard decides the same, without
opening a file: found at run time instead, which file failed (with a bare ``File exists``)
depended on order and shard.

Jobs claim what they write in order of ``first`` (files meant as inputs before the rest), then
walk order; a refused job's reason names both files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from gvrbase import atomic
from gvrcli.farm.claims import LOCK_DIR_NAME


def refuse_collisions(
    jobs: Sequence, output_dir: Path, beside: Callable[[Path], dict[str, Path]], first: Callable[[object], bool]
) -> tuple[list, list[tuple[object, str]]]:
    """(kept jobs in their order, refused (job, reason)). ``jobs`` have ``.candidate.source`` and
    ``.output``; ``beside(output)`` names the other files written for it (what -> path); ``first(job)``:
    the job claims before the others."""
    owner: dict[Path, tuple[Path, str]] = {}  # every file some job writes -> (its input, what it is)
    folders: dict[Path, Path] = {}  # every folder some job's files need -> the first input needing it
    kept, refused = [], []
    for job in [j for j in jobs if first(j)] + [j for j in jobs if not first(j)]:
        writes = {"output": job.output, **beside(job.output)}
        reason = next((r for what, path in writes.items() if (r := _why_not(job.candidate.source, what, path, output_dir, owner, folders))), None)
        if reason:
            refused.append((job, reason))
            continue
        for what, path in writes.items():
            owner[path] = (job.candidate.source, what)
            for p in path.relative_to(output_dir).parents:
                folders.setdefault(output_dir / p, job.candidate.source)
        kept.append(job)
    order = {id(j): i for i, j in enumerate(jobs)}
    kept.sort(key=lambda j: order[id(j)])
    return kept, refused


def _why_not(source: Path, what: str, path: Path, output_dir: Path, owner: dict, folders: dict) -> str | None:
    rel = path.relative_to(output_dir)
    mine = "output" if what == "output" else f"{what} file"
    if any(atomic.is_reserved_name(part) or part == LOCK_DIR_NAME for part in rel.parts):
        return f"{source}: {mine} name {rel.as_posix()!r} is reserved for gvr's partial and lock files"
    if path in owner:
        other, theirs = owner[path]
        return f"{source}: {mine} {path} would collide with the {_named(theirs)} of {other}"
    if path in folders:
        return f"{source}: {mine} {path} would collide with the folder holding the output of {folders[path]}"
    clash = next((output_dir / p for p in rel.parents if output_dir / p in owner), None)
    if clash is not None:
        other, theirs = owner[clash]
        return f"{source}: {mine} {path} would collide with {clash}, the {_named(theirs)} of {other}"
    return None


def _named(what: str) -> str:
    return "output" if what == "output" else f"{what} file"
