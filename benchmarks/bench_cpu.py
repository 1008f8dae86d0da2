"""The CPU path, side by side in one run (issue 8's "Must show"): ``python benchmarks/bench_cpu.py``.

Prints, for the built-in tiny default on an 8-frame 480x270 clip (-> 960x540), 4 sampler steps:

* PyTorch eager ``model.upscale(lr, steps=4)``, model time alone (the reference);
* whole-process ``gvr upscale --steps 4`` (a fresh child each: wall time and peak RSS from
  wait4) for the default backend, ``--backend ort-cpu`` and ``--backend openvino``, with the speed-up
  over eager, the JSON summary's precision, and the step time inside gvr against the same
  backend's steady state (a session alone, warmed up);
* peak RSS on a 20-frame clip;
* per-step GFLOP/s next to this machine's sgemm peak (numpy 2048^3);
* precision rows: OpenVINO fp32 / bf16 / int8 and ONNX Runtime int8, on a random-weight tiny
  network (the untrained default's zero head would hide quantisation error): step time and the
  relative L2 error of the step's update against fp32;
* ONNX Runtime vs OpenVINO at fp32 on the shipped model (max abs difference).

Timings are the best of ``--repeats`` interleaved rounds. Not a test: the numbers are the machine's.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_upscale import make_clip, run_gvr  # noqa: E402

W, H, STEPS = 480, 270, 4


def machine() -> str:
    import openvino as ov

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    load = os.getloadavg()[0]
    return f"{cpu}, {os.cpu_count()} cores, OpenVINO CPU capabilities {', '.join(map(str, caps))}; load average {load:.1f} at start"


def sgemm_peak(n: int = 2048, repeats: int = 5) -> float:
    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def eager_seconds(lr: np.ndarray, repeats: int) -> float:
    import torch

    import models

    model = models.build_model("tiny", scale=2)
    x = torch.from_numpy(lr)
    model.upscale(x[:, :, :1, :36, :48], steps=1)  # warm-up
    return min(_timed(lambda: model.upscale(x, steps=STEPS)) for _ in range(repeats))


def effective_gflops(flops: dict, file: dict) -> float:
    """The clip's model work (the condition once, ``STEPS`` steps over whole frames) over the time
    gvr spent in the model: tile overlaps and first calls count as lost time, not as work."""
    return (flops["condition"] + STEPS * flops["step"]) / file["model_seconds"] / 1e9


def gvr_run(clip: Path, out: Path, backend: str | None, extra=(), steps: int | None = STEPS) -> dict:
    """One whole ``gvr upscale`` child (``steps`` None: the model's default steps)."""
    argv = ["upscale", str(clip), str(out), "--json", "--overwrite", *(["--steps", str(steps)] if steps else []), *extra]
    if backend:
        argv += ["--backend", backend]
    start = time.perf_counter()
    events, rss_mib, stderr = run_gvr(argv)
    wall = time.perf_counter() - start
    summary = next(e for e in events if e.get("event") == "summary")
    file = next(e for e in events if e.get("event") == "file")
    start_line = next((line for line in stderr.splitlines() if "backend" in line), "")
    return {"wall": wall, "rss": rss_mib, "summary": summary, "file": file, "start_line": start_line}


def steady_step_ms(backend, lr_shape, repeats: int = 5) -> tuple[float, object]:
    """Median step time of a loaded model alone, after warm-up, on the bound engine buffers."""
    from gvrcli.inference.engine import Upscaler
    from gvrcli.inference.settings import EngineSettings

    model = backend.load()
    up = Upscaler(model, EngineSettings.from_manifest(model.manifest, steps=STEPS))
    rng = np.random.default_rng(0)
    lr = rng.uniform(0, 1, lr_shape).astype(np.float32)
    for _ in range(2):  # warm-up: arena growth, kernel selection
        up.upscale_chunk(lr, 0)
    up.step_seconds.clear()
    for _ in range(max(1, repeats // 2)):
        up.upscale_chunk(lr, 0)
    return 1000 * statistics.median(up.step_seconds), model


def precision_rows(tmp: Path, repeats: int) -> list[tuple]:
    """(backend, precision, ms per step, rel L2 of the update vs fp32) on a random-weight tiny network."""
    from export import export_model
    from export.spec import DenoiserSpec, rel_l2
    from gvrcli.inference.loaded import run_graph
    from gvrcli.inference.openvino_backend import OpenVinoBackend
    from gvrcli.inference.ort_backend import OrtBackend
    from models.checkpoint import init_random_

    import models

    net = init_random_(models.build_model("tiny", scale=2), seed=0)
    shape = (8, H, W)
    export_model("openvino", tmp / "fp32", model=net)
    export_model("openvino", tmp / "int8", model=net, precision="int8")
    export_model("onnx", tmp / "fp32.onnx", model=net, dynamic=False, static_shape=shape)
    export_model("onnx", tmp / "int8.onnx", model=net, precision="int8", dynamic=False, static_shape=shape)
    spec = DenoiserSpec(3, 2)
    feed = spec.dummy_inputs("step", *shape, seed=1)
    out = {"z_next": feed["z_t"].shape}
    cases = [
        ("openvino", "fp32", OpenVinoBackend(tmp / "fp32" / "fp32.xml", device="CPU", precision="fp32")),
        ("openvino", "bf16", OpenVinoBackend(tmp / "fp32" / "fp32.xml", device="CPU", precision="bf16")),
        ("openvino", "int8", OpenVinoBackend(tmp / "int8" / "int8.xml", device="CPU", precision="int8")),
        ("onnxruntime", "fp32", OrtBackend(tmp / "fp32.onnx", provider="cpu")),
        ("onnxruntime", "int8", OrtBackend(tmp / "int8.onnx", provider="cpu")),
    ]
    loaded, rows = {}, []
    for name, precision, backend in cases:
        try:
            loaded[(name, precision)] = backend.load()
        except Exception as e:  # e.g. bf16 on a CPU without it
            rows.append((name, precision, None, None, str(e).splitlines()[0][:90]))
    reference = run_graph(loaded[("openvino", "fp32")], "step", feed, out)["z_next"] - feed["z_t"]
    for (name, precision), model in loaded.items():
        run_graph(model, "step", feed, out)  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            got = run_graph(model, "step", feed, out)["z_next"]
            times.append(time.perf_counter() - start)
        rows.append((name, precision, 1000 * min(times) / shape[0], rel_l2(got - feed["z_t"], reference), ""))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="rounds of each timing (best is reported)")
    ap.add_argument("--skip-precision", action="store_true", help="skip the bf16/int8 rows (they export 4 models)")
    args = ap.parse_args()
    from gvrcli.inference.openvino_backend import OpenVinoBackend
    from gvrcli.inference.ort_backend import OrtBackend
    from gvrcli.inference.modelfile import ASSETS_DIR
    from models.flops import graph_flops

    import models

    print(f"machine: {machine()}")
    peak = sgemm_peak()
    flops = graph_flops(models.build_model("tiny", scale=2), 8, 2 * H, 2 * W)
    with tempfile.TemporaryDirectory(prefix="gvr-bench-cpu-") as tmp:
        tmp = Path(tmp)
        # A fresh OpenVINO compiled-model cache: the first round pays the compiles a node's first
        # run pays, later rounds load them as every later run on that node does ("walls" shows both).
        os.environ["GVR_OV_CACHE"] = str(tmp / "openvino-cache")
        clip8 = make_clip(tmp / "in8" / "clip.mp4", 8, W, H)
        clip20 = make_clip(tmp / "in20" / "clip.mp4", 20, W, H)
        lr = np.random.default_rng(0).uniform(0, 1, (1, 3, 8, H, W)).astype(np.float32)

        backends = {"default": None, "ort-cpu": "ort-cpu", "openvino": "openvino"}
        eager, runs = [], {k: [] for k in backends}
        for _ in range(args.repeats):  # interleaved rounds: load drifts hit every row alike
            eager.append(eager_seconds(lr, 1))
            for name, flag in backends.items():
                runs[name].append(gvr_run(clip8, tmp / f"out-{name}", flag))
        eager_s = min(eager)
        rss20 = {name: gvr_run(clip20, tmp / f"out20-{name}", flag)["rss"] for name, flag in backends.items() if name != "default"}

        asset = ASSETS_DIR / "gvr-tiny-x2.onnx"
        steady = {
            "ort-cpu": steady_step_ms(OrtBackend(asset, provider="cpu"), (8, H, W, 3))[0],
            "openvino": steady_step_ms(OpenVinoBackend(asset, device="CPU"), (8, H, W, 3))[0],
        }
        steady["default"] = steady[runs["default"][0]["summary"]["backend"].split()[0].replace("onnxruntime", "ort-cpu")]

        print(f"\nPyTorch eager model.upscale(lr, steps={STEPS}), 8 x {W}x{H} -> {2 * W}x{2 * H}: {eager_s:.2f} s (model time alone)")
        print(f"\n{'gvr upscale --steps 4, 8 frames':<34} {'wall s':>7} {'vs eager':>9} {'peak RSS':>9} {'RSS 20 fr':>9} "
              f"{'precision':>9} {'step ms':>8} {'steady':>7} {'step/steady':>11} {'GFLOP/s':>8}")
        print("(step ms: one step of one tile, median; steady: the same tile shape in a session alone, warmed up; "
              "GFLOP/s: the clip's model work over gvr's model time)")
        for name in backends:
            best = min(runs[name], key=lambda r: r["wall"])
            step_ms = best["file"]["step_ms"]
            backend = best["summary"]["backend"]
            rss20_text = f"{rss20[name] / 1024:.2f}G" if name in rss20 else "-"
            print(
                f"{name + ' (' + backend + ')':<34} {best['wall']:>7.2f} {eager_s / best['wall']:>8.2f}x "
                f"{max(r['rss'] for r in runs[name]) / 1024:>8.2f}G {rss20_text:>9} {best['summary']['precision']:>9} "
                f"{step_ms:>8.0f} {steady[name]:>7.0f} {step_ms / steady[name]:>10.2f}x {effective_gflops(flops, best['file']):>8.1f}"
            )
            print(f"    walls {[round(r['wall'], 2) for r in runs[name]]} (round 1: empty OpenVINO cache); {best['file'].get('memory', '')}")
            print(f"    {best['start_line']}")
        print(f"\nsgemm peak (numpy {2048}^3 fp32): {peak:.0f} GFLOP/s; one step = {flops['step'] / 1e9:.1f} GFLOP "
              f"({flops['step'] / 8e9:.2f} per output frame), the condition {flops['condition'] / 1e9:.1f} GFLOP once per clip")

        from gvrcli.inference.loaded import run_graph
        from export.spec import DenoiserSpec

        feed = DenoiserSpec(3, 2).dummy_inputs("step", 8, H, W, seed=4)
        hr = {"z_next": feed["z_t"].shape}
        a = run_graph(OrtBackend(asset, provider="cpu").load(), "step", feed, hr)["z_next"]
        b = run_graph(OpenVinoBackend(asset, device="CPU").load(), "step", feed, hr)["z_next"]
        print(f"ONNX Runtime vs OpenVINO at fp32 (default precision), shipped model, one step: max abs diff {np.abs(a - b).max():.1e}")

        if not args.skip_precision:
            print(f"\n{'precision (random-weight tiny, one step, 8 x 960x540)':<54} {'ms/frame':>9} {'rel L2 vs fp32':>15}")
            for name, precision, ms, err, note in precision_rows(tmp / "prec", max(3, args.repeats)):
                if ms is None:
                    print(f"{name + ' ' + precision:<54} {'-':>9} {'-':>15}  {note}")
                else:
                    print(f"{name + ' ' + precision:<54} {ms:>9.1f} {err:>15.1e}")


if __name__ == "__main__":
    main()
