"""Benchmark: the Wan2.1 VAE's chunk graphs on PyTorch eager, ONNX Runtime and OpenVINO (not a timed test).

    python benchmarks/bench_vae.py [--lr 832x480] [--scale 2] [--base-dim 96] [--num-res-blocks 2]
                                   [--repeat 2] [--threads 0] [--memory-check 5,25]

Encode at the LR size (frames in), decode at the HR size (frames out), x``scale``: milliseconds per
frame of one later-chunk step (4 frames; the first chunk is the warm-up that fills the caches) and
the peak RSS of the process running it. Every (backend, role) runs in its own subprocess so that
its peak RSS is its own; the ONNX / OpenVINO children load only the exported graphs (no torch
model). OpenVINO is pinned to f32 (``INFERENCE_PRECISION_HINT``): on AMX / AVX512-BF16 CPUs it
would otherwise run bf16. Random weights (the default config is Wan2.1's own, 127 M parameters).

``--memory-check N1,N2``: the peak RSS of ONNX Runtime decoding N1 and then N2 latent frames chunk
by chunk, frames discarded as a streaming runtime would: bounded memory means equal peaks.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROLES = ("vae_encoder", "vae_decoder")
BACKENDS = ("pytorch eager", "onnxruntime", "openvino")


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM: reset by exec, unlike ru_maxrss, which keeps the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(args):
    import models

    return models.build_vae("wan2.1", base_dim=args.base_dim, num_res_blocks=args.num_res_blocks)


def runners(args, role: str, backend: str, folder: Path):
    """(first, step, cache_names, input_name): callables feed -> outputs for one backend."""
    from export.vae import GRAPHS

    first_g, step_g = (next(g for g in GRAPHS if g.role == role and g.chunk == c) for c in ("first", "step"))
    if backend == "pytorch eager":
        import torch

        torch.set_num_threads(args.threads or os.cpu_count())
        vae = build(args)
        first_m, step_m = first_g.build(vae), step_g.build(vae)

        def wrap(module):
            def run(feed):
                with torch.inference_mode():
                    return [t.numpy() for t in module(*(torch.from_numpy(v) for v in feed.values()))]

            return run

        return wrap(first_m), wrap(step_m), step_m.cache_names, first_g.input
    from export.backends import OpenVINOBackend, OrtBackend
    from export.vae import run_graph

    if backend == "onnxruntime":
        make = lambda g: OrtBackend(folder / f"{g.stem}.onnx", threads=args.threads)  # noqa: E731
    else:
        make = lambda g: OpenVINOBackend(folder / f"{g.stem}.xml", precision="f32", threads=args.threads)  # noqa: E731
    fb, sb = make(first_g), make(step_g)
    names = json.loads((folder / "caches.json").read_text())[role]
    return (lambda f: run_graph(fb, f)), (lambda f: run_graph(sb, f)), names, first_g.input


def chunk_shapes(args, role):
    from export.vae import GRAPHS

    size = args.hr if role == "vae_decoder" else args.lr
    hw = (size[1], size[0])
    return [next(g for g in GRAPHS if g.role == role and g.chunk == c).shapes(hw)[0] for c in ("first", "step")]


def child(args) -> None:
    """Run one (backend, role): time ``repeat`` step chunks after the first; print a JSON line."""
    import numpy as np

    role, backend = args.child_role, args.child_backend
    first, step, names, input_name = runners(args, role, backend, Path(args.folder))
    rng = np.random.default_rng(0)
    first_shape, step_shape = chunk_shapes(args, role)
    data = (lambda s: rng.uniform(0, 1, s)) if input_name == "pixels" else rng.standard_normal
    _, *cache = first({input_name: data(first_shape).astype(np.float32)})
    chunks = args.stream if args.stream else args.repeat
    times = []
    x = data(step_shape).astype(np.float32)
    for _ in range(chunks):
        start = time.perf_counter()
        _, *cache = step({input_name: x, **dict(zip(names, cache))})
        times.append(time.perf_counter() - start)
    print(json.dumps({"role": role, "backend": backend, "ms_per_frame": min(times) * 1000 / 4, "peak_rss_mib": peak_rss_mib(), "chunks": chunks}))


def spawn(args, role, backend, folder, stream=0) -> dict:
    cmd = [sys.executable, __file__, "--child-role", role, "--child-backend", backend, "--folder", str(folder),
           "--lr", f"{args.lr[0]}x{args.lr[1]}", "--scale", str(args.scale), "--base-dim", str(args.base_dim),
           "--num-res-blocks", str(args.num_res_blocks), "--repeat", str(args.repeat), "--threads", str(args.threads), "--stream", str(stream)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="gvr VAE benchmark")
    parser.add_argument("--lr", default="832x480", help="LR width x height (encoder input); multiples of 8")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--base-dim", type=int, default=96)
    parser.add_argument("--num-res-blocks", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--memory-check", default="", help="N1,N2 latent frames for the streaming peak-RSS check")
    parser.add_argument("--skip", default="", help="comma list of backends to skip (pytorch eager, onnxruntime, openvino)")
    parser.add_argument("--child-role", help=argparse.SUPPRESS)
    parser.add_argument("--child-backend", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--stream", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.lr = tuple(int(v) for v in args.lr.split("x"))
    args.hr = (args.lr[0] * args.scale, args.lr[1] * args.scale)
    if args.child_role:
        return child(args)

    from export.vae import export_vae

    skip = set(filter(None, args.skip.split(",")))
    lr, hr = args.lr, args.hr
    print(f"Wan2.1 VAE base_dim={args.base_dim} num_res_blocks={args.num_res_blocks} (random weights), encode {lr[0]}x{lr[1]}, "
          f"decode {hr[0]}x{hr[1]}, {args.threads or os.cpu_count()} threads, best of {args.repeat} step chunks of 4 frames", flush=True)
    with tempfile.TemporaryDirectory(prefix="gvr-bench-vae-") as tmp:
        folder = Path(tmp)
        vae = build(args)
        start = time.perf_counter()
        targets = [t for t, b in (("onnx", "onnxruntime"), ("openvino", "openvino")) if b not in skip or (t == "onnx" and args.memory_check)]
        for target in targets:
            report = export_vae(vae, target, folder)  # any frame size
        print(f"exported {len(targets)} x 4 graphs in {time.perf_counter() - start:.0f} s", flush=True)
        caches = {g.role: [c["name"] for c in g.manifest.caches] for g in report.graphs if g.chunk == "step"}
        (folder / "caches.json").write_text(json.dumps(caches))
        del vae
        rows = []
        if set(BACKENDS) - skip:
            print(f"| role | frames | {' | '.join(b for b in BACKENDS if b not in skip)} |", flush=True)
        for role in ROLES if set(BACKENDS) - skip else ():
            size = lr if role == "vae_encoder" else hr
            cells = []
            for backend in BACKENDS:
                if backend in skip:
                    continue
                r = spawn(args, role, backend, folder)
                rows.append(r)
                cells.append(f"{r['ms_per_frame']:.0f} ms/frame, {r['peak_rss_mib'] / 1024:.2f} GiB")
            print(f"| {role.removeprefix('vae_')} | {size[0]}x{size[1]} | {' | '.join(cells)} |", flush=True)
        eager = {r["role"]: r["ms_per_frame"] for r in rows if r["backend"] == "pytorch eager"}
        for r in rows:
            if r["backend"] != "pytorch eager" and r["role"] in eager:
                print(f"{r['role']:<12} {r['backend']:<12} {eager[r['role']] / r['ms_per_frame']:.2f}x eager")
        if args.memory_check:
            n1, n2 = (int(v) for v in args.memory_check.split(","))
            peaks = [spawn(args, "vae_decoder", "onnxruntime", folder, stream=n - 1)["peak_rss_mib"] for n in (n1, n2)]
            print(f"streaming decode on onnxruntime: {n1} vs {n2} latent frames ({4 * (n1 - 1) + 1} vs {4 * (n2 - 1) + 1} frames): "
                  f"peak RSS {peaks[0]:.0f} vs {peaks[1]:.0f} MiB ({(peaks[1] / peaks[0] - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
