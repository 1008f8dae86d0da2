"""``gvr upscale`` as scripts run it: exit codes, --json, kill and resume, signals, concurrent workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.clips import read_video, write_video
from tests.fake_model import build_fake_onnx


def run(gvr_cmd, cli_env, *args, **kw):
    return subprocess.run([*gvr_cmd, *map(str, args)], env=cli_env, capture_output=True, text=True, timeout=120, **kw)


def leftovers(out: Path) -> list[str]:
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.name.startswith("."))


def outputs_valid(src_root: Path, out: Path) -> dict[str, bool]:
    """For every output present: does it decode completely, with every frame of its input?"""
    result = {}
    for dst in out.rglob("*.mp4"):
        if dst.name.startswith("."):
            continue
        src = src_root / dst.relative_to(out)
        try:
            result[dst.name] = read_video(dst)["frames"] == read_video(src)["frames"]
        except Exception:
            result[dst.name] = False
    return result


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    for i in range(6):
        write_video(root / f"sub{i % 2}" / f"clip{i}.mp4", frames=12, size=(160, 96))
    return root


def test_json_lines_parse_and_end_with_a_summary(gvr_cmd, cli_env, clips, tmp_path, fake_model):
    done = run(gvr_cmd, cli_env, "upscale", clips, tmp_path / "out", "--model", fake_model, "--json", "--progress-interval", "0")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # every stdout line is JSON
    assert events[0]["event"] == "plan" and events[0]["files"] == 6
    summary = events[-1]
    assert summary["event"] == "summary"
    assert (summary["done"], summary["skipped"], summary["failed"], summary["frames"]) == (6, 0, 0, 72)
    assert summary["fps"] > 0 and summary["exit_code"] == 0
    assert {e["event"] for e in events} >= {"plan", "file_start", "progress", "file", "summary"}
    # Precision is explicit and fp32 by default, whatever the CPU; the start line says what runs and
    # why: the CPU backend predicted fastest (gvrcli.inference.speed), named against the other.
    assert summary["precision"] == "fp32" and summary["backend"].split()[0] in ("openvino", "onnxruntime")
    other = "ort-cpu" if summary["backend"].startswith("openvino") else "openvino"
    assert all(e["precision"] == "fp32" and e["step_ms"] > 0 for e in events if e["event"] == "file")
    assert "precision fp32" in done.stderr and "auto: no GPU; predicted fastest" in done.stderr and f"vs {other} " in done.stderr
    # Each file's plan: its backend, tiles, and model seconds predicted, corrected and measured.
    for e in (e for e in events if e["event"] == "file"):
        plan = e["plan"]
        assert plan["backend"] == ("openvino" if other == "ort-cpu" else "ort-cpu") and plan["grid"] == [1, 1]
        assert plan["predicted_s"] >= 0 and plan["corrected_s"] >= 0 and abs(plan["measured_s"] - e["model_seconds"]) <= 0.01  # both rounded
        assert plan["speed_source"] == "first chunk"


@pytest.mark.parametrize("backend", ["ort-cpu", "openvino"])
def test_precision_is_fp32_by_default_on_every_backend_and_bf16_is_a_choice(gvr_cmd, cli_env, tmp_path, fake_model, backend):
    src = write_video(tmp_path / "in" / "a.mp4", frames=2)
    done = run(gvr_cmd, cli_env, "upscale", src, tmp_path / "out", "--model", fake_model, "--json", "--backend", backend)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["precision"] == "fp32"
    bf16 = run(gvr_cmd, cli_env, "upscale", src, tmp_path / "out16", "--model", fake_model, "--backend", backend, "--precision", "bf16")
    if backend == "ort-cpu":
        assert bf16.returncode == 2 and "no bf16 kernels" in bf16.stderr and "--backend openvino" in bf16.stderr
    else:
        import openvino as ov

        has_bf16 = "BF16" in [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
        assert bf16.returncode == (0 if has_bf16 else 2), bf16.stderr


def test_exit_1_when_some_inputs_fail_each_with_one_line(gvr_cmd, cli_env, tmp_path, fake_model):
    write_video(tmp_path / "in" / "good.mp4", frames=3)
    (tmp_path / "in" / "random.mp4").write_bytes(os.urandom(4096))
    (tmp_path / "in" / "text.mp4").write_text("hello, not a video\n" * 20)
    done = run(gvr_cmd, cli_env, "upscale", tmp_path / "in", tmp_path / "out", "--model", fake_model)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all(("random.mp4" in e) ^ ("text.mp4" in e) for e in errors)
    assert (tmp_path / "out" / "good.mp4").exists() and not (tmp_path / "out" / "random.mp4").exists()


@pytest.mark.parametrize(
    "case",
    ["not-a-model", "no-manifest", "missing", "scale", "out-in-in", "shard", "one-path", "bad-backend"],
)
def test_exit_2_for_usage_and_model_errors_before_any_video(gvr_cmd, cli_env, tmp_path, fake_model, case):
    src = write_video(tmp_path / "in" / "a.mp4", frames=2)
    out, model, extra = tmp_path / "out", fake_model, []
    if case == "not-a-model":
        model = tmp_path / "junk.onnx"
        model.write_bytes(os.urandom(300))
    elif case == "no-manifest":
        model = build_fake_onnx(tmp_path / "bare.onnx", with_manifest=False)
    elif case == "missing":
        model = tmp_path / "nope.onnx"
    elif case == "scale":
        extra = ["--scale", "0"]
    elif case == "out-in-in":
        out = tmp_path / "in" / "out"
    elif case == "shard":
        extra = ["--shard", "3/3"]
    elif case == "bad-backend":
        extra = ["--backend", "tensorflow"]
    args = ["upscale", src.parent, out, "--model", model, *extra]
    if case == "one-path":
        args = ["upscale", src.parent, "--model", model]
    done = run(gvr_cmd, cli_env, *args)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines and "error" in lines[-1].lower()
    assert not out.exists() or case == "out-in-in" and not any(out.iterdir())


@pytest.mark.parametrize("backend", ["ort-cuda", "ort-tensorrt"])
def test_exit_75_when_a_requested_gpu_provider_is_missing(gvr_cmd, cli_env, tmp_path, fake_model, backend):
    import onnxruntime as ort

    from gvrcli.inference.ort_backend import OrtBackend
    from gvrcli.errors import RetryableError

    try:
        OrtBackend(fake_model, provider=backend.removeprefix("ort-")).load()
        pytest.skip(f"{backend} loads on this machine")
    except RetryableError:
        pass
    src = write_video(tmp_path / "in" / "a.mp4", frames=2)
    done = run(gvr_cmd, cli_env, "upscale", src, tmp_path / "out", "--model", fake_model, "--backend", backend)
    assert done.returncode == 75
    assert backend in done.stderr and "GPU" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert ort.get_device()  # the machine's ORT build is untouched


def test_resume_after_a_killed_run(gvr_cmd, cli_env, clips, tmp_path, fake_model):
    out = tmp_path / "out"
    args = [*gvr_cmd, "upscale", clips, out, "--model", fake_model, "--steps", "30", "--progress-interval", "0"]
    proc = subprocess.Popen(list(map(str, args)), env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    finished_one = False
    for line in proc.stdout:  # kill -9 in the middle of the second file
        finished_one |= line.startswith("done:")
        if finished_one and line.startswith("Progress:"):
            break
    proc.kill()
    proc.wait()
    assert all(outputs_valid(clips, out).values()), "an output present after a kill is complete"
    assert any(p.name.startswith(".") for p in out.rglob("*")), "the killed run left its partial and lock"
    rerun = run(gvr_cmd, cli_env, "upscale", clips, out, "--model", fake_model, "--json", "--steps", "30")
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout.splitlines()[-1])
    assert summary["skipped"] >= 1 and summary["done"] + summary["skipped"] == 6
    assert outputs_valid(clips, out) == {f"clip{i}.mp4": True for i in range(6)}
    assert leftovers(out) == []


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_cleanly_and_removes_partials(gvr_cmd, cli_env, clips, tmp_path, fake_model, sig, code):
    out = tmp_path / "out"
    args = [*gvr_cmd, "upscale", clips, out, "--model", fake_model, "--steps", "200", "--progress-interval", "0"]
    proc = subprocess.Popen(list(map(str, args)), env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("Progress:"):
            break
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert time.monotonic() - t0 < 5, "stops within a few seconds"
    assert "partial outputs removed" in err
    assert leftovers(out) == [] and all(outputs_valid(clips, out).values())


def test_two_concurrent_workers_process_each_file_exactly_once(gvr_cmd, cli_env, clips, tmp_path, fake_model):
    out = tmp_path / "out"
    args = list(map(str, [*gvr_cmd, "upscale", clips, out, "--model", fake_model, "--json", "--steps", "20"]))
    workers = [subprocess.Popen(args, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done: list[str] = []
    for w in workers:
        stdout, stderr = w.communicate(timeout=120)
        assert w.returncode == 0, stderr
        done += [e["source"] for e in map(json.loads, stdout.splitlines()) if e["event"] == "file" and e["status"] == "done"]
    assert sorted(done) == sorted(str(p) for p in clips.rglob("*.mp4")), "each file done once, by one worker"
    assert leftovers(out) == []


def test_shards_partition_the_files(gvr_cmd, cli_env, clips, tmp_path, fake_model):
    seen = []
    for i in range(3):
        done = run(gvr_cmd, cli_env, "upscale", clips, tmp_path / "out", "--model", fake_model, "--json", "--dry-run", "--shard", f"{i}/3")
        assert done.returncode == 0
        seen += [e["source"] for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "planned"]
    assert sorted(seen) == sorted(str(p) for p in clips.rglob("*.mp4"))


def test_slurm_array_environment_picks_the_shard(gvr_cmd, cli_env, clips, tmp_path, fake_model):
    env = {**cli_env, "SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}
    done = run(gvr_cmd, env, "upscale", clips, tmp_path / "out", "--model", fake_model, "--json", "--dry-run")
    planned = [e for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "planned"]
    assert 0 < len(planned) < 6 and "shard 1/2" in done.stderr


def test_kubernetes_indexed_job_workers_split_the_clips_with_no_overlap_and_no_gap(gvr_cmd, cli_env, tmp_path, fake_model):
    src = tmp_path / "in"
    for i in range(4):
        write_video(src / f"clip{i}.mp4", frames=3, size=(64, 48))
    done_by = {}
    for index in (0, 1):
        env = {**cli_env, "JOB_COMPLETION_INDEX": str(index), "GVR_SHARD_COUNT": "2"}
        done = run(gvr_cmd, env, "upscale", src, tmp_path / "out", "--model", fake_model, "--json")
        assert done.returncode == 0, done.stderr
        assert f"shard {index}/2" in done.stderr
        events = [json.loads(line) for line in done.stdout.splitlines()]
        done_by[index] = {Path(e["source"]).name for e in events if e["event"] == "file" and e["status"] == "done"}
    assert not done_by[0] & done_by[1]
    assert done_by[0] | done_by[1] == {f"clip{i}.mp4" for i in range(4)}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"clip{i}.mp4" for i in range(4)]


def test_python_dash_m_and_info(gvr_cmd, cli_env, fake_model):
    done = run(gvr_cmd, cli_env, "info", "--model", fake_model, "--json")
    assert done.returncode == 0
    facts = json.loads(done.stdout)
    assert "CPUExecutionProvider" in facts["onnxruntime"]["providers"]
    assert facts["model"]["manifest"]["scale"] == 2
    assert "CPU" in facts["openvino"]["devices"]
    assert facts["precision"]["default"] == "fp32" and set(facts["precision"]) >= {"fp32", "bf16", "fp16", "int8"}
    assert facts["model"]["manifest"]["graphs"]["condition"]["file"] == "fake-x2.condition.onnx"


def test_the_runtime_never_imports_torch(cli_env, tmp_path, fake_model):
    src = write_video(tmp_path / "in" / "a.mp4", frames=2)
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import gvrcli.cli\n"
        "from gvrcli.batch.options import UpscaleOptions\n"
        "from gvrcli.batch.upscale import upscale\n"
        f"r = upscale([Path({str(src)!r})], UpscaleOptions(output_dir=Path({str(tmp_path / 'out')!r}), model=Path({str(fake_model)!r})))\n"
        "assert r.exit_code == 0\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def _two_shots(index: int, height: int, width: int):
    """Frames 0-14 one shot, 15-29 another: two unrelated smooth colour fields, each drifting slowly."""
    import numpy as np

    rng = np.random.default_rng(1 if index < 15 else 2)
    coarse = rng.random((height // 8 + 2, width // 8 + 2, 3))
    field = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)
    shift = index % 15  # a 1 px/frame pan inside each shot
    return field[:height, shift : shift + width]


def test_a_hard_cut_is_reported_as_scenes_and_can_be_turned_off(gvr_cmd, cli_env, tmp_path, fake_model):
    write_video(tmp_path / "in" / "cut.mp4", frames=30, size=(96, 64), content=_two_shots)
    for flag, scenes in (("--scene-cuts", [0, 15]), ("--no-scene-cuts", [0])):
        done = run(gvr_cmd, cli_env, "upscale", tmp_path / "in", tmp_path / f"out{flag}", "--model", fake_model, "--json", flag)
        assert done.returncode == 0, done.stderr
        (event,) = [e for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "file"]
        assert event["status"] == "done" and event["frames"] == 30
        assert event["scenes"] == scenes


def test_sidecar_records_how_each_output_was_made_and_survives_a_skipping_rerun(gvr_cmd, cli_env, tmp_path, fake_model):
    import hashlib

    src = write_video(tmp_path / "in" / "a.mp4", frames=4, size=(64, 48))
    out = tmp_path / "out"
    done = run(gvr_cmd, cli_env, "upscale", src.parent, out, "--model", fake_model, "--sidecar", "--seed", "7", "--json")
    assert done.returncode == 0, done.stderr
    side = out / "a.mp4.gvr.json"
    record = json.loads(side.read_text())
    assert record["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    manifest = json.loads(run(gvr_cmd, cli_env, "info", "--model", fake_model, "--json").stdout)["model"]["manifest"]
    assert record["weights_sha256"] == manifest["weights_sha256"]
    assert record["seed"] == 7 and record["steps"] == manifest["steps"] and record["precision"] == "fp32"
    assert record["backend"].startswith(("onnxruntime", "openvino")) and record["frames"] == 4
    assert record["scenes"] == [0] and record["model"] == str(fake_model.resolve())
    assert sorted(p.name for p in out.iterdir()) == ["a.mp4", "a.mp4.gvr.json"], "no partials left"
    before = side.read_bytes()
    again = run(gvr_cmd, cli_env, "upscale", src.parent, out, "--model", fake_model, "--json")
    assert again.returncode == 0 and side.read_bytes() == before, "a skipping rerun keeps the sidecar"
    redo = run(gvr_cmd, cli_env, "upscale", src.parent, out, "--model", fake_model, "--overwrite", "--json")
    assert redo.returncode == 0 and not side.exists(), "an output redone without --sidecar loses the stale one"



def test_a_model_that_always_overflows_is_refused_before_any_video(gvr_cmd, cli_env, tmp_path):
    """The check step runs the model once on random inputs: non-finite there is a model error
    (exit 2, nothing written). A model that overflows only on some chunks is the NaN/Inf guard's
    (tests/gvrcli/inference/test_engine.py)."""
    inf = float("inf")
    model = build_fake_onnx(tmp_path / "m" / "overflow.onnx", drift=((inf, inf, inf), (0.0, 0.0, 0.0)))
    write_video(tmp_path / "in" / "a.mp4", frames=3, size=(64, 48))
    done = run(gvr_cmd, cli_env, "upscale", tmp_path / "in", tmp_path / "out", "--model", model, "--json")
    assert done.returncode == 2 and "non-finite" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_tile_takes_width_x_height_and_every_chunk_runs_that_tile(gvr_cmd, cli_env, tmp_path, fake_model):
    src = write_video(tmp_path / "a.mp4", frames=12, size=(160, 96))
    done = run(gvr_cmd, cli_env, "upscale", src, tmp_path / "o.mp4", "-m", fake_model, "--tile", "40x24", "--memory-budget", "1", "--json")
    assert done.returncode == 0, done.stderr
    (event,) = [e for e in map(json.loads, done.stdout.splitlines()) if e["event"] == "file"]
    assert event["plan"]["tile"] == [40, 24] and event["plan"]["grid"] is None  # LR (width, height); no planner, no budget warning
    assert event["warnings"] == []


@pytest.mark.parametrize("text, parsed", [("0", 0), ("32", 32), ("96x108", (96, 108)), (" 96X108 ", (96, 108))])
def test_tile_values_parse_as_n_or_width_and_height(text, parsed):
    from gvrcli.cli_values import parse_tile

    assert parse_tile(text) == parsed


@pytest.mark.parametrize("command, text", [("upscale", "96x"), ("upscale", "-8"), ("upscale", "8x8"), ("plan", "0x108"), ("plan", "1.5"), ("plan", "96x108x2")])
def test_a_bad_tile_is_one_usage_line(gvr_cmd, cli_env, tmp_path, fake_model, command, text):
    src = write_video(tmp_path / "a.mp4", frames=2)
    target = ["--segments", "1"] if command == "plan" else []
    done = run(gvr_cmd, cli_env, command, src, tmp_path / ("p.json" if command == "plan" else "o.mp4"), "-m", fake_model, "--tile", text, *target)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("gvr: error: --tile"), done.stderr
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "o.mp4").exists()
