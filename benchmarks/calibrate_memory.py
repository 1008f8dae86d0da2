"""Measure each backend's activation factor (``gvrcli.inference.loaded.ACTIVATION_FACTOR``).

    python benchmarks/calibrate_memory.py [--frames 8] [--size 480x270] [--tiles 0,270,144]

For each backend and tile side, a fresh process loads the shipped x2 model, runs one chunk of
``--frames`` random LR frames (in square tiles of each ``--tiles`` side, 0 = whole frames) through the engine with two
sampler steps, and prints its peak resident memory beyond what it held after loading, per byte of
the tile's HR latent: the factor the memory planner multiplies the tile's latent by. Not a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, numpy as np
sys.path.insert(0, {repo!r})
from gvrcli.inference.backends import make_backend
from gvrcli.inference.engine import Upscaler
from gvrcli.inference.settings import EngineSettings
from gvrcli.inference.memory import peak_resident_mb, resident_mb
from gvrcli.inference.modelfile import read_manifest, resolve_default_model

frames, h, w, side, backend = {frames}, {h}, {w}, {side}, {backend!r}
path = resolve_default_model(2, say=lambda m: None)
manifest = read_manifest(path)
model = make_backend(path, backend, "auto", 0, "fp32", manifest).load(manifest)
lr = np.random.default_rng(0).uniform(0, 1, (frames, h, w, 3)).astype(np.float32)
base = resident_mb()
# A tile as large as the frame is the whole frame (0 would let the memory planner choose).
up = Upscaler(model, EngineSettings.from_manifest(manifest, steps=2, tile=side or max(h, w)))
th, tw = up.tile_size(frames, h, w)
for _ in range(2):  # a file's chunks: the second shows what the runtime's allocator keeps growing
    out = up.upscale_chunk(lr, 0)
z_mb = 3 * frames * (2 * th) * (2 * tw) * 4 / 2**20
extra = peak_resident_mb() - base - out.nbytes / 2**20
print(f"{{backend}} tile {{tw}}x{{th}} z={{z_mb:.1f}} MiB  peak beyond load {{extra:.0f}} MiB  factor {{extra / z_mb:.1f}}")
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", default="480x270")
    ap.add_argument("--tiles", default="0,270,144", help="square LR tile sides (0 = whole frame)")
    ap.add_argument("--backends", default="ort-cpu,openvino")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    for backend in args.backends.split(","):
        for side in map(int, args.tiles.split(",")):
            code = CHILD.format(repo=str(REPO), frames=args.frames, h=h, w=w, side=side, backend=backend)
            subprocess.run([sys.executable, "-c", code], check=False)


if __name__ == "__main__":
    main()
