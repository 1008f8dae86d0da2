"""The job templates in examples/ are valid for their schedulers and run `gvr upscale` on the
right shard: the Kubernetes Job against the Kubernetes schema, the Deadline Cloud template
through Open Job Description's own model, the Slurm script through bash with stand-ins for
`gvr` and `scontrol` that record how they were called."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def stub(bin_dir: Path, name: str, log: Path, exit_code: int = 0) -> None:
    """An executable ``name`` that appends its arguments to ``log`` and exits ``exit_code``."""
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit {exit_code}\n')
    path.chmod(0o755)


def test_kubernetes_indexed_job_is_valid_and_sizes_the_shards_from_its_completions():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    job = yaml.safe_load((EXAMPLES / "kubernetes" / "gvr-upscale-indexed-job.yaml").read_text())
    kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    (container,) = spec["template"]["spec"]["containers"]
    assert container["command"][:2] == ["gvr", "upscale"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["GVR_SHARD_COUNT"]) == spec["completions"]
    exit_rules = {rule["action"]: rule["onExitCodes"]["values"] for rule in spec["podFailurePolicy"]["rules"]}
    assert exit_rules == {"Ignore": [1], "FailJob": [2]}  # 75 (retry may cure) is retried


def test_deadline_template_makes_one_task_per_shard_each_running_its_own_shard(tmp_path):
    openjd = pytest.importorskip("openjd.model")
    template_dir = EXAMPLES / "deadline"
    template = openjd.decode_job_template(template=yaml.safe_load((template_dir / "gvr-upscale.template.yaml").read_text()))
    values = openjd.preprocess_job_parameters(
        job_template=template,
        job_parameter_values={"InputDir": "/mnt/in", "OutputDir": "/mnt/out", "Shards": "3"},
        job_template_dir=template_dir.resolve(),
        current_working_dir=tmp_path,
    )
    job = openjd.create_job(job_template=template, job_parameter_values=values)
    (step,) = job.steps
    tasks = [{k: v.value for k, v in t.items()} for t in openjd.StepParameterSpaceIterator(space=step.parameterSpace)]
    assert [t["Shard"] for t in tasks] == ["1", "2", "3"]

    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    stub(bin_dir, "gvr", log)
    script = step.script.embeddedFiles[0].data
    for name, value in {"Param.InputDir": "/mnt/in", "Param.OutputDir": "/mnt/out", "Param.Shards": "3", "Param.ExtraArgs": ""}.items():
        script = script.replace("{{" + name + "}}", value)
    for task in tasks:
        rendered = script.replace("{{Task.Param.Shard}}", task["Shard"])
        done = subprocess.run(["bash", "-c", rendered], env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
        assert done.returncode == 0
    calls = log.read_text().splitlines()
    assert calls == [f"gvr upscale /mnt/in /mnt/out --shard {i}/3 --openjd" for i in range(3)]


def test_slurm_array_script_passes_the_dirs_and_requeues_only_on_exit_75(tmp_path):
    script = EXAMPLES / "slurm" / "gvr-upscale-array.sbatch"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    directives = [line.split(None, 1)[1] for line in script.read_text().splitlines() if line.startswith("#SBATCH")]
    assert "--array=0-7" in directives and "--requeue" in directives
    env_base = {**os.environ, "SLURM_ARRAY_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": "3", "SLURM_CPUS_PER_TASK": "8"}
    for gvr_exit, requeued in ((0, False), (1, False), (75, True)):
        bin_dir, log = tmp_path / f"bin{gvr_exit}", tmp_path / f"calls{gvr_exit}.log"
        bin_dir.mkdir()
        stub(bin_dir, "gvr", log, gvr_exit)
        stub(bin_dir, "scontrol", log)
        env = {**env_base, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        done = subprocess.run(["bash", str(script), "/mnt/in", "/mnt/out"], env=env)
        assert done.returncode == gvr_exit
        calls = log.read_text().splitlines()
        assert calls[0] == "gvr upscale /mnt/in /mnt/out --json --threads 8"
        assert (calls[1:] == ["scontrol requeue 41_3"]) == requeued
