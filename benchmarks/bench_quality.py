"""Benchmark ``gvr degrade`` and ``gvr eval``: frames per second at 540p, and DIS flow time per frame.

    python benchmarks/bench_quality.py [--size 960x540] [--frames 48]

Prints, on this machine (library calls in this process, one file at a time):
* degrade throughput (HQ frames/s) for a ``--size`` clip at x2, with and without the flow stage;
* eval throughput (frame pairs/s) of a ``--size`` clip against a reference, and with ``--lr``
  baselines (bicubic and bilinear rows);
* DIS optical flow per frame: FAST as the degradation runs it on the LR frames, MEDIUM as eval
  runs it on the full-size frames.
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_upscale import make_clip  # noqa: E402

from gvrcli.media.decode import VideoDecoder  # noqa: E402
from gvrcli.media.probe import probe_video  # noqa: E402
from gvrcli.quality.eval import EvalOptions, evaluate  # noqa: E402
from gvrcli.quality.flow import FAST, MEDIUM, Flow, gray  # noqa: E402
from gvrcli.quality.pairs import DegradeOptions, degrade  # noqa: E402


def fps(report) -> float:
    frames = sum(f.frames for f in report.files)
    return frames / sum(f.seconds for f in report.files)


def flow_ms(frames: list, preset: int) -> float:
    flow = Flow(preset)
    flow(frames[1], frames[0])  # warm-up (allocations)
    times = []
    for a, b in zip(frames[1:], frames[2:]):
        t = time.perf_counter()
        flow(b, a)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="960x540")
    parser.add_argument("--frames", type=int, default=48)
    args = parser.parse_args()
    w, h = map(int, args.size.split("x"))
    print(f"OpenCV threads: {cv2.getNumThreads()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hq = make_clip(tmp / "hq" / "clip.mp4", args.frames, w, h)
        for flow in (True, False):
            report = degrade([hq], DegradeOptions(output_dir=tmp / f"lq-{flow}", scale=2, flow=flow))
            assert report.exit_code == 0, report.files[0].reason
            print(f"degrade {w}x{h} -> {w // 2}x{h // 2}, {'with' if flow else 'without'} flow stage: {fps(report):.1f} frames/s")
        lq = tmp / "lq-True"
        report = evaluate([tmp / "hq"], EvalOptions(reference_dir=tmp / "hq"))
        print(f"eval {w}x{h} (PSNR, SSIM, warping error): {fps(report):.1f} frames/s")
        report = evaluate([tmp / "hq"], EvalOptions(reference_dir=tmp / "hq", lr_dir=lq))
        print(f"eval {w}x{h} with --lr baselines: {fps(report):.1f} frames/s")
        full = [gray(f.rgb) for f in VideoDecoder(probe_video(hq)).frames()]
        low = [gray(f.rgb) for f in VideoDecoder(probe_video(lq / "clip.mp4")).frames()]
        lw, lh = low[0].shape[1], low[0].shape[0]
        print(f"DIS FAST   {lw}x{lh} (degrade, LR): {flow_ms(low, FAST):.1f} ms/frame")
        print(f"DIS MEDIUM {w}x{h} (eval): {flow_ms(full, MEDIUM):.1f} ms/frame")


if __name__ == "__main__":
    main()
