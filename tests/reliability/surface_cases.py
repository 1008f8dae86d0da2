"""Hostile input on the newer surfaces (issue #23): latent inputs, sidecars, the shared compiled-model
cache, full disks, forged bundles, option ranges. Declared like ``hostile_cases.HOSTILE`` (each
case builds its scene under ``base``, runs the real CLI, returns the problems it saw) and run by
``test_hostile_surfaces.py`` and ``benchmarks/reliability_report.py``.

Common to all: inputs byte-identical and nothing outside OUTPUT_DIR touched (``snapshot``), no
traceback, the documented exit code, and with ``--json`` a summary carrying it (``judge_run``).

Cases that need a latent-cascade bundle run on ``tests.fake_model.build_fake_bundle`` with
``--dry-run``: its files pass every check made before a model loads (which is where these
inputs are refused), but it cannot upscale; exporting a real bundle takes minutes.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from gvr_harness import Run, cli_env, gvr, kill_group, leftovers, outputs, parse_events, start_gvr
from hostile_cases import STALL, Hostile, _error_names, diff, judge_run, snapshot, statuses, upscale
from media_cases import write_video

from tests.fake_model import build_fake_bundle, build_fake_onnx, fake_manifest


def _latents(path: Path, shape=(16, 3, 4, 4), dtype=np.float32, fps="24") -> Path:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"latents": np.zeros(shape, dtype)}, str(path), metadata={"fps": fps})
    return path


# ---------------------------------------------------------------------------------------------
# 1. A header claiming a length the file cannot hold
# ---------------------------------------------------------------------------------------------


def declared_length_bomb(duration_ms: float):
    """A 3-frame Matroska file whose Segment Duration claims ``duration_ms``: memory must not follow
    the claim (peak RSS within 1.5x a run on the unpatched file), and all three frames come out."""

    def case(base: Path, model: Path) -> list[str]:
        clean = write_video(base / "in" / "clean.mkv", frames=3)
        data = clean.read_bytes()
        at = data.find(b"\x44\x89\x88")  # Duration (EBML 0x4489), an 8-byte float
        if at < 0:
            return ["the muxer wrote no 8-byte Segment Duration to patch"]
        bomb = base / "in2" / "bomb.mkv"
        bomb.parent.mkdir()
        bomb.write_bytes(data[: at + 3] + struct.pack(">d", duration_ms) + data[at + 11 :])
        before = snapshot(base, base / "out")
        normal = upscale(clean, base / "out" / "n", "--model", model)
        run = upscale(bomb, base / "out" / "b", "--model", model)
        problems = judge_run(normal, (0,)) + judge_run(run, (0,)) + diff(before, snapshot(base, base / "out"))
        frames = [e.get("frames") for e in run.files("done")]
        if frames != [3]:
            problems.append(f"expected one file done with 3 frames: {statuses(run)} {frames}")
        peak, ref = run.summary.get("peak_rss_mib", 0), normal.summary.get("peak_rss_mib", 0)
        if not ref or peak > 1.5 * ref:
            problems.append(f"peak RSS {peak} MiB, a normal run of the clip {ref} MiB (allowed 1.5x)")
        return problems

    return case


# ---------------------------------------------------------------------------------------------
# 2. A FIFO in the shared compiled-model cache; SIGTERM and stalls during model load
# ---------------------------------------------------------------------------------------------

# The real CLI with the cache looked at before the FIFO appears (the race the look cannot close):
# the load blocks inside OpenVINO, so the watchdog and the signal handling must end it.
_LOOK_MISSES = [sys.executable, "-c", """
import sys
import gvrcli.inference.openvino_backend as openvino_backend
openvino_backend.irregular_entry = lambda folder: ""
from gvrcli.cli import main
sys.argv = ["gvr", *sys.argv[1:]]
main()
"""]


def _fifo_cache(base: Path, model: Path) -> tuple[Path, dict, list[str]]:
    """A cache folder filled by one run, then each blob replaced by a FIFO of its name."""
    cache = base / "cache"
    env = cli_env(GVR_OV_CACHE=str(cache))
    clip = write_video(base / "in" / "clip.mp4", frames=2)
    warm = upscale(clip, base / "warm", "--model", model, "--backend", "openvino", env=env)
    blobs = sorted(cache.glob("*.blob"))
    if warm.returncode or not blobs:
        return cache, env, [f"the first run left no blob in the cache (exit {warm.returncode})"]
    for blob in blobs:
        blob.unlink()
        os.mkfifo(blob)
    return cache, env, []


def fifo_in_compiled_cache(base: Path, model: Path) -> list[str]:
    cache, env, problems = _fifo_cache(base, model)
    if problems:
        return problems
    clip, out = base / "in" / "clip.mp4", base / "out"
    before = snapshot(base, out)
    run = upscale(clip, out, "--model", model, "--backend", "openvino", env=env)
    problems = judge_run(run, (0,), deadline=STALL + 30) + diff(before, snapshot(base, out))
    if statuses(run) != {"clip.mp4": ["done"]}:
        problems.append(f"got {statuses(run)}")
    if "cache not used" not in run.stderr:
        problems.append(f"no line saying the cache is not used: {run.stderr[-300:]!r}")
    return problems


def fifo_appears_after_the_look(base: Path, model: Path) -> list[str]:
    """The load blocks: a stall is one line and exit 75 within the stall timeout; SIGTERM is 143
    with a JSON summary."""
    cache, env, problems = _fifo_cache(base, model)
    if problems:
        return problems
    clip = base / "in" / "clip.mp4"
    before = snapshot(base, base / "out")
    run = gvr("upscale", clip, base / "out" / "a", "--model", model, "--backend", "openvino", "--json",
              "--stall-timeout", 3, env=env, prefix=_LOOK_MISSES, timeout=60)
    problems += judge_run(run, (75,), deadline=3 + 30)
    if not any("loading stalled" in x for x in run.error_lines()):
        problems.append(f"no one-line stall error: {run.stderr[-300:]!r}")
    proc = start_gvr("upscale", clip, base / "out" / "b", "--model", model, "--backend", "openvino", "--json",
                     "--stall-timeout", 600, env=env, prefix=_LOOK_MISSES)
    time.sleep(8)  # imports, the manifest, then into the blocked load
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        stdout, stderr = proc.communicate()
    term = Run(proc.args, proc.returncode, stdout, stderr, time.monotonic() - t0, False, parse_events(stdout))
    problems += [f"SIGTERM: {p}" for p in judge_run(term, (143,), deadline=30)]
    return problems + diff(before, snapshot(base, base / "out"))


# ---------------------------------------------------------------------------------------------
# 3, 4, 8, 10. Latent inputs a walk finds; every file a job writes, checked for collisions
# ---------------------------------------------------------------------------------------------


def unusable_latents_in_a_walk(base: Path, model: Path) -> list[str]:
    bundle = build_fake_bundle(base / "bundle").parent
    src = base / "in"
    bad = {
        "channels": _latents(src / "channels.safetensors", shape=(8, 3, 4, 4)),
        "fps": _latents(src / "fps0.safetensors", fps="0"),
        "dtype": _latents(src / "int.safetensors", dtype=np.int32),
        "max-pixels": _latents(src / "sub" / "big.safetensors", shape=(16, 3, 40, 40)),
        "fps 1e-300": _latents(src / "tiny-fps.safetensors", fps="1e-300"),  # item 10
    }
    ok = _latents(src / "ok.safetensors")
    before = snapshot(base, base / "out")
    run, problems = _planned_only(base, before, [ok], "--model", bundle, "--max-pixels", 10000)
    words = {"channels": "channels", "fps": "fps", "dtype": "dtype", "max-pixels": "max-pixels", "fps 1e-300": "fps"}
    for what, path in bad.items():
        problems += [f"{what}: {p}" for p in _error_names(run, path, words[what])]
    if "Error" in run.stderr.replace("error:", ""):
        problems.append(f"a raw exception in the errors: {run.stderr[-300:]!r}")
    return problems


def _planned_only(base: Path, before: dict, expected: list[Path], *args) -> tuple[Run, list[str]]:
    """``gvr upscale base/in base/out ARGS --dry-run``: exit 1, nothing touched, only ``expected`` planned."""
    run = upscale(base / "in", base / "out", *args, "--dry-run")
    problems = judge_run(run, (1,)) + diff(before, snapshot(base, base / "out"))
    planned = [e["source"] for e in run.events if e.get("event") == "planned"]
    if planned != [str(p) for p in expected]:
        problems.append(f"planned {planned}, expected {[p.name for p in expected]}")
    return run, problems


def latent_loses_a_collision(base: Path, model: Path) -> list[str]:
    bundle = build_fake_bundle(base / "bundle").parent
    src = base / "in"
    video = write_video(src / "l.mkv", frames=2)
    latent = _latents(src / "l.safetensors")  # also -> l.mkv
    before = snapshot(base, base / "out")
    run, problems = _planned_only(base, before, [video], "--model", bundle)
    problems += _error_names(run, latent, "collide")
    line = next((x for x in run.error_lines() if str(latent) in x), "")
    if str(video) not in line:
        problems.append(f"the collision does not name both files: {line!r}")
    return problems


def beside_files_collide_with_a_folder(base: Path, model: Path) -> list[str]:
    """``--sidecar``/``--save-latents`` targets that an input folder of that name also needs: the
    same input is refused at planning in every shard, naming both files."""
    src = base / "in"
    write_video(src / "c.mp4", frames=2)
    loser = write_video(src / "c.mp4.gvr.json" / "d.mp4", frames=2)  # OUTPUT/c.mp4.gvr.json is c's sidecar
    before = snapshot(base, base / "out")
    runs = [upscale(src, base / "out", "--model", model, "--sidecar", "--shard", f"{i}/2") for i in range(2)]
    problems = [p for r in runs for p in judge_run(r, (0, 1))] + diff(before, snapshot(base, base / "out"))
    failed = [(e["source"], e["reason"]) for r in runs for e in r.files("failed")]
    if [s for s, _ in failed] != [str(loser)] or "sidecar" not in failed[0][1] or str(src / "c.mp4") not in failed[0][1]:
        problems.append(f"expected only d.mp4 refused, naming c.mp4's sidecar: {failed}")
    if sorted(p.name for p in outputs(base / "out")) != ["c.mp4", "c.mp4.gvr.json"]:
        problems.append(f"outputs {[p.name for p in outputs(base / 'out')]}")
    # --save-latents, with a bundle (planned only: the fake bundle cannot run)
    bundle = build_fake_bundle(base / "bundle").parent
    lat = base / "lat"
    write_video(lat / "a.mp4", frames=2)
    loser = write_video(lat / "a.mp4.latents.safetensors" / "b.mp4", frames=2)
    run = upscale(lat, base / "out2", "--model", bundle, "--save-latents", "--dry-run")
    problems += judge_run(run, (1,)) + _error_names(run, loser, "latents file")
    return problems


# ---------------------------------------------------------------------------------------------
# 5. A full disk: no lock left, the rerun starts at once
# ---------------------------------------------------------------------------------------------


def disk_full_leaves_no_lock(base: Path, model: Path) -> list[str]:
    """OUTPUT_DIR on a 1 MiB tmpfs filled to the last block (mounting needs root: otherwise the
    case checks nothing and says so in the test, which skips; the in-process test covers it)."""
    src, mnt = base / "in", base / "disk"
    clips = [write_video(src / f"{c}.mp4", frames=2) for c in "ab"]
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        return ["SKIP: cannot mount a tmpfs here (not root?)"]
    try:
        out = mnt / "out"
        out.mkdir()
        filler = mnt / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        before = snapshot(base, mnt)
        run = upscale(src, out, "--model", model)
        problems = judge_run(run, (1,)) + diff(before, snapshot(base, mnt))
        if sorted(statuses(run).items()) != [(c.name, ["failed"]) for c in clips]:
            problems.append(f"expected both failed on the full disk: {statuses(run)}")
        if leftovers(out):
            problems.append(f"left on the full disk: {leftovers(out)}")
        filler.unlink()
        again = upscale(src, out, "--model", model)
        problems += [f"rerun: {p}" for p in judge_run(again, (0,), deadline=30)]
        if "waiting for other workers" in again.stderr:
            problems.append("the rerun waited for a lock the full disk left")
        return problems
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


# ---------------------------------------------------------------------------------------------
# 7, 12. Prompt sidecars: links out of the tree, dangling links, prompts over the cap
# ---------------------------------------------------------------------------------------------


def _text_manifest():
    from models.manifest import ModelManifest

    fields = fake_manifest(text_dim=4, text_tokens=3, config={"preset": "fake", "dim": 8})
    fields["graphs"] = {r: {"file": f"{r}.onnx", "sha256": "0" * 64} for r in ("condition", "text")}
    return ModelManifest.from_json(json.dumps(fields))


def sidecar_links(base: Path, model: Path) -> list[str]:
    """The rule the walk applies to a video link applies to the prompt read beside a video: a link
    out of the input tree is not read (that video fails, one line), a dangling link is an error,
    not silently "no prompt"; ``--follow-symlinks`` (tree None) reads it."""
    from safetensors.numpy import save_file

    from gvrcli.errors import InputError
    from gvrcli.inference.text import find_prompt

    tree, elsewhere = base / "in", base / "elsewhere"
    tree.mkdir()
    elsewhere.mkdir()
    save_file({"prompt_embeds": np.ones((2, 4), np.float32)}, str(elsewhere / "p.safetensors"))
    (tree / "out.text.safetensors").symlink_to(elsewhere / "p.safetensors")
    (tree / "gone.text.safetensors").symlink_to(elsewhere / "missing.safetensors")
    m, problems = _text_manifest(), []
    before = snapshot(base)
    for name, tree_arg, word in (("out.mp4", tree, "out of the input tree"), ("gone.mp4", tree, "dangling")):
        try:
            find_prompt(tree / name, m, tree_arg)
            problems.append(f"{name}: the sidecar link was read")
        except InputError as e:
            if word not in str(e) or str(tree) not in str(e) or "\n" in str(e):
                problems.append(f"{name}: {e}")
    if find_prompt(tree / "out.mp4", m, None) is None:
        problems.append("--follow-symlinks: the sidecar link was not read")
    return problems + diff(before, snapshot(base))


def prompt_over_the_cap(base: Path, model: Path) -> list[str]:
    from safetensors.numpy import save_file

    from gvrcli.errors import InputError
    from gvrcli.inference.text import MAX_PROMPT_TOKENS, find_prompt

    base.joinpath("in").mkdir()
    save_file({"prompt_embeds": np.zeros((70_000, 4), np.float16)}, str(base / "in" / "v.text.safetensors"))
    try:
        find_prompt(base / "in" / "v.mp4", _text_manifest(), base / "in")
        return ["a 70,000-token prompt was accepted"]
    except InputError as e:
        text = str(e)
    problems = []
    if str(MAX_PROMPT_TOKENS) not in text or "cut to the model's 3" not in text or "70000" not in text:
        problems.append(f"the message hides the cap or contradicts the cut: {text!r}")
    return problems


# ---------------------------------------------------------------------------------------------
# 9, 11 and the minor list: options, forged bundles and manifests, SIGTERM'd export
# ---------------------------------------------------------------------------------------------


def refused_options(base: Path, model: Path) -> list[str]:
    clip = write_video(base / "in" / "clip.mp4", frames=2)
    problems = []
    cases = [
        (["upscale", "--stall-timeout", "1e10"], "--stall-timeout"),
        (["degrade", "--stall-timeout", "1e10"], "--stall-timeout"),
        (["degrade", "--seed", "-1"], "--seed"),
        (["upscale", "--device", "bogus"], "--device"),
        (["upscale", "--shard", "1_0/20"], "--shard"),
        (["upscale", "--shard", "\u0661/2"], "--shard"),  # ARABIC-INDIC DIGIT ONE
    ]
    before = snapshot(base)
    for args, word in cases:
        cmd, *rest = args
        extra = ["--model", model] if cmd == "upscale" else []
        run = gvr(cmd, clip, base / "out", *extra, *rest, "--json", timeout=60)
        problems += [f"{' '.join(args)}: {p}" for p in judge_run(run, (2,))]
        if word not in run.stderr or len(run.error_lines()) != 1:
            problems.append(f"{' '.join(args)}: no one line naming {word}: {run.stderr[-200:]!r}")
    return problems + diff(before, snapshot(base))


def forged_bundles(base: Path, model: Path) -> list[str]:
    """Forged but rehashed VAE manifests: exit 2, one line naming the model, before any input."""
    clip = write_video(base / "in" / "clip.mp4", frames=2)
    forgeries = {
        "unknown-input": lambda role, m: {**m, "input": "no_such_input"} if role == "vae_decoder" else m,
        "deep-json": lambda role, m: "[" * 50_000 + "]" * 50_000 if role == "vae_encoder" else m,
        "cache-not-a-list": lambda role, m: {**m, "caches": 17} if role == "vae_encoder" else m,
    }
    bundles = {name: build_fake_bundle(base / name, forge).parent for name, forge in forgeries.items()}
    fp8 = build_fake_onnx(base / "fp8" / "m.onnx", manifest=fake_manifest(precision="fp8"))
    problems = []
    before = snapshot(base)
    for name, bundle in bundles.items():
        run = upscale(clip, base / f"out-{name}", "--model", bundle)
        problems += [f"{name}: {p}" for p in judge_run(run, (2,))]
        if len(run.error_lines()) != 1 or str(bundle) not in run.error_lines()[0]:
            problems.append(f"{name}: not one line naming the model: {run.stderr[-300:]!r}")
    run = upscale(clip, base / "out-fp8", "--model", fp8)
    problems += [f"fp8: {p}" for p in judge_run(run, (2,))]
    if "--precision" in run.stderr or "fp8" not in run.stderr:
        problems.append(f"fp8: the error blames --precision or does not name the manifest's value: {run.stderr[-200:]!r}")
    return problems + diff(before, snapshot(base))


def sigterm_during_export(base: Path, model: Path) -> list[str]:
    """``gvr export`` stopped while it writes: 143, and no ``.NAME.*.part/`` beside ``--out``."""
    out = base / "x" / "m.onnx"
    out.parent.mkdir(parents=True)
    proc = start_gvr("export", "--target", "onnx", "--out", out)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any(p.name.endswith(".part") for p in out.parent.iterdir()):
        if proc.poll() is not None:
            return [f"export ended (rc {proc.returncode}) before it staged anything: {proc.stderr.read()[-300:]!r}"]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    try:
        _, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        return ["SIGTERM did not end the export within 60 s"]
    problems = [] if proc.returncode == 143 else [f"exit {proc.returncode}, expected 143: {stderr[-200:]!r}"]
    left = sorted(p.name for p in out.parent.iterdir())
    if left:
        problems.append(f"left beside --out: {left}")
    if "Traceback" in stderr:
        problems.append("traceback")
    return problems


SURFACES = [
    Hostile("declared-length-bomb-1e11-ms", "23.1", "exit 0, 3 frames, RSS <= 1.5x", declared_length_bomb(1e11)),
    Hostile("declared-length-bomb-1e15-ms", "23.1", "exit 0, 3 frames, RSS <= 1.5x", declared_length_bomb(1e15)),
    Hostile("fifo-in-compiled-model-cache", "23.2", "exit 0, cache not used", fifo_in_compiled_cache),
    Hostile("fifo-in-cache-after-the-look", "23.2", "75 on stall, 143 + summary on SIGTERM", fifo_appears_after_the_look, slow=True),
    Hostile("unusable-latents-in-a-walk", "23.3, 23.10", "exit 1, one line each", unusable_latents_in_a_walk),
    Hostile("latent-loses-output-collision", "23.4", "exit 1, both named", latent_loses_a_collision),
    Hostile("disk-full-leaves-no-lock", "23.5", "exit 1, no lock; rerun at once", disk_full_leaves_no_lock),
    Hostile("prompt-sidecar-links", "23.7", "link out / dangling: one line", sidecar_links),
    Hostile("beside-files-collide-with-a-folder", "23.8", "refused at planning, every shard", beside_files_collide_with_a_folder),
    Hostile("out-of-range-options", "23.9, minor", "exit 2, one line", refused_options),
    Hostile("forged-rehashed-vae-manifests", "23.11, minor", "exit 2, one line", forged_bundles),
    Hostile("prompt-over-the-token-cap", "23.12", "one line naming 65536", prompt_over_the_cap),
    Hostile("sigterm-during-export", "minor", "exit 143, no .part", sigterm_during_export, slow=True),
]
