"""The pixel path at real sizes, every CPU backend and the default side by side in one run (issue 24).

    python benchmarks/bench_real_sizes.py                # 960x540 -> 1920x1080 and 1280x720 -> 2560x1440, 12 frames
    python benchmarks/bench_real_sizes.py --quick        # a small smoke run (320x180 and 480x270, 6 frames)
    python benchmarks/bench_real_sizes.py --cold         # every run with empty caches (OpenVINO's, the speed factors)

Each run is a whole ``gvr upscale`` child process (first calls included) at the default steps and
the default (auto) memory budget: ``--backend ort-cpu``, ``--backend openvino`` and the default,
interleaved per round (``--repeats``, the fastest round reported) so load drifts hit each alike.
Reported per size and run: wall seconds, seconds per frame, peak RSS (the child's VmHWM) against
its budget, the model's seconds (predicted before the file and measured), the plan chosen, and the
model's achieved GFLOP/s (the clip's whole-frame work, ``models.flops``, over the model seconds:
tile overlap and padding count as lost time) against this machine's sgemm peak (numpy, 2048^3).

Caches: by default the runs share one fresh cache folder, so the default run finds the speed
factors the explicit runs' first chunks measured (a machine's second job); ``--cold`` gives each
run its own empty one (the default then probes both backends when the job is large enough).

The input is a smooth synthetic clip made here, nothing downloaded: gradients, moving shapes and
fine texture, H.264 at crf 18. Prints a Markdown table and writes ``--json`` (default
``bench_real_sizes.json``). Checks printed at the end: the default's wall within 1.10x of the
faster explicit backend, and each run's peak RSS within its budget + 10%. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_cpu import gvr_run, machine, sgemm_peak  # noqa: E402
from tests.clips import write_video  # noqa: E402

RUNS = {"ort-cpu": "ort-cpu", "openvino": "openvino", "default": None}  # run -> --backend


def real_like(index: int, height: int, width: int) -> np.ndarray:
    """One frame of a clip that looks more like footage than a test pattern: a smooth gradient sky,
    a textured ground, three shapes moving at different speeds, fine grain. (H, W, 3) in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    frame = np.stack([0.35 + 0.3 * v, 0.5 + 0.2 * u * (1 - v), 0.8 - 0.3 * v], -1)
    ground = v > 0.6 + 0.05 * np.sin(u * 6 + index * 0.03)
    texture = 0.5 + 0.15 * np.sin(x / 3.1 + np.sin(y / 7.3) * 4) * np.cos(y / 2.7 + index * 0.1)
    frame[ground] = np.stack([0.3 * texture, 0.45 * texture + 0.1, 0.2 * texture], -1)[ground]
    for k, (speed, radius, colour) in enumerate(((0.004, 0.08, (0.9, 0.3, 0.2)), (-0.006, 0.05, (0.2, 0.3, 0.9)), (0.009, 0.03, (0.95, 0.9, 0.3)))):
        cx, cy = (0.2 + 0.3 * k + speed * index * width / 100) % 1.0, 0.3 + 0.15 * k
        inside = (u - cx) ** 2 * (width / height) ** 2 + (v - cy) ** 2 < radius**2
        frame[inside] = colour
    grain = np.random.default_rng(index).normal(0, 0.015, frame.shape).astype(np.float32)
    return np.clip(frame + grain, 0, 1)


def make_clip(path: Path, frames: int, width: int, height: int) -> Path:
    return write_video(path, frames, (width, height), 24, options={"crf": "18", "preset": "veryfast"}, content=real_like)


def clip_gflop(model_path: str | None, frames: int, height: int, width: int, steps: int) -> float | None:
    """The clip's model work at whole frames (condition once per chunk ~ once, ``steps`` steps), by
    ``models.flops`` on the meta device; None when the model's network cannot be rebuilt here."""
    try:
        import models
        from models.flops import graph_flops

        from gvrcli.inference.modelfile import read_manifest, resolve_default_model

        manifest = read_manifest(Path(model_path) if model_path else resolve_default_model(2))
        config = {k: v for k, v in manifest.config.items() if k not in ("preset", "codec", "steps", "noise_aug", "shift")}
        net = models.build_model("tiny", **config)
        flops = graph_flops(net, frames, height * manifest.scale, width * manifest.scale)
        return (flops["condition"] + steps * flops["step"]) / 1e9
    except Exception as e:  # a model whose config this tree cannot rebuild: the column stays empty
        print(f"(no FLOP count: {str(e).splitlines()[0][:120]})", file=sys.stderr)
        return None


def one_run(clip: Path, out: Path, backend: str | None, model: str | None, cache: Path) -> dict:
    os.environ["XDG_CACHE_HOME"] = str(cache)
    for variable in ("GVR_OV_CACHE", "GVR_SPEED_CACHE"):  # under XDG_CACHE_HOME, as a user's would be
        os.environ.pop(variable, None)
    run = gvr_run(clip, out, backend, ["--model", model] if model else [], steps=None)
    return {"wall_s": run["wall"], "peak_rss_mib": run["rss"], "file": run["file"], "backend": run["summary"]["backend"], "start_line": run["start_line"]}


def row(size: str, name: str, run: dict, frames: int, gflop: float | None, peak: float) -> dict:
    plan = run["file"].get("plan") or {}
    model_s = run["file"]["model_seconds"]
    budget = plan.get("budget_mib")
    achieved = gflop / model_s if gflop and model_s else None
    return {
        "size": size, "run": name, "backend": run["backend"], "plan": plan.get("short", run["file"].get("memory", "")),
        "wall_s": round(run["wall_s"], 2), "s_per_frame": round(run["wall_s"] / frames, 3),
        "peak_rss_mib": round(run["peak_rss_mib"]), "budget_mib": budget,
        "rss_over_budget": round(run["peak_rss_mib"] / budget, 3) if budget else None,
        "model_s": model_s, "predicted_s": plan.get("predicted_s"),
        "gflops": round(achieved, 1) if achieved else None, "sgemm_share": round(achieved / peak, 3) if achieved else None,
    }


def markdown(rows: list[dict], peak: float) -> str:
    head = "| size | run | backend | wall s | s/frame | peak RSS MiB | budget MiB | RSS/budget | model s | predicted s | GFLOP/s | of sgemm | plan |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = [r["size"], r["run"], r["backend"], r["wall_s"], r["s_per_frame"], r["peak_rss_mib"], r["budget_mib"], r["rss_over_budget"],
                 r["model_s"], r["predicted_s"], r["gflops"], f"{100 * r['sgemm_share']:.1f}%" if r["sgemm_share"] else "-", r["plan"]]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    lines.append(f"\nsgemm peak (numpy 2048^3 fp32): {peak:.0f} GFLOP/s")
    return "\n".join(lines)


def checks(rows: list[dict]) -> list[str]:
    out = []
    for size in dict.fromkeys(r["size"] for r in rows):
        runs = {r["run"]: r for r in rows if r["size"] == size}
        fastest = min(runs["ort-cpu"]["wall_s"], runs["openvino"]["wall_s"])
        ratio = runs["default"]["wall_s"] / fastest
        out.append(f"{size}: default {runs['default']['wall_s']} s = {ratio:.2f}x the faster explicit backend ({fastest} s): "
                   f"{'PASS' if ratio <= 1.10 else 'FAIL'} (goal <= 1.10x)")
        for r in runs.values():
            if r["rss_over_budget"] is not None:
                out.append(f"{size} {r['run']}: peak RSS {r['peak_rss_mib']} MiB of budget {r['budget_mib']} MiB "
                           f"({r['rss_over_budget']:.2f}x): {'PASS' if r['rss_over_budget'] <= 1.10 else 'FAIL'} (goal <= 1.10x)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 320x180 and 480x270 inputs, 6 frames")
    ap.add_argument("--sizes", default=None, help="input WxH list (default 960x540,1280x720)")
    ap.add_argument("--frames", type=int, default=None, help="frames per clip (default 12)")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved rounds; the fastest is reported")
    ap.add_argument("--cold", action="store_true", help="every run with its own empty cache folder")
    ap.add_argument("--model", default=None, help="exported model (default: the built-in x2)")
    ap.add_argument("--json", type=Path, default=Path("bench_real_sizes.json"), help="where the results go")
    args = ap.parse_args()
    sizes = args.sizes or ("320x180,480x270" if args.quick else "960x540,1280x720")
    frames = args.frames or (6 if args.quick else 12)
    print(f"machine: {machine()}", flush=True)
    peak = sgemm_peak()
    from gvrcli.inference.modelfile import read_manifest, resolve_default_model

    steps = read_manifest(Path(args.model) if args.model else resolve_default_model(2)).steps
    rows, raw = [], []
    with tempfile.TemporaryDirectory(prefix="gvr-bench-real-") as tmp:
        tmp = Path(tmp)
        shared = tmp / "cache"
        for size in sizes.split(","):
            w, h = map(int, size.split("x"))
            clip = make_clip(tmp / "in" / f"{size}.mp4", frames, w, h)
            gflop = clip_gflop(args.model, frames, h, w, steps)
            best: dict[str, dict] = {}
            for round_ in range(args.repeats):
                for name, backend in RUNS.items():
                    cache = tmp / f"cache-{size}-{name}-{round_}" if args.cold else shared
                    run = one_run(clip, tmp / "out" / name, backend, args.model, cache)
                    print(f"  {size} {name} round {round_ + 1}: {run['wall_s']:.1f} s, {run['peak_rss_mib']:.0f} MiB; {run['start_line']}", flush=True)
                    raw.append({"size": size, "run": name, "round": round_, **run})
                    if name not in best or run["wall_s"] < best[name]["wall_s"]:
                        best[name] = run
            label = f"{w}x{h} -> {2 * w}x{2 * h}"
            rows += [row(label, name, best[name], frames, gflop, peak) for name in RUNS]
    print()
    print(markdown(rows, peak))
    print()
    verdicts = checks(rows)
    print("\n".join(verdicts))
    result = {"machine": machine(), "sgemm_gflops": peak, "frames": frames, "steps": steps, "cold": args.cold, "rows": rows, "checks": verdicts, "runs": raw}
    args.json.write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
