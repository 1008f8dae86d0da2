"""What ``gvr eval``'s weight-free metrics cost: this tree against an older checkout, same clips.

    git worktree add /tmp/gvr-old <commit before the metrics>      # or: git archive <commit> | tar -x -C /tmp/gvr-old
    python benchmarks/bench_eval_cost.py --old /tmp/gvr-old [--size 512x288] [--frames 30] [--clips 3] [--repeat 5]

Writes ``--clips`` clips (reference, LR at half size, an output = the LR's bicubic upsample) and
runs ``evaluate()`` on them with ``--lr`` from each tree in turn, in a fresh process each time,
old and new interleaved (so a busy machine's load falls on both alike), and prints each run's
seconds, wall and CPU (scoring only, imports excluded), the medians per tree and their ratios
(CPU time is the steadier under load). Then, in this
process, the new metrics' own share: ``Consistency.add`` per frame against the whole frame loop.
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.clips import write_video  # noqa: E402
from tests.gvrcli.quality.scenes import moving  # noqa: E402

# Run in a fresh interpreter with PYTHONPATH=<tree>: score the clips, print the seconds.
TIMED = """
import json, sys, time
from pathlib import Path
from gvrcli.quality.eval import EvalOptions, evaluate
root = Path(sys.argv[1])
t, cpu = time.perf_counter(), time.process_time()
report = evaluate([root / "up"], EvalOptions(reference_dir=root / "ref", lr_dir=root / "lr"))
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - cpu, "done": report.count("done")}))
"""


def make_clips(root: Path, clips: int, frames: int, w: int, h: int) -> None:
    def lr(i, lh, lw):
        return cv2.resize(moving(i, 2 * lh, 2 * lw), (lw, lh), interpolation=cv2.INTER_AREA)

    def up(i, hh, hw):
        return np.clip(cv2.resize(lr(i, hh // 2, hw // 2), (hw, hh), interpolation=cv2.INTER_CUBIC), 0, 1)

    for k in range(clips):
        write_video(root / "ref" / f"c{k}.mp4", frames=frames, size=(w, h), content=moving)
        write_video(root / "lr" / f"c{k}.mp4", frames=frames, size=(w // 2, h // 2), content=lr)
        write_video(root / "up" / f"c{k}.mp4", frames=frames, size=(w, h), content=up)


def timed(tree: Path, clips: Path) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    r = subprocess.run([sys.executable, "-c", TIMED, str(clips)], env=env, capture_output=True, text=True, check=True, cwd=tree)
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["done"] > 0, r.stderr
    return out["seconds"], out["cpu"]


def share_of_new_metrics(clips: Path) -> tuple[float, float]:
    """(ms per frame in Consistency.add, ms per frame of the whole scoring), this tree."""
    from gvrcli.quality import consistency
    from gvrcli.quality.eval import EvalOptions, evaluate

    spent = []
    real = consistency.Consistency.add

    def add(self, *a):
        t = time.perf_counter()
        real(self, *a)
        spent.append(time.perf_counter() - t)

    consistency.Consistency.add = add
    import gvrcli.quality.eval as ev

    ev.Consistency.add = add
    t = time.perf_counter()
    report = evaluate([clips / "up"], EvalOptions(reference_dir=clips / "ref", lr_dir=clips / "lr"))
    total = time.perf_counter() - t
    consistency.Consistency.add = ev.Consistency.add = real
    return 1000 * sum(spent) / len(spent), 1000 * total / report.frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="a checkout of gvr before the change")
    parser.add_argument("--size", default="512x288", help="WxH, both multiples of 4 (the LR is half, 4:2:0)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    w, h = map(int, args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        clips = Path(tmp)
        make_clips(clips, args.clips, args.frames, w, h)
        runs: dict[str, list[tuple[float, float]]] = {"old": [], "new": []}
        for _ in range(args.repeat):
            for name, tree in (("old", args.old), ("new", ROOT)):
                runs[name].append(timed(tree, clips))
        for name, rs in runs.items():
            print(f"{name}: wall " + " ".join(f"{w_:.2f}" for w_, _ in rs) + f"  median {statistics.median(w_ for w_, _ in rs):.2f} s;"
                  f" CPU median {statistics.median(c for _, c in rs):.2f} s")
        for i, what in ((0, "wall"), (1, "CPU")):
            ratio = statistics.median(r[i] for r in runs["new"]) / statistics.median(r[i] for r in runs["old"])
            print(f"new / old ({what}): {ratio:.3f} ({args.clips} clips of {args.frames} frames at {w}x{h}, with --lr)")
        metric_ms, frame_ms = share_of_new_metrics(clips)
        print(f"new metrics: {metric_ms:.2f} ms per frame of {frame_ms:.2f} ms ({100 * metric_ms / frame_ms:.1f}%)")


if __name__ == "__main__":
    main()
