"""--shard I/N: the shards partition the inputs exactly, and job arrays set it from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from gvrcli.errors import UsageError
from gvrcli.farm.shard import Shard, parse_shard, shard_from_env

NAMES = [Path(f"shot{i:03d}/take{j}.mp4") for i in range(60) for j in range(3)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shards_partition_exactly(count):
    taken = [[p for p in NAMES if Shard(i, count).takes(p)] for i in range(count)]
    flat = [p for shard in taken for p in shard]
    assert sorted(flat) == sorted(NAMES), "every input in exactly one shard"
    assert len(flat) == len(set(flat))
    if count > 1:
        assert all(len(t) > 0 for t in taken)


def test_a_file_keeps_its_shard_when_others_appear():
    before = {p for p in NAMES if Shard(1, 4).takes(p)}
    assert {p for p in NAMES + [Path("new.mp4")] if Shard(1, 4).takes(p)} - {Path("new.mp4")} == before


def test_parse_and_range():
    assert parse_shard("2/5") == Shard(2, 5)
    for bad in ("5/5", "-1/3", "1/0", "a/b", "3"):
        with pytest.raises(UsageError):
            parse_shard(bad)


def test_slurm_array_sets_the_shard():
    env = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "1"}
    assert shard_from_env(env) == Shard(2, 4, "SLURM_ARRAY_TASK_ID/COUNT")
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "0", "SLURM_ARRAY_TASK_COUNT": "2"}).index == 0


def test_aws_batch_array_sets_the_shard():
    assert shard_from_env({"AWS_BATCH_JOB_ARRAY_INDEX": "1", "AWS_BATCH_JOB_ARRAY_SIZE": "3"}) == Shard(1, 3)
    with pytest.raises(UsageError, match="array size"):
        shard_from_env({"AWS_BATCH_JOB_ARRAY_INDEX": "1"})


def test_kubernetes_indexed_job_sets_the_shard_with_gvr_shard_count():
    assert shard_from_env({"JOB_COMPLETION_INDEX": "1", "GVR_SHARD_COUNT": "2"}) == Shard(1, 2)
    with pytest.raises(UsageError, match="GVR_SHARD_COUNT"):
        shard_from_env({"JOB_COMPLETION_INDEX": "0"})
    with pytest.raises(UsageError, match="out of range"):
        shard_from_env({"JOB_COMPLETION_INDEX": "2", "GVR_SHARD_COUNT": "2"})


def test_no_job_array_means_no_shard():
    assert shard_from_env({}) is None
