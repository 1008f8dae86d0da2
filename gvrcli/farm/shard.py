"""Deterministic sharding: which inputs worker I of N takes.

A file belongs to shard ``sha1(relative path) mod N``, the path being its *output's* relative to
OUTPUT_DIR (``gvrcli.batch.planning.plan``), so inputs whose outputs collide share a shard. (Not
crc32: it is linear, so names that differ in one digit, like clip0..clip5, can all share a parity
and land in one shard.) The hash depends only on that one path, so the N shards partition the inputs
exactly, and a file keeps its shard when other files appear or vanish between runs (an index into
a sorted list would reshuffle).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from gvrcli.errors import UsageError


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int
    source: str = field(default="--shard", compare=False)  # where it came from, for messages

    def __post_init__(self):
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(f"shard {self.index}/{self.count} from {self.source} is out of range (need 0 <= I < N)")

    def takes(self, relative: Path) -> bool:
        digest = hashlib.sha1(relative.as_posix().encode("utf-8", "surrogateescape")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index


def _index(text: str) -> int:
    """A shard number: ASCII digits only. ``int()`` also takes ``1_0``, signs, spaces and other
    scripts' digits (``"١"``), which a scheduler never means."""
    if not _DIGITS.fullmatch(text):
        raise ValueError(text)
    return int(text)


_DIGITS = re.compile(r"[0-9]+")


def parse_shard(spec: str) -> Shard:
    try:
        index, count = (_index(x) for x in spec.split("/"))
    except ValueError:
        raise UsageError(f"--shard {spec!r} is not I/N in digits (for example 0/4)") from None
    return Shard(index, count)


# Job arrays that give each task an index but not the array's size: (index variable, size
# variables tried in order, what to call it). Kubernetes Indexed Jobs expose only the index
# (JOB_COMPLETION_INDEX); AWS Batch sets AWS_BATCH_JOB_ARRAY_SIZE only on the parent job.
INDEXED_ARRAYS = (
    ("AWS_BATCH_JOB_ARRAY_INDEX", ("AWS_BATCH_JOB_ARRAY_SIZE", "GVR_SHARD_COUNT"), "AWS_BATCH_JOB_ARRAY_INDEX"),
    ("JOB_COMPLETION_INDEX", ("GVR_SHARD_COUNT",), "JOB_COMPLETION_INDEX (Kubernetes Indexed Job)"),
)


def shard_from_env(env: dict[str, str] | None = None) -> Shard | None:
    """The shard a job array gives this task, or None outside a job array.

    Slurm: SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN (arrays may start at 1) of
    SLURM_ARRAY_TASK_COUNT. AWS Batch: AWS_BATCH_JOB_ARRAY_INDEX of AWS_BATCH_JOB_ARRAY_SIZE or
    GVR_SHARD_COUNT. Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX of GVR_SHARD_COUNT (set it to
    the Job's ``completions`` in the pod template's environment).
    """
    env = os.environ if env is None else env
    try:
        if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
            task = _index(env["SLURM_ARRAY_TASK_ID"]) - _index(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            return Shard(task, _index(env["SLURM_ARRAY_TASK_COUNT"]), "SLURM_ARRAY_TASK_ID/COUNT")
        for index_var, size_vars, source in INDEXED_ARRAYS:
            if index_var not in env:
                continue
            count = next((env[v] for v in size_vars if env.get(v)), None)
            if not count:
                raise UsageError(
                    f"{index_var} is set but the array size is not: set {' or '.join(size_vars)}, or pass --shard I/N"
                )
            return Shard(_index(env[index_var]), _index(count), source)
    except ValueError:
        raise UsageError("job-array environment variables are not integers (ASCII digits)") from None
    return None


def task_index_from_env(env: dict[str, str] | None = None) -> tuple[int, str] | None:
    """(0-based index, its source) of this task in a job array, without the array's size: what a
    frame-range task (``--plan`` without ``--range``) takes as its range index. None outside one."""
    env = os.environ if env is None else env
    try:
        if "SLURM_ARRAY_TASK_ID" in env:
            return _index(env["SLURM_ARRAY_TASK_ID"]) - _index(env.get("SLURM_ARRAY_TASK_MIN", "0")), "SLURM_ARRAY_TASK_ID"
        for index_var, _, source in INDEXED_ARRAYS:
            if index_var in env:
                return _index(env[index_var]), source
    except ValueError:
        raise UsageError("job-array environment variables are not integers (ASCII digits)") from None
    return None
