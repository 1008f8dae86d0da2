"""Benchmark ``gvr upscale``: throughput, the share of time outside the model, and bounded memory.

    python benchmarks/bench_upscale.py [--model FILE.onnx] [--size 480x270] [--frames 24]

Prints, for the built-in default (or ``--model``) on this machine:
* output frames per second for a ``--size`` clip of ``--frames`` frames;
* the share of wall time spent outside the model (decode, conversion, noise, blending, encode,
  and waiting on them): the goal is under 10%;
* peak resident memory of a whole ``gvr upscale`` process for a short clip (2 s) and one
  ``--long-factor`` times longer (goal: within 10%, since frames stream through bounded queues);
  these runs use one sampler step unless ``--steps`` is given (memory does not depend on it).

Each measurement runs ``gvr upscale`` in a fresh child process so peak RSS is that run's alone.
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: the repository's tests.clips writes the clips

from tests.clips import write_video  # noqa: E402


def make_clip(path: Path, frames: int, width: int, height: int, fps: int = 24) -> Path:
    """A moving textured clip (sines of differing phase per channel), H.264 at crf 18."""
    return write_video(path, frames, (width, height), fps, options={"crf": "18", "preset": "veryfast"}, content=_texture)


def _texture(index: int, height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([0.5 + 0.4 * np.sin(x / (5 + c) + index * 0.2 * (c + 1) + y / (9 - c)) for c in range(3)], -1)


def run_gvr(args: list[str]) -> tuple[list[dict], float, str]:
    """Run ``gvr ARGS`` in a child; return its JSON events, its peak RSS in MiB and its stderr.

    The peak is the child's own VmHWM, polled from /proc until it exits: wait4's ru_maxrss would
    also count the pages the child shared with this process between fork and exec, which for a
    parent holding torch and an eager run is gigabytes that gvr never touched.
    """
    argv = [sys.executable, "-m", "gvrcli", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    peak_kib = 0
    with tempfile.TemporaryFile("w+") as so, tempfile.TemporaryFile("w+") as se:
        proc = subprocess.Popen(argv, stdout=so, stderr=se, text=True, env=env)
        while proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
                peak_kib = max(peak_kib, int(status.split("VmHWM:")[1].split()[0]))
            except (OSError, IndexError, ValueError):
                pass  # exiting
            time.sleep(0.02)
        so.seek(0)
        se.seek(0)
        stdout, stderr = so.read(), se.read()
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not any(e.get("event") == "file" for e in events):
        raise SystemExit(f"gvr {' '.join(args[:1])} failed ({proc.returncode}): {stderr.strip()[-500:]}")
    return events, peak_kib / 1024, stderr


def peak_rss_child(clip: Path, out: Path, model: str | None, extra: list[str]) -> tuple[dict, float]:
    """Run ``gvr upscale`` in a child; return its JSON file event and its peak RSS in MiB."""
    args = ["upscale", str(clip), str(out), "--json", "--overwrite", *extra] + (["--model", model] if model else [])
    events, rss, _ = run_gvr(args)
    return next(e for e in events if e.get("event") == "file"), rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="exported model (default: the built-in default)")
    ap.add_argument("--size", default="480x270", help="input WxH for the throughput run")
    ap.add_argument("--frames", type=int, default=24, help="frames of the throughput clip")
    ap.add_argument("--mem-size", default="240x136", help="input WxH for the memory runs")
    # 48 frames (2 s): long enough to fill the pipeline (a chunk in the model, the next one decoded
    # and queued, the encoder's lookahead), so the comparison measures growth with length alone.
    ap.add_argument("--mem-frames", type=int, default=48, help="frames of the short memory clip")
    ap.add_argument("--repeats", type=int, default=3, help="memory runs per clip (the median is reported)")
    ap.add_argument("--long-factor", type=int, default=10, help="the long clip is this many times longer")
    ap.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    ap.add_argument("--only", choices=("throughput", "memory"), help="run one of the two measurements")
    args = ap.parse_args()
    extra = ["--steps", str(args.steps)] if args.steps else []
    w, h = map(int, args.size.split("x"))
    mw, mh = map(int, args.mem_size.split("x"))
    with tempfile.TemporaryDirectory(prefix="gvr-bench-") as tmp:
        tmp = Path(tmp)
        if args.only != "memory":
            throughput(tmp, args, w, h, extra)
        if args.only != "throughput":
            memory(tmp, args, mw, mh, extra)


def throughput(tmp: Path, args, w: int, h: int, extra: list[str]) -> None:
    clip = make_clip(tmp / "in" / "clip.mp4", args.frames, w, h)
    f, rss = peak_rss_child(clip, tmp / "out", args.model, extra)
    outside = 1 - f["model_seconds"] / f["seconds"]
    print(f"throughput  {w}x{h} input, {f['frames']} frames: {f['fps']:.3f} output fps "
          f"({f['seconds']:.1f} s wall, {f['model_seconds']:.1f} s in the model)")
    print(f"outside the model: {100 * outside:.1f}% of wall time (goal < 10%)   peak RSS {rss:.0f} MiB")


def memory(tmp: Path, args, mw: int, mh: int, extra: list[str]) -> None:
    """Median peak RSS over ``--repeats`` runs each (peaks vary run to run with thread timing)."""
    short = make_clip(tmp / "mem" / "short.mp4", args.mem_frames, mw, mh)
    long = make_clip(tmp / "mem" / "long.mp4", args.mem_frames * args.long_factor, mw, mh)
    extra = extra or ["--steps", "1"]  # memory does not depend on the step count; time does
    peaks = {}
    for name, clip in (("short", short), ("long", long)):
        runs = [peak_rss_child(clip, tmp / f"out-{name}", args.model, extra) for _ in range(args.repeats)]
        peaks[name] = (runs[0][0]["frames"], statistics.median(rss for _, rss in runs), [round(r) for _, r in runs])
    (fs, rs, all_s), (fl, rl, all_l) = peaks["short"], peaks["long"]
    print(f"peak RSS {mw}x{mh} input: {fs} frames {rs:.0f} MiB (runs {all_s}), "
          f"{fl} frames {rl:.0f} MiB (runs {all_l}) -> {100 * (rl / rs - 1):+.1f}% (goal within 10%)")


if __name__ == "__main__":
    main()
