"""Benchmark: PyTorch eager vs ONNX Runtime vs OpenVINO on one sampler step (not a timed test).

    python benchmarks/bench_export.py [--frames 8] [--size 480x270] [--scale 2] [--repeat 3] [--threads 0]

The ``tiny`` preset at 480x270 -> 960x540, 8 frames, the same random input for every backend.
Prints milliseconds per output frame and the ratio to eager, for: the shipped export (dynamic,
fused attention), a static export of this size, the unfused-attention fallback (what the fusion
buys), and OpenVINO IR converted from the PyTorch module and from the ONNX graph. The step graph
(network + Euler update) is what is timed; the condition graph runs once per clip.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="gvr export benchmark")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", default="480x270", help="LR width x height in pixels")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--skip", default="", help="comma list of rows to skip: static,unfused,ov-onnx")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))

    import os

    import torch

    import models
    from models.checkpoint import init_random_
    from export import export_model
    from export.backends import OpenVINOBackend, OrtBackend, TorchBackend
    from export.graphs import graph_module
    from export.spec import DenoiserSpec

    threads = args.threads or os.cpu_count()
    torch.set_num_threads(threads)
    w, h = (int(v) for v in args.size.split("x"))
    T = args.frames
    model = init_random_(models.build_model("tiny", scale=args.scale), seed=0)  # routing sees real scores
    feed = DenoiserSpec(model.config.latent_channels, args.scale).dummy_inputs("step", T, h, w, seed=0)
    out_frames = T
    print(f"tiny preset, {w}x{h} -> {w * args.scale}x{h * args.scale}, {T} frames, {threads} threads, best of {args.repeat} interleaved rounds")

    # Export everything first, then time all backends in interleaved rounds (best of N): on a shared
    # machine, load that comes and goes then hits every row alike instead of whichever ran during it.
    backends = {"pytorch eager": TorchBackend(graph_module(model, "step"))}
    with tempfile.TemporaryDirectory(prefix="gvr-bench-") as tmp:
        tmp = Path(tmp)
        # (variant, target, export options, runtimes to time on it). OpenVINO rows "from onnx" read
        # the ONNX file through OpenVINO's ONNX frontend, which is what converting it to IR does.
        plans = [
            ("dynamic fused", "onnx", dict(), ("onnxruntime", "openvino from onnx")),
            ("dynamic", "openvino", dict(source="torch"), ("openvino from torch",)),
            ("static fused", "onnx", dict(dynamic=False, static_shape=(T, h, w)), ("onnxruntime", "openvino from onnx")),
            ("static", "openvino", dict(dynamic=False, static_shape=(T, h, w), source="torch"), ("openvino from torch",)),
            ("static UNFUSED", "onnx", dict(dynamic=False, static_shape=(T, h, w), attention="unfused"), ("onnxruntime", "openvino from onnx")),
        ]
        for i, (variant, target, opts, runners) in enumerate(plans):
            if ("static" in variant and "static" in skip) or ("UNFUSED" in variant and "unfused" in skip):
                continue
            report = export_model(target, tmp / f"m{i}{'.onnx' if target == 'onnx' else ''}", model=model, **opts)
            path = report.path if target == "onnx" else report.path / f"m{i}.xml"
            print(f"  exported {target} {variant} in {report.seconds:5.1f} s: {report.fused_attention_nodes} fused attention nodes", flush=True)
            for runner in runners:
                if runner == "openvino from onnx" and "ov-onnx" in skip:
                    continue
                backend = OrtBackend(path, threads=args.threads) if runner == "onnxruntime" else OpenVINOBackend(path, threads=args.threads)
                backend.load()
                backends[f"{runner}, {variant}"] = backend

        best = {}
        for name, backend in backends.items():
            backend.run(feed)  # warm-up: first-run allocations and lazy kernel selection
        for _ in range(args.repeat):
            for name, backend in backends.items():
                start = time.perf_counter()
                backend.run(feed)
                best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
        rows = [(name, seconds, None) for name, seconds in best.items()]
        eager = best["pytorch eager"]

    print()
    print(f"{'backend, export':<40} {'ms/output frame':>16} {'vs eager':>9}")
    for name, seconds, _ in rows:
        print(f"{name:<40} {1000 * seconds / out_frames:16.1f} {eager / seconds:8.2f}x")


if __name__ == "__main__":
    main()
