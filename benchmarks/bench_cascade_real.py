"""Benchmark the latent cascade at real sizes with the real Wan2.1 VAE configuration (random weights).

    python benchmarks/bench_cascade_real.py                      # real sizes (quiet machine: see below)
    python benchmarks/bench_cascade_real.py --quick              # smoke test: tiny VAE, tiny frames
    [--bundle DIR | --keep DIR] [--outputs 960x480,1440x720] [--frames 5] [--budget 3000]
    [--seam-size 512x320] [--vae-size 320x192] [--only cascade,budget,seam,eager]

Four measurements, after a machine line (CPU, cores, load):

1. **cascade**: for each output size of ``--outputs`` (x2 from a smooth LR clip of ``--frames``
   frames), one whole ``gvr upscale --model BUNDLE --json`` process at the default budget: wall,
   peak RSS (the child's VmHWM), s/frame, and each stage's seconds from the file event (decode the
   LR video, VAE encode, denoiser, VAE decode, encode the output) with the VAE's share of the
   file's seconds, and the VAE plan the run chose.
2. **budget**: ``--memory-budget BUDGET`` at the last output size: every frame out and peak RSS
   <= budget + 10% (PASS/FAIL), with the plan (tiles, overlap, spill) and the stage seconds.
3. **seam**: a smooth clip at ``--seam-size`` (output pixels) encoded one piece, its latents
   decoded one piece and in the tiles (size, overlap) the budget run planned for its decoder: PSNR
   overall and in a band of +-overlap around the tile borders; PASS at >= 40 dB overall.
4. **eager**: the same clip and latents at ``--vae-size`` through eager diffusers
   (``AutoencoderKLWan.encode`` / ``.decode``, the same random weights, torch threads = cores; fp32
   and under bf16 autocast) and through the bundle's graphs on ONNX Runtime and OpenVINO (fp32, and
   OpenVINO ``--precision bf16``; ``ChunkedEncoder`` / ``ChunkedDecoder``, one piece): whole-stage
   seconds, each run's GFLOP/s against the sgemm peak (the fp32 ceiling it sets), the decode's PSNR
   against eager fp32's; PASS at >= 1.5x eager fp32 for the faster fp32 runtime, decode and encode.

The bundle: a random-weight ``tiny`` SimpleGVR (x2, Wan2.1 latent space) with the Wan2.1 VAE
(``models.build_vae()``: base_dim 96, 127 M parameters), exported once (``gvr export --vae``,
about 2 minutes; ``--keep DIR`` keeps it, ``--bundle DIR`` reuses it). ``--quick`` uses base_dim 16
and 1 residual block, outputs 256x128 and 384x192, 5 frames, a budget of 1 MiB (nothing fits: the
leanest plan runs, to exercise tiles and spilled caches), seam and eager at 256x128.

Run time at real sizes: the Wan2.1 VAE decodes about 4500 pixel-frames per second on a loaded
2-core Xeon (69 s for 5 frames at 320x192 one piece on ONNX Runtime; tiles add their overlap, up
to 2x at a 3000 MiB budget), so 5 frames at 1440x720 cost 20-40 minutes per decode on 2 cores: the
whole default run (two sizes, the budget run, the seam's one-piece reference, the eager passes)
takes 2-3 hours on 2 cores, about 20 minutes on 16. Hence 5 frames (2 latent frames) by default.
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_cascade import _env, machine_line  # noqa: E402
from benchmarks.bench_upscale import run_gvr  # noqa: E402
from tests.clips import write_video  # noqa: E402
from tests.seams import border_band, psnr, smooth_clip  # noqa: E402

RSS_MARGIN = 0.10  # peak RSS may exceed the budget by this share (the bar)
SEAM_BAR_DB, EAGER_BAR = 40.0, 1.5


def export_bundle(tmp: Path, vae_config: dict) -> Path:
    import models
    from models.checkpoint import init_random_

    sr, vae, out = tmp / "sr.safetensors", tmp / "vae.safetensors", tmp / "bundle"
    models.save_model(init_random_(models.build_model("tiny", codec="wan2.1", patch=2, scale=2), seed=3), sr)
    models.save_vae(models.build_vae("wan2.1", **vae_config), vae)
    started = time.perf_counter()
    argv = [sys.executable, "-m", "gvrcli", "export", "--weights", str(sr), "--vae", str(vae), "--target", "onnx", "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise SystemExit(f"gvr export failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    print(f"export: {done.stdout.strip().splitlines()[-1]}  [{time.perf_counter() - started:.0f} s]", flush=True)
    return out


def lr_clip(tmp: Path, frames: int, out_w: int, out_h: int) -> Path:
    w, h = out_w // 2, out_h // 2
    return write_video(tmp / f"lr_{w}x{h}.mp4", content=smooth_clip(frames, h, w).transpose(1, 2, 3, 0), fps=24, options={"crf": "12", "preset": "veryfast"})


def cascade_run(clip: Path, out: Path, bundle: Path, *extra: str) -> dict:
    started = time.perf_counter()
    events, rss, _ = run_gvr(["upscale", str(clip), str(out), "--model", str(bundle), "--json", "--overwrite", *extra])
    wall = time.perf_counter() - started
    return {**next(e for e in events if e.get("event") == "file"), "wall": wall, "rss": rss}


def stages(run: dict) -> str:
    v = run.get("vae", {})
    parts = {"decode LR": v.get("decode_video_s", 0), "VAE encode": v.get("encode_s", 0), "denoiser": run["model_seconds"],
             "VAE decode": v.get("decode_s", 0), "encode out": v.get("encode_video_s", 0)}
    vae = v.get("encode_s", 0) + v.get("decode_s", 0)
    text = ", ".join(f"{k} {s:.1f} s" for k, s in parts.items())
    return f"{text}; VAE share {100 * vae / max(run['seconds'], 1e-9):.0f}% of the file's {run['seconds']:.1f} s (spill I/O {v.get('spill_s', 0):.1f} s)"


def cascade(tmp: Path, bundle: Path, args) -> None:
    for w, h in args.outputs:
        clip = lr_clip(tmp, args.frames, w, h)
        r = cascade_run(clip, tmp / "out", bundle)
        print(f"cascade {w // 2}x{h // 2} -> {w}x{h}, {args.frames} frames, default budget: {r['frames']} frames, "
              f"wall {r['wall']:.1f} s ({r['wall'] / max(r['frames'], 1):.1f} s/frame), peak {r['rss']:.0f} MiB", flush=True)
        print(f"  stages: {stages(r)}", flush=True)
        print(f"  plan: {r.get('vae', {}).get('plan')}", flush=True)


def budget(tmp: Path, bundle: Path, args) -> dict:
    w, h = args.outputs[-1]
    clip = lr_clip(tmp, args.frames, w, h)
    extra = ("--backend", args.backend) if args.backend else ()
    r = cascade_run(clip, tmp / "out-budget", bundle, "--memory-budget", str(args.budget), *extra)
    bar = args.budget * (1 + RSS_MARGIN)
    ok = r["frames"] == args.frames and r["rss"] <= bar
    print(f"budget {args.budget} MiB at {w}x{h} ({args.backend or 'default backend'}): {r['frames']}/{args.frames} frames, peak {r['rss']:.0f} MiB (bar {bar:.0f}), "
          f"wall {r['wall']:.1f} s -> {'PASS' if ok else 'FAIL'}", flush=True)
    print(f"  stages: {stages(r)}\n  plan: {r['vae']['plan']}", flush=True)
    for warning in r.get("warnings", []):
        print(f"  warning: {warning}")
    return r


def load(bundle: Path, backend: str, precision: str = "fp32"):
    from gvrcli.inference.backends import make_backend
    from gvrcli.inference.modelfile import read_manifest, resolve_model_path
    from gvrcli.inference.vae import read_vae

    main = resolve_model_path(bundle)
    m = read_manifest(main)
    return make_backend(main, backend, manifest=m, precision=precision).load(m), read_vae(main, m)


def run_vae(loaded, x: np.ndarray, plans=(None, None)) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(latents (C, T', h, w), decoded (3, T, H, W), encode s, decode s) through the bundle's graphs."""
    from gvrcli.inference.vae import ChunkedDecoder, ChunkedEncoder

    started = time.perf_counter()
    enc = ChunkedEncoder(*loaded, plans[0])
    lat = [z for t in range(x.shape[1]) for z in enc.push(x[:, t])] + enc.finish()
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    dec = ChunkedDecoder(*loaded, plans[1])
    frames = [f for z in lat for f in dec.push(z)] + dec.finish()
    return np.stack(lat, axis=1), np.stack(frames, axis=1), encode_s, time.perf_counter() - started


def decode_only(loaded, lat: np.ndarray, plan) -> np.ndarray:
    from gvrcli.inference.vae import ChunkedDecoder

    dec = ChunkedDecoder(*loaded, plan)
    return np.stack([f for k in range(lat.shape[1]) for f in dec.push(lat[:, k])] + dec.finish(), axis=1)


def seam(bundle: Path, args, decode_plan: dict | None) -> None:
    from gvrcli.inference.tiling import window_starts
    from gvrcli.inference.vae_plan import DEFAULT_OVERLAP, RolePlan

    w, h = args.seam_size
    loaded = load(bundle, "ort-cpu")
    x = smooth_clip(args.frames, h, w, seed=2)
    lat, one, _, _ = run_vae(loaded, x)
    cells = lat.shape[-2:]
    if decode_plan and decode_plan["tiled"]:
        tile, ov = (decode_plan["tile"][1] // 8, decode_plan["tile"][0] // 8), decode_plan["overlap"] // 8
    else:  # the budget run did not tile: half the frame each way
        ov = DEFAULT_OVERLAP
        tile = ((cells[0] + ov + 1) // 2, (cells[1] + ov + 1) // 2)
    tile = (min(tile[0], cells[0]), min(tile[1], cells[1]))
    ys, xs = window_starts(cells[0], tile[0], ov), window_starts(cells[1], tile[1], ov)
    plan = RolePlan("vae_decoder", tile, ov, (len(ys), len(xs)), False, 0.0, 0.0)
    tiled = decode_only(loaded, lat, plan)
    band = border_band(h, w, [8 * y for y in ys], [8 * x for x in xs], (8 * tile[0], 8 * tile[1]), 8 * ov)
    overall, at_seams = psnr(tiled, one), psnr(tiled, one, band)
    print(f"seam {w}x{h}, {args.frames} frames: {plan.grid[0]}x{plan.grid[1]} tiles of {8 * tile[1]}x{8 * tile[0]} px, overlap {8 * ov} px: "
          f"PSNR tiled vs one piece {overall:.2f} dB overall, {at_seams:.2f} dB within {8 * ov} px of a tile border, "
          f"max abs {np.abs(tiled - one).max():.4f} -> {'PASS' if overall >= SEAM_BAR_DB else 'FAIL'} (>= {SEAM_BAR_DB:.0f} dB)", flush=True)


def eager_vae(vae, x: np.ndarray, lat: np.ndarray, bf16: bool) -> tuple[float, float, np.ndarray]:
    """(encode s, decode s, decoded (3, T, H, W) in [0, 1]) through eager diffusers, fp32 or under
    CPU autocast to bf16; the decode takes the runtime's latents, de-normalised as diffusers wants."""
    import contextlib

    import torch

    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.inference_mode(), cast:
        started = time.perf_counter()
        vae.encode(torch.from_numpy(x)[None] * 2 - 1).latent_dist.mode()
        enc_s = time.perf_counter() - started
        started = time.perf_counter()
        out = vae.decode(torch.from_numpy(lat)[None] * std + mean).sample
        dec_s = time.perf_counter() - started
    return enc_s, dec_s, ((out[0].float().numpy() + 1) / 2).clip(0, 1)


def vae_gflop(vae, x: np.ndarray, lat: np.ndarray) -> tuple[float, float]:
    """The encode's and the decode's GFLOP (convolutions and matmuls, torch's FlopCounterMode);
    it also warms eager diffusers up at the measured size."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counts = []
    with torch.inference_mode():
        for run in (lambda: vae.encode(torch.from_numpy(x)[None] * 2 - 1), lambda: vae.decode(torch.from_numpy(lat)[None])):
            with FlopCounterMode(display=False) as counter:
                run()
            counts.append(counter.get_total_flops() / 1e9)
    return counts[0], counts[1]


def eager(bundle: Path, args, vae_config: dict) -> None:
    """The VAE stages through the bundle's graphs and through eager diffusers on the same clip and
    latents, whole-stage seconds; each run's GFLOP/s against this machine's sgemm peak, which bounds
    any fp32 runtime; bf16 on OpenVINO (``--precision bf16``) and eager bf16 beside them where the
    CPU computes bf16, with the decode's PSNR against eager fp32's."""
    import torch

    import models
    from benchmarks.bench_cpu import sgemm_peak
    from gvrbase.errors import first_line
    from gvrcli.errors import GvrError

    w, h = args.vae_size
    x = smooth_clip(args.frames, h, w, seed=3)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    times, frames, lats = {}, {}, {}
    for backend, precision in (("ort-cpu", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")):
        try:
            lat_, frames_, enc_s, dec_s = run_vae(load(bundle, backend, precision), x)
        except GvrError as e:  # bf16 where the CPU has no bf16: said, not measured
            print(f"  {backend} {precision}: not run ({first_line(e)})", flush=True)
            continue
        times[f"{backend} {precision}"], frames[f"{backend} {precision}"], lats[precision] = (enc_s, dec_s), frames_, lat_
    lat = lats["fp32"]  # every decode below takes the fp32 runtime's latents
    vae = models.build_vae("wan2.1", **vae_config)  # the bundle's weights: same seed, same config
    enc_gflop, dec_gflop = vae_gflop(vae, x, lat)
    for name, bf16 in (("eager fp32", False), ("eager bf16", True)):
        enc_s, dec_s, frames[name] = eager_vae(vae, x, lat, bf16)
        times[name] = (enc_s, dec_s)
    peak = sgemm_peak()
    print(f"VAE stages at {w}x{h}, {args.frames} frames: encode {enc_gflop:.0f} GFLOP, decode {dec_gflop:.0f} GFLOP; "
          f"sgemm peak {peak:.0f} GFLOP/s (numpy, fp32)", flush=True)
    for name, (e, d) in times.items():
        rate = (enc_gflop + dec_gflop) / (e + d)
        quality = "" if name == "eager fp32" else f"   decode vs eager fp32 {psnr(frames[name], frames['eager fp32']):.1f} dB"
        print(f"  {name:15s} encode {e:6.1f} s  decode {d:6.1f} s  {rate:5.0f} GFLOP/s ({100 * rate / peak:3.0f}% of sgemm){quality}")
    ceiling = peak / ((enc_gflop + dec_gflop) / sum(times["eager fp32"]))
    print(f"  fp32 ceiling: a runtime at the sgemm peak would be {ceiling:.2f}x eager fp32", flush=True)
    fp32_graphs = [n for n in times if n.endswith("fp32") and not n.startswith("eager")]
    for i, stage in enumerate(("encode", "decode")):
        best = min(fp32_graphs, key=lambda b: times[b][i])
        ratio = times["eager fp32"][i] / times[best][i]
        print(f"  {stage}: {best} {ratio:.2f}x eager fp32 -> {'PASS' if ratio >= EAGER_BAR else 'FAIL'} (>= {EAGER_BAR}x)", flush=True)
        if "openvino bf16" in times:
            bf = times["openvino bf16"][i]
            print(f"  {stage}: openvino bf16 {times['eager fp32'][i] / bf:.2f}x eager fp32, {times['eager bf16'][i] / bf:.2f}x eager bf16", flush=True)


def size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    if w % 16 or h % 16:
        raise argparse.ArgumentTypeError(f"{text}: output sizes must be multiples of 16 (8-pixel VAE cells at x2)")
    return w, h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke test: tiny VAE, tiny sizes")
    ap.add_argument("--bundle", type=Path, help="reuse an exported bundle (its VAE config must match --quick or not)")
    ap.add_argument("--keep", type=Path, help="copy the exported bundle here")
    ap.add_argument("--outputs", help="output sizes WxH, comma-separated (default 960x480,1440x720)")
    ap.add_argument("--frames", type=int, help="frames per clip (default 5 = 2 latent frames)")
    ap.add_argument("--budget", type=int, help="--memory-budget MiB of the budget run (default 3000)")
    ap.add_argument("--seam-size", type=size, help="output WxH of the seam measurement (default 512x320)")
    ap.add_argument("--vae-size", type=size, help="WxH of the eager comparison (default 320x192)")
    ap.add_argument("--only", default="cascade,budget,seam,eager")
    ap.add_argument("--backend", help="gvr --backend of the budget run (default: gvr's own choice)")
    args = ap.parse_args()
    q = args.quick
    args.outputs = [size(s) for s in (args.outputs or ("256x128,384x192" if q else "960x480,1440x720")).split(",")]
    args.frames = args.frames or 5
    args.budget = args.budget if args.budget is not None else (1 if q else 3000)
    args.seam_size = args.seam_size or ((256, 128) if q else (512, 320))
    args.vae_size = args.vae_size or ((256, 128) if q else (320, 192))
    vae_config = dict(base_dim=16, num_res_blocks=1) if q else {}
    only = set(args.only.split(","))
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="gvr-bench-cascade-real-") as tmp:
        tmp = Path(tmp)
        bundle = args.bundle or export_bundle(tmp, vae_config)
        if args.keep and not args.bundle:
            shutil.copytree(bundle, args.keep)
        started = time.perf_counter()
        if "cascade" in only:
            cascade(tmp, bundle, args)
        plan = budget(tmp, bundle, args)["vae"]["decode"] if "budget" in only else None
        if "seam" in only:
            seam(bundle, args, plan)
        if "eager" in only:
            eager(bundle, args, vae_config)
        print(f"done in {time.perf_counter() - started:.0f} s; load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
