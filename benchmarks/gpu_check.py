"""GPU check of the ONNX Runtime CUDA path (issue 11): parity, node placement, speed, memory, fps.

How to run, from the repository root, on a machine with one NVIDIA GPU (about 5 minutes):

    python benchmarks/gpu_check.py --out $OUT        # report: $OUT/gpu_check.json (+ the log on stdout)

It needs no network: every model is a random-weight network built here and exported into a
temporary folder. It needs the project's runtime (``onnxruntime-gpu`` with its CUDA provider;
PyAV and scenedetect for the whole-process run) and a CUDA build of torch (the PyTorch eager
baseline; the exporter). Without a GPU it prints that there is no GPU and exits 75 at once,
before importing torch.

On this workplace's lent device machines the image has a CUDA torch but the CPU-only
``onnxruntime`` and no PyAV/OpenVINO/scenedetect: install the project's wheels there first, e.g.
carry ``onnxruntime-gpu`` (and ``av``, ``scenedetect-headless``) as wheels (the device README's
"carry wheels" recipe; a wheel over the 64 MiB carry limit has to travel split in parts over
several calls, kept between calls as ignored files, and be joined there), then
``pip install --no-index --no-deps`` them and run this script with ``PYTHONPATH=.``.

What it prints (and writes to the JSON):
1. node placement of the fp16 step graph on the CUDA provider (ORT's own placement log): shape
   arithmetic on the CPU (ORT's choice), compute nodes on the CPU (must be 0), and which Attention
   kernel ORT chose (its verbose log: Flash / memory-efficient / unfused);
2. parity: ONNX Runtime CUDA vs CPU vs PyTorch fp32 on the same random inputs, fp32 and fp16
   (relative L2 of the step's update);
3. ms per output frame per step at 540p and 1080p output (20 frames, x2) for ``tiny`` and
   ``base`` (base at ``--base-depth`` of its 24 blocks, the full-depth figure scaled by 24/depth
   and labelled so), ONNX Runtime CUDA fp16 next to PyTorch eager bf16 (SDPA) on the same GPU and
   network, with peak GPU memory of each;
4. whole-process ``gvr upscale`` fps on the sample clip, fp16 artefact and the fp32 default.
Anything that does not fit the time budget (``--budget`` seconds, default 270) is skipped and
says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NO_GPU = 75
SIZES = {"540p": (270, 480), "1080p": (540, 960)}  # LR (h, w) of an x2 upscale
FRAMES = 20  # a full temporal chunk (4 units of 5)


def no_gpu_reason() -> str | None:
    """Why this machine cannot run the check, or None. Checked before torch is imported."""
    import onnxruntime as ort

    from gvrcli.inference.backends import gpu_present

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"this ONNX Runtime ({ort.__version__}) has no CUDA provider: install onnxruntime-gpu"
    if not gpu_present():
        return "no NVIDIA driver loads here"
    return None


class Clock:
    def __init__(self, budget: float):
        self.start, self.budget = time.perf_counter(), budget

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.start)


def log(*parts) -> None:
    print(*parts, flush=True)


# --------------------------------------------------------------------------------------------------
# Models and exports
# --------------------------------------------------------------------------------------------------


def network(preset: str, depth: int | None = None):
    import models
    from models.checkpoint import init_random_

    overrides = {"scale": 2} | ({"depth": depth} if depth else {})
    return init_random_(models.build_model(preset, **overrides), seed=0).eval()


def export_step(model, path: Path, precision: str, shape) -> Path:
    """The step graph alone, static at ``shape`` (T, h, w) (what the timings need; the runtime's
    dynamic artefact is exported separately for the whole-process run)."""
    from export.attention import default_form
    from export.targets import build_onnx, network_for, save_onnx
    from models.manifest import STEP

    program = build_onnx(network_for(model, precision), STEP, dynamic=False, static_shape=shape, opset=23, attention=default_form(precision))
    save_onnx(program, path, None)
    return path


def step_feed(model, shape, seed=0):
    from export.spec import DenoiserSpec

    return DenoiserSpec.of(model.config).dummy_inputs("step", *shape, seed=seed)


# --------------------------------------------------------------------------------------------------
# ONNX Runtime on the GPU: sessions, device-bound timing, placement
# --------------------------------------------------------------------------------------------------


def cuda_session(path: Path, verbose: bool = False, profile: str | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 0 if verbose else 3
    if profile:
        opts.enable_profiling, opts.profile_file_prefix = True, profile
    return ort.InferenceSession(str(path), opts, providers=["CUDAExecutionProvider"])


def ort_time(session, feed, runs: int) -> float:
    """Median ms of one step with every input and the output bound on the GPU (IOBinding)."""
    import numpy as np
    import onnxruntime as ort

    binding = session.io_binding()
    for name, value in feed.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value), "cuda", 0))
    out = session.get_outputs()[0]
    z = ort.OrtValue.ortvalue_from_shape_and_type(list(feed["z_t"].shape), np.float32, "cuda", 0)
    binding.bind_ortvalue_output(out.name, z)
    times = []
    for i in range(runs + 2):
        started = time.perf_counter()
        session.run_with_iobinding(binding)  # synchronous: returns when the output is written
        if i >= 2:
            times.append((time.perf_counter() - started) * 1e3)
    return float(np.median(times))


def gpu_memory_mib() -> float | None:
    """This process's GPU memory (NVML): ONNX Runtime's arena keeps its peak, so after the runs it is the peak."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid():
                return proc.usedGpuMemory / 2**20
    except Exception:
        return None
    return None


def placement(path: Path) -> dict:
    """Node placement from ORT's own log, and the Attention kernel its CUDA provider chose."""
    import onnxruntime as ort

    from gvrcli.inference.placement import CPU, classify, native_stderr, output_types, parse_placement

    with native_stderr() as read:
        session = cuda_session(path, verbose=True)
        ort.set_default_logger_severity(0)  # the Attention kernel logs its choice on the default logger
        feed = step_feed_for(session)
        session.run(None, feed)
        ort.set_default_logger_severity(3)
        text = read()
    placed = parse_placement(text)
    shape, compute = classify(placed.get(CPU, []), output_types(path))
    kernels = {k: text.count(marker) for k, marker in (
        ("flash", "using Flash Attention"), ("memory_efficient", "Memory Efficient Attention"), ("unfused", "nfused"))}
    return {"providers": {k: len(v) for k, v in placed.items()}, "cpu_shape_nodes": len(shape),
            "cpu_compute_nodes": [f"{op} ({name})" for op, name in compute], "attention_log_mentions": kernels}


def step_feed_for(session):
    """Random inputs for a static step graph, shapes read from the session."""
    import numpy as np

    rng = np.random.default_rng(0)
    feed = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        feed[i.name] = rng.uniform(0.3, 0.9, shape).astype(np.float32) if len(shape) == 1 else rng.standard_normal(shape, dtype=np.float32)
    feed["t_next"] = feed["t"] - 0.1
    return feed  # (a text input, if any, gets normal noise like the latents: any tokens run)


# --------------------------------------------------------------------------------------------------
# PyTorch eager baseline (bf16, SDPA)
# --------------------------------------------------------------------------------------------------


def torch_time(model, feed, runs: int) -> tuple[float, float]:
    """(median ms of one step, peak MiB) of PyTorch eager bf16 on the GPU, same network and inputs."""
    import copy

    import torch

    from export.graphs import graph_module

    net = graph_module(copy.deepcopy(model).to_compute_dtype(torch.bfloat16), "step").cuda()
    inputs = {k: torch.from_numpy(v).cuda() for k, v in feed.items()}
    torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.inference_mode():
        for i in range(runs + 2):
            torch.cuda.synchronize()
            started = time.perf_counter()
            net(**inputs)
            torch.cuda.synchronize()
            if i >= 2:
                times.append((time.perf_counter() - started) * 1e3)
    peak = torch.cuda.max_memory_allocated() / 2**20
    del net, inputs
    torch.cuda.empty_cache()
    return sorted(times)[len(times) // 2], peak


# --------------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------------


def parity(model, tmp: Path, report: dict) -> None:
    """CUDA vs CPU vs PyTorch fp32, fp32 and fp16 graphs, on the step's update."""
    from export.backends import OrtBackend, TorchBackend
    from export.graphs import graph_module
    from export.spec import rel_l2

    shape = (FRAMES // 2, 36, 64)  # small enough for the CPU side
    feed = step_feed(model, shape, seed=3)
    want = TorchBackend(graph_module(model, "step")).run(feed)[0] - feed["z_t"]
    for precision in ("fp32", "fp16"):
        path = export_step(model, tmp / f"parity-{precision}.onnx", precision, shape)
        got = {p: OrtBackend(path, p).run(feed)[0] - feed["z_t"] for p in ("CUDAExecutionProvider", "CPUExecutionProvider")}
        report["parity"][precision] = {
            "cuda_vs_torch_fp32": rel_l2(got["CUDAExecutionProvider"], want),
            "cpu_vs_torch_fp32": rel_l2(got["CPUExecutionProvider"], want),
            "cuda_vs_cpu": rel_l2(got["CUDAExecutionProvider"], got["CPUExecutionProvider"]),
        }
        log(f"parity {precision}: " + ", ".join(f"{k} {v:.2e}" for k, v in report["parity"][precision].items()))


def speed(name: str, model, tmp: Path, report: dict, clock: Clock, runs: int, scale_to: float = 1.0) -> None:
    import torch

    for label, (h, w) in SIZES.items():
        if clock.left() < 30:
            report["skipped"].append(f"{name} {label}: time budget")
            continue
        shape = (FRAMES, h, w)
        path = export_step(model, tmp / f"{name}-{label}.onnx", "fp16", shape)
        feed = step_feed(model, shape)
        session = cuda_session(path)
        ort_ms = ort_time(session, feed, runs)
        ort_mib = gpu_memory_mib()
        del session
        eager_ms, eager_mib = torch_time(model, feed, runs)
        row = {
            "ort_cuda_fp16_ms_per_frame_step": ort_ms / FRAMES * scale_to,
            "torch_eager_bf16_ms_per_frame_step": eager_ms / FRAMES * scale_to,
            "ort_vs_eager": eager_ms / ort_ms,
            "ort_process_gpu_mib": ort_mib,
            "eager_peak_gpu_mib": eager_mib,
            "scaled_by": scale_to,
        }
        report["speed"][f"{name} {label}"] = row
        log(f"{name} {label}: ORT CUDA fp16 {row['ort_cuda_fp16_ms_per_frame_step']:.2f} ms/frame/step, "
            f"eager bf16 {row['torch_eager_bf16_ms_per_frame_step']:.2f} ({row['ort_vs_eager']:.2f}x), "
            f"GPU MiB ORT {ort_mib} eager {eager_mib:.0f}" + (f" [x{scale_to:g}: scaled to 24 blocks]" if scale_to != 1 else ""))
        torch.cuda.empty_cache()


def whole_process(model, tmp: Path, report: dict) -> None:
    """``gvr upscale`` on the sample clip, one process each: fp16 artefact and the fp32 built-in default."""
    from export import export_model

    fp16 = export_model("onnx", tmp / "tiny-fp16.onnx", model=model, precision="fp16").main_file
    for label, extra in (("fp16", ["--model", str(fp16), "--precision", "fp16"]), ("fp32 default", [])):
        out = tmp / f"out-{label.split()[0]}"
        cmd = [sys.executable, "-m", "gvrcli", "upscale", str(ROOT / "samples" / "hills.mp4"), str(out), "--backend", "ort-cuda", "--json", *extra]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        summary = next((json.loads(line) for line in done.stdout.splitlines()[::-1] if '"summary"' in line), {})
        report["gvr_upscale"][label] = {"exit": done.returncode, "fps": summary.get("fps"), "backend": summary.get("backend"),
                                        "stderr": done.stderr.strip().splitlines()[-3:]}
        log(f"gvr upscale {label}: exit {done.returncode}, {summary.get('fps')} fps, {summary.get('backend')}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_check.json (default: print only)")
    parser.add_argument("--base-depth", type=int, default=6, help="blocks of base to build (of 24; figures are scaled to 24)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (after 2 warm-ups)")
    parser.add_argument("--budget", type=float, default=270.0, help="seconds; later checks are skipped past it")
    args = parser.parse_args(argv)

    reason = no_gpu_reason()
    if reason:
        print(f"gpu_check: no GPU: {reason}; nothing was measured", flush=True)
        return NO_GPU
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no GPU: this torch has no CUDA (the eager baseline and the exporter need a CUDA build of torch)", flush=True)
        return NO_GPU
    import onnxruntime as ort

    clock = Clock(args.budget)
    report = {"device": torch.cuda.get_device_name(0), "onnxruntime": ort.__version__, "torch": torch.__version__,
              "placement": {}, "parity": {}, "speed": {}, "gvr_upscale": {}, "skipped": []}
    log(f"gpu_check on {report['device']}, onnxruntime {ort.__version__}, torch {torch.__version__}")
    tiny = network("tiny")
    with tempfile.TemporaryDirectory(prefix="gvr-gpu-check-") as tmp:
        tmp = Path(tmp)
        probe = export_step(tiny, tmp / "probe-fp16.onnx", "fp16", (FRAMES // 2, 36, 64))
        report["placement"] = placement(probe)
        log(f"placement: {report['placement']}")
        parity(tiny, tmp, report)
        speed("tiny", tiny, tmp, report, clock, args.runs)
        if clock.left() > 90:
            speed("base", network("base", args.base_depth), tmp, report, clock, args.runs, scale_to=24 / args.base_depth)
        else:
            report["skipped"].append("base: time budget")
        if clock.left() > 100:  # a dynamic export (the runtime's artefact) and two gvr upscale runs
            whole_process(tiny, tmp, report)
        else:
            report["skipped"].append("gvr upscale: time budget")
    report["seconds"] = round(time.perf_counter() - clock.start, 1)
    if report["skipped"]:
        log("skipped: " + "; ".join(report["skipped"]))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
