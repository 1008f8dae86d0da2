"""Benchmark the latent cascade (``gvr upscale --model BUNDLE/``): flat memory with length, and the
time the latent path saves over decode + re-encode.

    python benchmarks/bench_cascade.py [--size 128x96] [--frames 17,77] [--long-factor 5]
                                       [--latent-frames 85] [--repeats 1] [--bundle DIR]

Needs the ``export`` extra (torch, diffusers) to make the bundle; about 7.5 minutes on a loaded
2-core CPU with the defaults (3 of them the export; ``--bundle DIR`` reuses an exported bundle,
and ``--keep DIR`` keeps the one this run exports). Not a test: numbers depend on the machine.

What it does and prints, after a machine line (CPU model, cores, load average):

1. Exports one ONNX bundle (``gvr export --vae --target onnx``) of a random-weight ``tiny``
   SimpleGVR in the Wan2.1 latent space (``patch=2``, x2) and a small Wan2.1-architecture VAE
   (``base_dim=16, num_res_blocks=1``), and uses it for everything below.
2. **Memory vs length**: for each N of ``--frames``, the peak RSS of a whole ``gvr upscale --json``
   process (a fresh child each run; ``bench_upscale.run_gvr``: the child's VmHWM) on a clip of N
   frames and of ``--long-factor`` x N frames, both at ``--size``; the ratio and PASS/FAIL against
   +-10%. The runtime holds one denoiser chunk (4 temporal units = 20 latent frames = 77 frames for
   ``tiny``) plus the VAE's fixed caches, so memory is flat once the short clip fills one chunk;
   a shorter N is printed too, marked as below one chunk (its peak still grows with the chunk).
3. **Latent path vs decode + re-encode**, for the same content: a clip of ``--latent-frames``
   frames VAE-encoded once (in this process, with the bundle's encoder graphs) to an LR latent
   (C, T, h, w) saved as a latent file. (a) ``gvr upscale LATENTS.safetensors``: the paper's path,
   no LR decode, no VAE encode. (b) the route of a user without latent input: VAE-decode the same
   latent to an LR video (the bundle's decoder graphs, ``gvrcli.inference.vae.ChunkedDecoder``, on
   the runtime ``gvr`` picks, then written at crf 18), and ``gvr upscale`` that video (which decodes
   it and VAE-encodes it again). Prints both wall times and the saving (s, %), and where each run's
   time goes: process start and model load (wall - the file's seconds), the denoiser's graphs
   (``model_seconds`` of the JSON file event), and the rest of the file (VAE graphs, media).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: the repository's packages and tests.clips

from benchmarks.bench_upscale import _texture, make_clip, run_gvr  # noqa: E402
from tests.clips import write_video  # noqa: E402

SR = dict(codec="wan2.1", patch=2, scale=2)  # the tiny preset in the Wan2.1 latent space
VAE = dict(base_dim=16, num_res_blocks=1)
TOLERANCE = 0.10  # peak RSS from 1x to long-factor x the length


def machine_line() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), platform.processor())
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"machine: {cpu}, {usable} usable cores of {os.cpu_count()}, load average {load} (1/5/15 min)"


def export_bundle(tmp: Path) -> Path:
    """Random weights saved the way the tests save them, then ``gvr export --vae`` into ``tmp/bundle``."""
    import models
    from models.checkpoint import init_random_

    sr, vae, out = tmp / "sr.safetensors", tmp / "vae.safetensors", tmp / "bundle"
    models.save_model(init_random_(models.build_model("tiny", **SR), seed=3), sr)
    models.save_vae(models.build_vae("wan2.1", **VAE), vae)
    started = time.perf_counter()
    argv = [sys.executable, "-m", "gvrcli", "export", "--weights", str(sr), "--vae", str(vae), "--target", "onnx", "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise SystemExit(f"gvr export failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    print(f"export: {done.stdout.strip().splitlines()[-1]}  [{time.perf_counter() - started:.0f} s]")
    return out


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def upscale(source: Path, out: Path, bundle: Path) -> dict:
    """One ``gvr upscale --json`` child: its file event, plus ``wall`` (s) and ``rss`` (peak MiB)."""
    started = time.perf_counter()
    events, rss, _ = run_gvr(["upscale", str(source), str(out), "--model", str(bundle), "--json", "--overwrite"])
    wall = time.perf_counter() - started
    return {**next(e for e in events if e.get("event") == "file"), "wall": wall, "rss": rss}


def breakdown(run: dict) -> str:
    """Where one run's wall time went (the JSON file event's seconds and model seconds)."""
    start = run["wall"] - run["seconds"]
    rest = run["seconds"] - run["model_seconds"]
    return f"start + load {start:.1f} s, denoiser {run['model_seconds']:.1f} s, VAE + media {rest:.1f} s"


def memory(tmp: Path, bundle: Path, args, chunk_frames: int) -> bool:
    """Peak RSS at N and long-factor x N frames for each N; True if every full-chunk N passes."""
    w, h = args.size
    ok = True
    for n in args.frames:
        peaks = {}
        for length in (n, n * args.long_factor):
            clip = make_clip(tmp / "mem" / f"clip{length}.mp4", length, w, h)
            runs = [upscale(clip, tmp / "mem-out", bundle) for _ in range(args.repeats)]
            assert all(r["frames"] == length for r in runs), runs
            peaks[length] = (statistics.median(r["rss"] for r in runs), [round(r["rss"]) for r in runs], runs[0]["wall"])
        (r1, all1, t1), (r5, all5, t5) = peaks[n], peaks[n * args.long_factor]
        ratio = r5 / r1
        passed = abs(ratio - 1) <= TOLERANCE
        full = n >= chunk_frames
        ok &= passed or not full
        note = "" if full else f"  (below one denoiser chunk of {chunk_frames} frames: the pipeline is not full at 1x; not the verdict)"
        print(f"memory {w}x{h}: {n} frames {r1:.0f} MiB (runs {all1}, {t1:.0f} s), {n * args.long_factor} frames "
              f"{r5:.0f} MiB (runs {all5}, {t5:.0f} s): ratio {ratio:.3f} ({100 * (ratio - 1):+.1f}%) -> "
              f"{'PASS' if passed else 'FAIL'} (+-{100 * TOLERANCE:.0f}%){note}")
    return ok


def latent_vs_pixels(tmp: Path, bundle: Path, args) -> None:
    """(a) gvr upscale of a latent file vs (b) VAE decode to an LR video + gvr upscale of it."""
    from safetensors.numpy import save_file

    from gvrcli.inference.backends import make_backend
    from gvrcli.inference.modelfile import read_manifest, resolve_model_path
    from gvrcli.inference.vae import ChunkedDecoder, ChunkedEncoder, read_vae

    w, h = args.size
    main = resolve_model_path(bundle)
    manifest = read_manifest(main)
    backend = make_backend(main, manifest=manifest)  # the runtime gvr upscale picks (auto)
    model, vae = backend.load(manifest), read_vae(main, manifest)

    # The LR latent of one textured clip: what a base model's transformer would hand over.
    started = time.perf_counter()
    enc = ChunkedEncoder(model, vae)
    frames = [np.ascontiguousarray(_texture(i, h, w).transpose(2, 0, 1)) for i in range(args.latent_frames)]
    lat = [z for f in frames for z in enc.push(f)] + enc.finish()
    encode_s = time.perf_counter() - started
    z = np.stack(lat, axis=1)  # (C, T, h/8, w/8)
    latent_file = tmp / "cascade" / "clip.safetensors"
    latent_file.parent.mkdir(parents=True)
    save_file({"latents": z}, str(latent_file), metadata={"fps": "24"})
    expected = 4 * (z.shape[1] - 1) + 1
    print(f"latent: {args.latent_frames} frames {w}x{h} VAE-encoded in this process to {tuple(z.shape)} "
          f"in {encode_s:.1f} s on {model.description} {model.precision}")

    # (b) first half: the LR decode a user without latent input runs before gvr (timed apart from the write).
    started = time.perf_counter()
    dec = ChunkedDecoder(model, vae)
    lr = np.stack([f.transpose(1, 2, 0) for k in range(z.shape[1]) for f in dec.push(z[:, k])])  # (T, h, w, 3)
    decode_s = time.perf_counter() - started
    started = time.perf_counter()
    lr_video = write_video(tmp / "cascade" / "clip.mp4", content=np.clip(lr, 0, 1), fps=24, options={"crf": "18", "preset": "veryfast"})
    write_s = time.perf_counter() - started
    del model, lr

    a = upscale(latent_file, tmp / "cascade-out-a", bundle)
    b = upscale(lr_video, tmp / "cascade-out-b", bundle)
    assert a["frames"] == b["frames"] == expected, (a["frames"], b["frames"], expected)
    pixel = decode_s + write_s + b["wall"]
    saved = pixel - a["wall"]
    print(f"(a) latent path   gvr upscale {latent_file.name} -> {a['frames']} frames {2 * w}x{2 * h}: "
          f"{a['wall']:.1f} s wall ({breakdown(a)}), peak {a['rss']:.0f} MiB")
    print(f"(b) pixel route   VAE decode to LR {decode_s:.1f} s + write LR video {write_s:.1f} s + gvr upscale "
          f"{lr_video.name} {b['wall']:.1f} s ({breakdown(b)}), peak {b['rss']:.0f} MiB = {pixel:.1f} s")
    print(f"saving of the latent path: {saved:.1f} s = {100 * saved / pixel:.1f}% of the pixel route "
          f"(its VAE encode alone, measured above in this process: {encode_s:.1f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="128x96", help="LR clip WxH (multiples of 8)")
    ap.add_argument("--frames", default="17,77", help="short clip lengths N for the memory check (comma-separated)")
    ap.add_argument("--long-factor", type=int, default=5, help="the long clip is this many times N")
    ap.add_argument("--latent-frames", type=int, default=85, help="frames of the clip behind the latent (4n + 1)")
    ap.add_argument("--repeats", type=int, default=1, help="memory runs per clip (the median is reported)")
    ap.add_argument("--bundle", type=Path, help="reuse this exported bundle instead of exporting one")
    ap.add_argument("--keep", type=Path, help="copy the exported bundle here for later --bundle runs")
    ap.add_argument("--only", choices=("memory", "latent"), help="run one of the two measurements")
    args = ap.parse_args()
    args.size = tuple(map(int, args.size.lower().split("x")))
    args.frames = [int(n) for n in args.frames.split(",")]
    if any(s % 8 for s in args.size):
        ap.error("--size: width and height must be multiples of 8 (the VAE's cell)")
    print(machine_line(), flush=True)
    with tempfile.TemporaryDirectory(prefix="gvr-bench-cascade-") as tmp:
        tmp = Path(tmp)
        bundle = args.bundle or export_bundle(tmp)
        if args.keep and not args.bundle:
            shutil.copytree(bundle, args.keep)
        from gvrcli.inference.modelfile import read_manifest, resolve_model_path

        m = read_manifest(resolve_model_path(bundle))
        chunk_frames = 4 * (4 * m.temporal_unit - 1) + 1  # one chunk of 4 temporal units of latent frames, in frames
        print(f"bundle: {bundle.name}, {m.steps} sampler steps, x{m.scale}, chunks of {4 * m.temporal_unit} latent frames ({chunk_frames} frames)", flush=True)
        ok = True
        if args.only != "latent":
            ok = memory(tmp, bundle, args, chunk_frames)
        if args.only != "memory":
            latent_vs_pixels(tmp, bundle, args)
        print(f"machine at the end: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
