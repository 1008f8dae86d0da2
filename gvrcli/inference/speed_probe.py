"""The speed probe's child process: ``python -m gvrcli.inference.speed_probe MODEL BACKEND...``.

Loads each backend in turn, times its step graph on the probe tile (``speed.probe_shape``: a few
attention windows a side, one temporal unit) after two warm-up calls, and prints one JSON line per
backend: ``{"backend": ..., "seconds": median of 5}``. A child, so the probe's second runtime, its
weights and its threads never stay in the process that runs the job (``speed.run_probe``).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

WARMUP, TIMED = 2, 5


def step_feeds(manifest, frames: int, hr: tuple[int, int]) -> tuple[dict, dict]:
    """(inputs, outputs) of one step-graph call on a random clip of ``frames`` x ``hr``."""
    rng = np.random.default_rng(0)
    z = (1, manifest.latent_channels, frames, *hr)
    feeds = {"z_t": rng.standard_normal(z, dtype=np.float32), "t": np.array([0.75], np.float32),
             "t_next": np.array([0.5], np.float32), "noise_aug": np.array([manifest.noise_aug], np.float32)}
    for name in ("cond", "base"):
        if name in manifest.inputs:
            feeds[name] = rng.standard_normal(z, dtype=np.float32)
    if manifest.has_text:
        feeds["text"] = np.zeros((1, manifest.text_tokens, int(manifest.config["dim"])), np.float32)
    return feeds, {"z_next": np.empty(z, np.float32)}


def condition_feeds(manifest, frames: int, lr: tuple[int, int], hr: tuple[int, int]) -> tuple[dict, dict]:
    """(inputs, outputs) of one condition-graph call."""
    rng = np.random.default_rng(1)
    C = manifest.latent_channels
    x = rng.uniform(0, 1, (1, C, frames, *lr)).astype(np.float32)
    feeds = {"lr": x, "lr_noise": x.copy(), "noise_aug": np.array([manifest.noise_aug], np.float32),
             "hr_grid": np.zeros((1, 1, 1, *hr), np.float32)}
    outs = {name: np.empty((1, C, frames, *hr), np.float32) for name in ("cond", "base") if name == "cond" or "base" in manifest.inputs}
    return feeds, outs


def median_seconds(model, role: str, feeds: tuple[dict, dict], warmup: int = WARMUP, timed: int = TIMED, pick=statistics.median) -> float:
    """Median (or ``pick``) wall time of ``timed`` runs of ``role`` on ``feeds`` (inputs, outputs)
    after ``warmup`` runs. (The buffers stay referenced here while the runtime holds their addresses.)"""
    bound, times = model.bind(role, *feeds), []
    for k in range(warmup + timed):
        started = time.perf_counter()
        bound.run()
        if k >= warmup:
            times.append(time.perf_counter() - started)
    return pick(times)


def load(model_path: Path, backend: str):
    from gvrcli.inference.backends import make_backend
    from gvrcli.inference.modelfile import read_manifest

    manifest = read_manifest(model_path)
    return make_backend(model_path, backend, "CPU", 0, None, manifest).load(manifest)


def probe(model_path: Path, backend: str) -> float:
    from models.manifest import STEP

    from gvrcli.inference.speed import probe_shape

    model = load(model_path, backend)
    frames, _, hr = probe_shape(model.manifest)
    return median_seconds(model, STEP, step_feeds(model.manifest, frames, hr))


def main(argv: list[str]) -> int:
    model_path, backends = Path(argv[0]), argv[1:]
    for backend in backends:
        try:
            seconds = probe(model_path, backend)
        except Exception as e:  # a backend that cannot run here is left out; the parent decides
            print(json.dumps({"backend": backend, "error": str(e).splitlines()[0][:200] if str(e) else type(e).__name__}), flush=True)
            continue
        print(json.dumps({"backend": backend, "seconds": seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
