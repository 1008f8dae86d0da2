"""The job templates in examples/ are valid for their schedulers and run `gvr upscale` on the
right shard: the Kubernetes Job against the Kubernetes schema, the Deadline Cloud template
through Open Job Description's own model, the Slurm script through bash with stand-ins for
`gvr` and `scontrol` that record how they were called."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def stub(bin_dir: Path, name: str, log: Path, exit_code: int = 0) -> None:
    """An executable ``name`` that appends its arguments to ``log`` and exits ``exit_code``."""
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit {exit_code}\n')
    path.chmod(0o755)


def openjd_job(openjd, path: Path, params: dict, tmp_path: Path):
    """The job a template makes with these parameters, through Open Job Description's own model."""
    template = openjd.decode_job_template(template=yaml.safe_load(path.read_text()), supported_extensions=["TASK_CHUNKING"])
    values = openjd.preprocess_job_parameters(
        job_template=template, job_parameter_values=params, job_template_dir=path.parent.resolve(), current_working_dir=tmp_path,
    )
    return openjd.create_job(job_template=template, job_parameter_values=values)


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
    job = openjd_job(openjd, EXAMPLES / "deadline" / "gvr-upscale.template.yaml", {"InputDir": "/mnt/in", "OutputDir": "/mnt/out", "Shards": "3"}, tmp_path)
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


def gvr_wrapper(bin_dir: Path, log: Path) -> None:
    """A ``gvr`` on PATH that logs its arguments and runs this checkout's CLI."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    repo = EXAMPLES.parent
    path = bin_dir / "gvr"
    path.write_text(f'#!/bin/sh\necho "gvr $*" >> "{log}"\nPYTHONPATH="{repo}" exec "{sys.executable}" -m gvrcli "$@"\n')
    path.chmod(0o755)


def test_openjd_ranges_bundle_declares_plan_ranges_join_with_a_warm_up_per_worker(tmp_path):
    openjd = pytest.importorskip("openjd.model")
    params = {"Input": "/mnt/in/film.mp4", "Output": "/mnt/out/film.mp4", "Segments": "5", "RangesPerTask": "2"}
    job = openjd_job(openjd, EXAMPLES / "openjd" / "gvr-ranges.template.yaml", params, tmp_path)
    assert [s.name for s in job.steps] == ["Plan", "Upscale", "Join"]
    plan, upscale, join = job.steps
    assert [d.dependsOn for d in upscale.dependencies] == ["Plan"] and [d.dependsOn for d in join.dependencies] == ["Upscale"]
    tasks = [{k: v.value for k, v in t.items()} for t in openjd.StepParameterSpaceIterator(space=upscale.parameterSpace)]
    assert [t["Range"] for t in tasks] == ["1-2", "3-4", "5-5"]  # TASK_CHUNKING: RangesPerTask consecutive ranges
    (warm,) = upscale.stepEnvironments
    assert warm.script.actions.onEnter is not None and "gvr warmup" in warm.script.embeddedFiles[0].data


@pytest.mark.skipif(shutil.which("openjd") is None, reason="the OpenJD command-line runner (pip install openjd-cli) is not installed")
def test_openjd_run_of_the_ranges_bundle_joins_the_single_runs_output(tmp_path):
    """``openjd run`` of the bundle on a tiny clip with a cut, two ranges per task (TASK_CHUNKING):
    exit 0, the joined output is the single run's frames, and the warm-up ran once for the worker
    session's tasks."""
    sys.path.insert(0, str(EXAMPLES.parent))
    from tests.clips import read_video, write_video
    from tests.fake_model import build_fake_onnx
    from tests.gvrcli.test_ranges_cli import BT709_TV, two_shots

    clip = write_video(tmp_path / "clip.mp4", frames=24, size=(64, 48), content=two_shots(11), audio=True, colour=BT709_TV)
    model = build_fake_onnx(tmp_path / "m" / "fake.onnx")
    log = tmp_path / "calls.log"
    gvr_wrapper(tmp_path / "bin", log)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    out = tmp_path / "out" / "film.mp4"
    out.parent.mkdir()
    done = subprocess.run(
        ["openjd", "run", str(EXAMPLES / "openjd" / "gvr-ranges.template.yaml"), "-p", f"Input={clip}", "-p", f"Output={out}",
         "-p", "Segments=3", "-p", "RangesPerTask=2", "-p", f"Model={model}"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("openjd_progress: 100.0") == 3  # each range task ends at 100%
    calls = log.read_text().splitlines()
    assert [c.split()[1] for c in calls] == ["plan", "warmup", "upscale", "upscale", "upscale", "join"]
    subprocess.run(["gvr", "upscale", str(clip), str(tmp_path / "single.mp4"), "-m", str(model)], env=env, check=True, capture_output=True)
    joined, single = read_video(out), read_video(tmp_path / "single.mp4")
    assert joined["times"] == single["times"] and joined["audio"] == single["audio"] and joined["colour"] == single["colour"]
    assert all((a == b).all() for a, b in zip(joined["rgb"], single["rgb"])) and joined["frames"] == 24


def test_kubernetes_ranges_job_fails_an_index_on_exit_2_and_retries_75():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    job = yaml.safe_load((EXAMPLES / "kubernetes" / "gvr-ranges-indexed-job.yaml").read_text())
    kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["backoffLimitPerIndex"] >= 1
    (container,) = spec["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:2] == ["gvr", "upscale"] and "--plan" in command and "--range-index" not in command  # JOB_COMPLETION_INDEX
    rules = {rule["action"]: rule["onExitCodes"]["values"] for rule in spec["podFailurePolicy"]["rules"]}
    assert 2 in rules["FailIndex"] and rules["Count"] == [75]


def test_slurm_ranges_submit_chains_plan_array_join_and_each_step_runs_its_gvr(tmp_path):
    submit, body = EXAMPLES / "slurm" / "gvr-ranges-submit.sh", EXAMPLES / "slurm" / "gvr-ranges.sbatch"
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\necho "sbatch $*" >> "{log}"\necho 7\n')
    (bin_dir / "sbatch").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(submit), "/in/f.mp4", "/out/f.mp4", "4", "--steps", "2"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    plan, ranges, join = log.read_text().splitlines()
    assert plan.endswith("gvr-ranges.sbatch plan /in/f.mp4 /out/f.mp4 --segments 4 --codec h264 --steps 2")
    assert "--dependency=afterok:7 --array=0-3" in ranges and ranges.endswith("range /in/f.mp4 /out/f.mp4 --codec h264 --steps 2")
    assert "--dependency=afterok:7" in join and join.endswith("join /in/f.mp4 /out/f.mp4 --codec h264")
    for step, gvr_exit, expected, requeued in (
        ("plan", 0, "gvr plan /in/f.mp4 /out/f.mp4.plan.json --segments 4", False),
        ("range", 75, "gvr upscale /in/f.mp4 /out/f.mp4 --plan /out/f.mp4.plan.json --threads 8", True),
        ("range", 2, "gvr upscale /in/f.mp4 /out/f.mp4 --plan /out/f.mp4.plan.json --threads 8", False),
        ("join", 0, "gvr join /out/f.mp4.plan.json /out/f.mp4", False),
    ):
        calls = tmp_path / f"{step}{gvr_exit}.log"
        stub(bin_dir, "gvr", calls, gvr_exit)
        stub(bin_dir, "scontrol", calls)
        task = {**env, "SLURM_JOB_ID": "9", "SLURM_ARRAY_JOB_ID": "8", "SLURM_ARRAY_TASK_ID": "2", "SLURM_CPUS_PER_TASK": "8"}
        extra = ["--segments", "4"] if step == "plan" else []
        assert subprocess.run(["bash", str(body), step, "/in/f.mp4", "/out/f.mp4", *extra], env=task).returncode == gvr_exit
        lines = calls.read_text().splitlines()
        assert lines[0] == expected and (lines[1:] == ["scontrol requeue 8_2"]) == requeued


def test_gvr_warmup_needs_no_input_and_leaves_nothing_behind(tmp_path):
    from tests.fake_model import build_fake_onnx

    model = build_fake_onnx(tmp_path / "m" / "fake.onnx")
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    done = subprocess.run([sys.executable, "-m", "gvrcli", "warmup", "-m", str(model), "--input-size", "40x32", "--json"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    event = json.loads(done.stdout.splitlines()[-1])
    assert event["event"] == "warmup" and event["size"] == [40, 32] and event["frames"] == 8
    assert list((tmp_path / "tmp").glob("gvr-warmup-*")) == [] and list(tmp_path.glob("*.mkv")) == []
