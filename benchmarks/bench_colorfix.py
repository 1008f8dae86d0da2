"""Benchmark ``--color-fix`` on the sample clips: how well each method undoes a network's drift,
and what it costs per frame against the untrained default's per-frame time.

    python benchmarks/bench_colorfix.py [--frames 12] [--clips samples/hills.mp4 ...]

1. A drifting network (``tests.colorfix_metrics.drifting_model``: the tiny default 10% of the
   way to random weights) is exported to OpenVINO IR and run by ``gvr upscale`` (the library)
   with ``--color-fix none`` over the first ``--frames`` frames of each clip, losslessly.
2. Each method is applied to those HR frames with the runtime's own ``gvrcli.inference.colorfix.color_fix``
   (the pipeline applies exactly this per frame) and compared with the bilinear upscale of the
   input: PSNR after a sigma-2 Gaussian blur of both (colour and tone), plain PSNR, and the
   largest per-frame channel mean / standard deviation error.
3. Cost: each method's time per frame at the first clip's output size, against the untrained
   built-in default's wall time per frame (a whole ``gvr upscale`` of that clip, ``none``).

Needs the export extras (torch). Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gvrcli.batch.options import UpscaleOptions  # noqa: E402
from gvrcli.batch.upscale import upscale  # noqa: E402
from gvrcli.inference.colorfix import METHODS, bilinear_upsample, color_fix  # noqa: E402
from tests.colorfix_metrics import blurred_psnr, channel_stat_errors, decode, drifting_model, psnr, write_lossless  # noqa: E402

CLIPS = ["samples/hills.mp4", "samples/shots/orbit.mp4", "samples/shots/waves.mov"]


def run(clip: Path, model: Path | None, out: Path) -> tuple[np.ndarray, float]:
    """``gvr upscale --color-fix none`` (lossless); returns HR frames (T, 3, H, W) and seconds per frame."""
    report = upscale([clip], UpscaleOptions(output_dir=out, model=model, codec="ffv1", pix_fmt="bgr0", color_fix="none"))
    result = report.files[0]
    if result.status != "done":
        raise SystemExit(f"gvr upscale failed: {result.reason}")
    return decode(out / clip.name).transpose(0, 3, 1, 2), result.seconds / result.frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12, help="frames per clip (from the start)")
    ap.add_argument("--clips", nargs="+", default=CLIPS)
    args = ap.parse_args()
    from export import export_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        ir = export_model("openvino", tmp / "ir", model=drifting_model()).main_file
        print(f"drifting model exported to OpenVINO IR in {time.perf_counter() - started:.0f} s")
        scores: dict[str, list[float]] = {m: [] for m in METHODS}
        print(f"\n{'clip':<12} {'method':<8} {'blurred PSNR':>12} {'PSNR':>6} {'mean err':>9} {'std err':>8}")
        for n, name in enumerate(args.clips):
            lr = decode(REPO / name, args.frames)
            clip = write_lossless(lr, tmp / f"{Path(name).stem}.mkv")
            hr, _ = run(clip, ir, tmp / f"out{n}")
            ref = np.stack([bilinear_upsample(f, 2) for f in lr])
            for method in METHODS:
                fixed = np.stack([color_fix(h.copy(), f, method) for h, f in zip(hr, lr)])
                fixed = np.round(fixed * 255) / 255  # as encoded
                b = blurred_psnr(fixed, ref)
                scores[method].append(b)
                mean_err, std_err = channel_stat_errors(fixed, ref)
                print(f"{Path(name).stem:<12} {method:<8} {b:>12.2f} {psnr(fixed, ref):>6.2f} {mean_err:>9.4f} {std_err:>8.4f}")
        print(f"\nmean blurred PSNR over {len(args.clips)} clips: " + ", ".join(f"{m} {np.mean(v):.2f} dB" for m, v in scores.items()))
        best = max((m for m in METHODS if m != "none"), key=lambda m: np.mean(scores[m]))
        print(f"best: {best}")

        lr = decode(REPO / args.clips[0], args.frames)
        clip = write_lossless(lr, tmp / "default.mkv")
        hr, per_frame = run(clip, None, tmp / "default")
        print(f"\nuntrained default, {lr.shape[2]}x{lr.shape[1]} -> {hr.shape[3]}x{hr.shape[2]}: {per_frame * 1000:.0f} ms per frame (whole gvr upscale, --color-fix none)")
        for method in METHODS:
            started = time.perf_counter()
            for h, f in zip(hr, lr):
                color_fix(h.copy(), f, method)
            cost = (time.perf_counter() - started) / len(hr)
            print(f"  {method:<8} {cost * 1000:6.1f} ms per frame = {100 * cost / per_frame:4.1f}% (incl. the reference upsample and a frame copy)")


if __name__ == "__main__":
    main()
