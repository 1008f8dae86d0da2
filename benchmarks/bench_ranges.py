"""Whole-process cost of one video as frame ranges: 4 ranges + join vs one single run, and the
context frames the ranges decode and compute twice (docs/ranges.md).

    python benchmarks/bench_ranges.py [--frames 120] [--size 320x180] [--segments 4] [--cut 57]
                                      [--model FILE] [--steps N] [--repeats 1]

Not a test: numbers depend on the machine. Run it on a quiet machine (about 2-4 minutes at the
defaults with the built-in tiny model on a 2-core CPU).

It writes a clip of ``--frames`` frames at ``--size`` with a hard cut at ``--cut`` (two unrelated
smooth colour fields, each panning) and a 440 Hz tone, then, each as fresh ``gvr`` processes one
after another (as one machine would run a farm's tasks; each process loads the model and pays
its own start): (b) ``gvr plan`` + the ranges + ``gvr join``; (a) ``gvr upscale`` of the whole
clip given the ``--backend`` and ``--tile`` the plan froze (docs/ranges.md: a single run given them
writes the joined frames), all ``--codec ffv1``. It prints what the plan froze and how, the walls
(median of ``--repeats``), the ratio (b)/(a) and the issue's bar (1.25), the plan's context frames
and extra model work, and whether the joined frames are bit-identical to the single run's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def gvr(*args) -> float:
    """Run ``gvr ARGS`` as a fresh process; its wall seconds (a failure stops the benchmark)."""
    return run_gvr(*args)[0]


def run_gvr(*args) -> tuple[float, str]:
    """``gvr ARGS`` as a fresh process: its wall seconds and its stdout."""
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "gvrcli", *map(str, args)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"gvr {' '.join(map(str, args[:2]))} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started, done.stdout


def frames_of(path: Path) -> list:
    import av

    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray(format="rgb24").tobytes()) for f in c.decode(c.streams.video[0])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--cut", type=int, default=57)
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    from tests.clips import write_video
    from tests.gvrcli.test_ranges_cli import BT709_TV, two_shots

    width, height = map(int, args.size.split("x"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    print(f"machine: {cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    common = [*(["-m", args.model] if args.model else []), *(["--steps", args.steps] if args.steps else []), "--codec", "ffv1"]
    with tempfile.TemporaryDirectory(prefix="gvr-bench-ranges-") as scratch:
        d = Path(scratch)
        clip = write_video(d / "clip.mp4", frames=args.frames, size=(width, height), content=two_shots(args.cut), audio=True, colour=BT709_TV)
        gvr("warmup", *(["-m", args.model] if args.model else []), "--input-size", args.size)  # machine caches, once
        single_walls, range_walls = [], []
        for repeat in range(args.repeats):
            plan = d / f"plan{repeat}.json"
            wall, out = run_gvr("plan", clip, plan, "--segments", args.segments, *common, "--json")
            made = json.loads(out.splitlines()[-1])
            frozen = ["--backend", made["backend"], "--tile", "x".join(map(str, made["tile"]))]
            single_walls.append(gvr("upscale", clip, d / f"single{repeat}.mkv", *common, *frozen))
            if repeat == 0:  # the plan whose frames are compared below
                shown = (frozen, made["chosen"])
            count = len(made["ranges"])
            steps = {"plan": wall}
            for k in reversed(range(count)):  # out of order, as a farm may
                steps[f"range {k}"] = gvr("upscale", clip, d / f"joined{repeat}.mkv", "--plan", plan, "--range-index", k, *common)
            steps["join"] = gvr("join", plan, d / f"joined{repeat}.mkv", "--codec", "ffv1")
            range_walls.append(sum(steps.values()))
        cost = json.loads((d / "plan0.json").read_text())["cost"]
        identical = frames_of(d / "single0.mkv") == frames_of(d / "joined0.mkv")
    single, ranged = statistics.median(single_walls), statistics.median(range_walls)
    ratio = ranged / single
    print(f"clip: {args.frames} frames {args.size}, cut at {args.cut}; {count} ranges")
    frozen, chosen = shown
    print(f"frozen by the plan (the single run given them too): {' '.join(frozen)} "
          f"(backend {chosen['backend']}; tile {chosen['tile']})")
    print(f"single run: {single:.2f} s; plan + {count} ranges + join: {ranged:.2f} s; ratio {ratio:.2f} "
          f"({'PASS' if ratio <= 1.25 else 'FAIL'} against 1.25)")
    print("the last round's steps: " + ", ".join(f"{name} {sec:.1f} s" for name, sec in steps.items()) + f"; single run {single_walls[-1]:.1f} s")
    print(f"context frames {cost['context_frames']}; model frames {cost['model_frames']} vs {cost['single_model_frames']} "
          f"(+{100 * cost['model_overhead']:.0f}% model work)")
    print(f"joined frames bit-identical to the single run's: {identical}")


if __name__ == "__main__":
    main()
