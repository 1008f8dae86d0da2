"""Calibrate the VAE's working set for the memory planner (``gvrcli.inference.vae_plan``).

    python benchmarks/calibrate_vae_memory.py --bundle DIR [--cells 8,16] [--backends onnxruntime,openvino]

For each backend, role (encoder, decoder step graph) and square latent grid of ``--cells`` cells, a
fresh child process loads the bundle as ``gvr`` does (``make_backend``: every graph), builds one
chunk's inputs with random caches, notes its resident memory, runs the step twice and reads its
peak (``VmHWM``). The growth minus the caches the step returns is the chunk's working set; a line
``fixed + factor x frame-pixels`` (bytes per full-resolution pixel of the chunk's 4 frames) is fitted
by least squares and raised to lie on or above every point. Prints the points and the constants
for ``VAE_FIXED_MB`` / ``VAE_FACTOR`` (at the bundle's base_dim; the planner scales by base_dim /
96), after a machine line. Not a test: numbers depend on the machine and its runtimes.

The bundle must carry the Wan2.1 configuration's VAE (base_dim 96) for the shipped constants:
``python benchmarks/bench_cascade_real.py --keep DIR --quick`` exports one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_cascade import _env, machine_line  # noqa: E402

ROLES = ("vae_encoder", "vae_decoder")


def status_mib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(bundle: Path, backend: str, role: str, cells: int) -> dict:
    """One measurement, in this (fresh) process."""
    from gvrcli.inference.backends import make_backend
    from gvrcli.inference.loaded import run_graph
    from gvrcli.inference.modelfile import read_manifest, resolve_model_path
    from gvrcli.inference.vae import read_vae

    main = resolve_model_path(bundle)
    manifest = read_manifest(main)
    model = make_backend(main, backend, manifest=manifest, precision="fp32").load(manifest)
    m = read_vae(main, manifest).manifests[role]
    rng = np.random.default_rng(0)
    shapes = m.cache_shapes(cells, cells)
    if role == "vae_encoder":
        x, out = rng.uniform(0, 1, (1, 3, 4, 8 * cells, 8 * cells)), (1, 16, 1, cells, cells)
    else:
        x, out = rng.standard_normal((1, 16, 1, cells, cells)), (1, 3, 4, 8 * cells, 8 * cells)
    feed = {m.input: x.astype(np.float32), **{n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}}
    outputs = {m.output: out, **{n + "_out": s for n, s in shapes.items()}}
    caches_mb = sum(int(np.prod(s)) for s in shapes.values()) * 4 / 2**20
    before = status_mib("VmRSS")
    for _ in range(2):
        result = run_graph(model, role, feed, outputs)
        del result
    grown = status_mib("VmHWM") - before
    return {"backend": backend, "role": role, "cells": cells, "frame_pixels": 4 * 64 * cells * cells,
            "caches_mb": round(caches_mb, 1), "work_mb": round(grown - caches_mb, 1)}


def fit(points: list[dict]) -> tuple[float, float]:
    """(fixed MiB, factor bytes per frame-pixel): least squares, then raised over every point."""
    x = np.array([p["frame_pixels"] for p in points], float)
    y = np.array([p["work_mb"] for p in points], float)
    factor, fixed = np.polyfit(x / 2**20, y, 1) if len(points) > 1 else (0.0, y[0])
    factor = max(factor, 0.0)
    fixed += max(0.0, float(np.max(y - (fixed + factor * x / 2**20))))
    return max(fixed, 0.0), factor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--cells", default="8,16", help="square latent grids to measure (comma-separated)")
    ap.add_argument("--backends", default="onnxruntime,openvino")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        backend, role, cells = args.child.split(":")
        print(json.dumps(child(args.bundle, backend, role, int(cells))))
        return
    print(machine_line(), flush=True)
    names = {"onnxruntime": "ort-cpu", "openvino": "openvino"}
    for backend in args.backends.split(","):
        for role in ROLES:
            points = []
            for cells in (int(c) for c in args.cells.split(",")):
                argv = [sys.executable, __file__, "--bundle", str(args.bundle), "--child", f"{names[backend]}:{role}:{cells}"]
                done = subprocess.run(argv, capture_output=True, text=True, env=_env())
                if done.returncode != 0:
                    raise SystemExit(f"{backend} {role} {cells}: {done.stderr.strip()[-400:]}")
                p = json.loads(done.stdout.strip().splitlines()[-1])
                p["backend"] = backend
                points.append(p)
                print(f"{backend} {role} {cells}x{cells} cells: caches {p['caches_mb']} MiB, working set {p['work_mb']} MiB", flush=True)
            fixed, factor = fit(points)
            print(f"  -> VAE_FIXED_MB[({backend!r}, {role!r})] = {fixed:.0f}, VAE_FACTOR = {factor:.0f} bytes per frame-pixel")


if __name__ == "__main__":
    main()
