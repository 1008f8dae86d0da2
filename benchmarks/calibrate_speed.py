"""Measure each CPU backend's speed model (``gvrcli.inference.speed``), the table gvr ships.

    python benchmarks/calibrate_speed.py [--backends ort-cpu,openvino] [--repeats 5] [--write]

For each backend, on the shipped x2 model (or ``--model``), in this process:

* ``points``: ns per HR pixel per frame of step calls on window-aligned tiles of 1, 2, 4, 8 and
  ``--max-windows`` windows a side: the difference between clips of two and one temporal units;
* ``call_ms``: the fixed cost per call, what one unit's time leaves over its pixels' (the median
  over the tile sizes);
* ``padding_share``: an aligned 2x2-window tile against one whose width pads to the same windows
  but holds one window less one patch of real pixels;
* ``condition_steps``: the condition graph's time on a 4x4-window tile, in steps of that tile;
* ``setup_s``: loading the model (a warm compiled-model cache) and compiling one chunk's shape,
  what a run costs beyond its calls (only the difference between backends matters).

``--write`` rewrites ``gvrcli/inference/speed_table.py`` with the CPU named. Timings are the fastest
of ``--repeats`` after 2 warm-ups; on a busy machine they are noisy (the machine's own factor corrects the
scale at run time, not the shape). Not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def measure(model_path: Path, backend: str, max_windows: int, repeats: int) -> dict:
    from models.manifest import CONDITION, STEP

    from gvrcli.inference.speed import window_of
    from gvrcli.inference.speed_probe import condition_feeds, load, median_seconds, step_feeds

    started = time.perf_counter()
    model = load(model_path, backend)
    m = model.manifest
    prepare = getattr(model, "prepare", None)  # OpenVINO compiles a copy per large clip shape
    if prepare is not None:
        hr = (6 * window_of(m)[0], 8 * window_of(m)[1])
        prepare(STEP, {n: v.shape for n, v in step_feeds(m, 4 * m.temporal_unit, hr)[0].items()})
    setup = time.perf_counter() - started
    (wy, wx), s, patch, unit = window_of(m), m.scale, m.patch, m.temporal_unit

    def step(T: int, hr: tuple[int, int]) -> float:  # the fastest run: the least disturbed by other load
        return median_seconds(model, STEP, step_feeds(m, T, hr), timed=repeats, pick=min)

    # Per tile size: one and two temporal units; the difference is the per-pixel rate, what is left
    # of one unit's time is the fixed cost.
    points, fixed = [], []
    for k in sorted({1, 2, 4, 8, max_windows}):
        hr = (k * wy, k * wx)
        one, two = step(unit, hr), step(2 * unit, hr)
        rate = max(two - one, 1e-9) / (hr[0] * hr[1] * unit)
        fixed.append(max(one - rate * hr[0] * hr[1] * unit, 0.0))
        points.append([hr[0] * hr[1], round(rate * 1e9, 2)])
        print(f"  {backend} {hr[1]}x{hr[0]} ({k}x{k} windows): {one * 1000:.1f} / {two * 1000:.1f} ms at {unit} / {2 * unit} frames, "
              f"{points[-1][1]} ns/px", flush=True)
    call = sorted(fixed)[len(fixed) // 2]
    aligned, narrow = (2 * wy, 2 * wx), (2 * wy, wx + patch)  # the same padded windows
    t_aligned, t_narrow = step(unit, aligned), step(unit, narrow)
    rate = (t_aligned - call) / (aligned[0] * aligned[1] * unit)
    real = narrow[0] * narrow[1] * unit
    share = ((t_narrow - call) / rate - real) / (aligned[0] * aligned[1] * unit - real)
    hr = (4 * wy, 4 * wx)
    lr = (hr[0] // s, hr[1] // s)
    condition = median_seconds(model, CONDITION, condition_feeds(m, unit, lr, hr), timed=repeats, pick=min) / step(unit, hr)
    return {
        "call_ms": round(call * 1000, 3),
        "points": points,
        "padding_share": round(min(max(share, 0.0), 1.0), 3),
        "condition_steps": round(condition, 3),
        "setup_s": round(setup, 2),
    }


def write_table(table: dict) -> None:
    path = REPO / "gvrcli" / "inference" / "speed_table.py"
    text = (
        '"""The shipped speed calibration (``gvrcli.inference.speed``): written by\n'
        "``benchmarks/calibrate_speed.py --write``; the machine it came from is named in it. Each\n"
        "machine corrects the per-pixel term with its own factor at run time.\"\"\"\n\n"
        f"CALIBRATED = {json.dumps(table, indent=4)}\n"
    )
    path.write_text(text)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="ort-cpu,openvino")
    ap.add_argument("--model", type=Path, default=None, help="default: the built-in x2 model")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per shape (the fastest counts)")
    ap.add_argument("--max-windows", type=int, default=8, help="the largest tile, in windows a side")
    ap.add_argument("--write", action="store_true", help="rewrite gvrcli/inference/speed_table.py")
    args = ap.parse_args()
    from gvrcli.inference.modelfile import resolve_default_model
    from gvrcli.inference.speed import _cpu_name

    model = args.model or resolve_default_model(2)
    import os

    table = {"machine": f"{_cpu_name()}, {os.cpu_count()} cores", "model": model.name, "backends": {}}
    for backend in args.backends.split(","):
        table["backends"][backend] = measure(model, backend, args.max_windows, args.repeats)
        print(json.dumps({backend: table["backends"][backend]}), flush=True)
    if args.write:
        write_table(table)
    else:
        print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
