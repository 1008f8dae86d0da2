"""GPU check of the ONNX Runtime CUDA path (issues 11, 25), prepared here and run on a lent device.

The lent device machine has no package index, PyTorch 2.11 with the CUDA 13 libraries as pip
packages, the CPU-only onnxruntime, no PyAV/scenedetect, and takes at most 64 MiB of working tree
per call (files left there last only while it stays warm, 30 s idle). So the work is split:

1. here (no GPU): ``python benchmarks/gpu_check.py --prepare .gpu-check`` exports every graph the
   device needs (tiny: the dynamic fp16 and bf16 artefacts as gvr runs them; base at
   ``--base-depth`` blocks: dynamic fp16 and bf16 step graphs *without their weights*, whose
   initializers the device refills with seeded random values of the recorded shapes and dtypes),
   fetches the onnxruntime-gpu wheel of the pinned version for the device's Python (pip download),
   and splits it all into ``call-N`` folders under 60 MiB each, with ``calls.txt`` saying, per
   call, which folder to carry and the command to run (docs/gpu-check.md);
2. there, one ``run`` call per folder: each copies its part to /tmp/gvr-gpu-check (kept while the
   machine is warm); the last one runs ``--device``, which joins and checks the wheel, installs it
   into /tmp/gvr-gpu-check/site, refills the base graphs, and measures, in priority order within
   ``--budget`` seconds:
   a. strict-session placement (gvr's own ``--backend ort-cuda`` loader: every node on the GPU or
      a refusal naming the nodes) of the dynamic tiny fp16 and bf16 artefacts, and of base's;
   b. which Attention kernel ORT ran (lines of its verbose log that mention attention);
   c. base at 1080p output (20 frames, x2) per step: ORT CUDA fp16 and bf16 vs PyTorch eager bf16
      on the same GPU (ms per output frame per step, scaled to 24 blocks and labelled so);
   d. tiny through ``gvr upscale`` on the sample clip, only where PyAV and scenedetect import.
   It exits 75 (retry elsewhere) where no GPU answers, after everything that needs none.

The report is $OUT/gpu_check.json (and the log on stdout).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NO_GPU = 75
FRAMES = 20  # a full temporal chunk (4 units of 5)
HD = (540, 960)  # LR (h, w) of an x2 upscale to 1080p (the pixel codec: latents are pixels)
PART_MIB = 54  # carry per call: the part plus the ~6 MiB working tree stays under 60 MiB
WORK = Path("/tmp/gvr-gpu-check")  # on the device: parts, the joined wheel, its install
DEVICE_PYTHON = "3.12"  # the device image's python3 (KINDS.md)
SEED = 0


def log(*parts) -> None:
    print(*parts, flush=True)


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # Python >= 3.11, as the pinned ORT


# --------------------------------------------------------------------------------------------------
# --prepare (here)
# --------------------------------------------------------------------------------------------------


def network(preset: str, depth: int | None = None):
    import models
    from models.checkpoint import init_random_

    overrides = {"scale": 2} | ({"depth": depth} if depth else {})
    return init_random_(models.build_model(preset, **overrides), seed=SEED).eval()


def strip_weights(path: Path) -> dict:
    """Remove every initializer of 1024+ elements from the graph at ``path`` (in place) and return
    {name: [dims, onnx dtype]}: the device refills them (``refill``). Small ones (shape constants,
    scalars) stay."""
    import numpy as np
    import onnx

    proto = onnx.load(str(path))
    kept, removed = [], {}
    for init in proto.graph.initializer:
        if int(np.prod(init.dims)) >= 1024:
            removed[init.name] = [list(init.dims), init.data_type]
        else:
            kept.append(init)
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(kept)
    # The removed weights become graph inputs for now, so the stripped file is a valid model.
    for name, (dims, dtype) in removed.items():
        proto.graph.input.append(onnx.helper.make_tensor_value_info(name, dtype, dims))
    onnx.save(proto, str(path))
    return removed


def refill(path: Path, weights: dict, out: Path, seed: int = SEED) -> Path:
    """The stripped graph at ``path`` with seeded random initializers (normal, std 0.02: finite
    activations in fp16/bf16) of the recorded shapes and dtypes, written to ``out``."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    rng = np.random.default_rng(seed)
    keep_inputs = [i for i in proto.graph.input if i.name not in weights]
    del proto.graph.input[:]
    proto.graph.input.extend(keep_inputs)
    for name, (dims, dtype) in sorted(weights.items()):
        values = (rng.standard_normal(dims, dtype=np.float32) * 0.02)
        if dtype == onnx.TensorProto.BFLOAT16:  # numpy has no bf16: build the tensor from fp32 bits
            bits = (values.view(np.uint32) >> 16).astype(np.uint16)
            tensor = onnx.helper.make_tensor(name, dtype, dims, bits.tobytes(), raw=True)
        else:
            tensor = numpy_helper.from_array(values.astype(onnx.helper.tensor_dtype_to_np_dtype(dtype)), name)
        proto.graph.initializer.append(tensor)
    onnx.save(proto, str(out), save_as_external_data=proto.ByteSize() > 1_800_000_000)
    return out


def pinned_ort() -> str:
    from export.kernel_coverage import load_table

    return load_table()["onnxruntime"]


def fetch_wheel(dest: Path, version: str) -> Path:
    """The onnxruntime-gpu wheel for the device (CPython 3.12, manylinux x86_64), via pip download."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", DEVICE_PYTHON,
           "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64",
           "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64", "-d", str(dest), f"onnxruntime-gpu=={version}"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return next(dest.glob(f"onnxruntime_gpu-{version}-*.whl"))


def split(path: Path, part_bytes: int) -> list[tuple[str, bytes]]:
    parts, i = [], 0
    with open(path, "rb") as f:
        while chunk := f.read(part_bytes):
            parts.append((f"{path.name}.part{i:02d}", chunk))
            i += 1
    return parts


def prepare(out: Path, *, base_depth: int, wheel: Path | None, part_mib: int, presets=("tiny", "base")) -> dict:
    """Write everything the device needs under ``out`` (call-1 ... call-N) and return the plan."""
    from export import export_model
    from export.targets import build_onnx, network_for, save_onnx
    from models.manifest import STEP

    if out.exists():
        shutil.rmtree(out)
    stage = out / "stage"
    graphs = stage / "graphs"
    graphs.mkdir(parents=True)
    plan: dict = {"onnxruntime": pinned_ort(), "base_depth": base_depth, "graphs": {}, "stripped": {}}
    started = time.perf_counter()
    tiny = next((p for p in presets if p.split(":")[0] == "tiny"), None)  # "tiny:1": one block (tests)
    tiny_depth = int(tiny.split(":")[1]) if tiny and ":" in tiny else None
    for precision in ("fp16", "bf16"):
        if tiny:  # gvr's artefact (step + condition + manifest): the strict loader takes it
            report = export_model("onnx", graphs / f"tiny-{precision}.onnx", model=network("tiny", tiny_depth), precision=precision)
            plan["graphs"][f"tiny {precision}"] = report.main_file.name
            log(f"prepare: tiny {precision} exported ({report.seconds:.0f} s)")
        if "base" in presets:
            path = graphs / f"base{base_depth}-{precision}.step.onnx"
            model = network_for(network("base", base_depth), precision)
            save_onnx(build_onnx(model, STEP, dynamic=True, static_shape=None, opset=23, attention="aligned"), path, None)
            plan["stripped"][path.name] = strip_weights(path)
            plan["graphs"][f"base {precision}"] = path.name
            log(f"prepare: base (depth {base_depth}) {precision} step exported, weights stripped")
    plan["export_seconds"] = round(time.perf_counter() - started, 1)
    files = [(f"graphs/{p.name}", p.read_bytes()) for p in sorted(graphs.iterdir())]
    (stage / "plan.json").write_text(json.dumps(plan))
    files.append(("plan.json", (stage / "plan.json").read_bytes()))
    if wheel is not None:
        plan["wheel"] = {"name": wheel.name, "sha256": sha256(wheel), "bytes": wheel.stat().st_size}
        (stage / "plan.json").write_text(json.dumps(plan))
        files[-1] = ("plan.json", (stage / "plan.json").read_bytes())
        files += [(f"wheel/{name}", data) for name, data in split(wheel, part_mib * 2**20)]
    calls = _pack(out, files, part_mib * 2**20)
    shutil.rmtree(stage)
    plan["calls"] = calls
    _write_instructions(out, calls)
    return plan


def _pack(out: Path, files, limit: int) -> list[dict]:
    """Files into call-N folders of at most ``limit`` bytes each, first fit (the graphs and plan
    share a call with the wheel's short last part): the fewest calls. The device joins the parts
    only in the last call, when every folder has arrived."""
    calls: list[dict] = []
    for name, data in files:
        if len(data) > limit:
            raise SystemExit(f"gpu_check: {name} is {len(data) / 2**20:.0f} MiB, over the {limit / 2**20:.0f} MiB per call")
        call = next((c for c in calls if c["bytes"] + len(data) <= limit), None)
        if call is None:
            call = {"folder": f"call-{len(calls) + 1}", "bytes": 0, "files": []}
            calls.append(call)
        target = out / call["folder"] / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        call["files"].append(name)
        call["bytes"] += len(data)
    return calls


def _write_instructions(out: Path, calls: list[dict]) -> None:
    rel = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out
    lines = []
    for i, call in enumerate(calls, 1):
        copy = f"mkdir -p {WORK} && cp -r {rel}/{call['folder']}/. {WORK}/"
        last = i == len(calls)
        cmd = copy + (f" && PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --device {WORK} --out $OUT" if last else " && ls -la " + str(WORK))
        lines.append(f"call {i}: carry [\"{rel}/{call['folder']}\"] ({call['bytes'] / 2**20:.1f} MiB), timeout_s {540 if last else 120}\n  {cmd}")
    (out / "calls.txt").write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------------
# --device (there)
# --------------------------------------------------------------------------------------------------


def install(work: Path, plan: dict) -> Path | None:
    """Join the wheel's parts, check its sha256, install it into work/site; return the site folder
    (None: no wheel was prepared, the installed onnxruntime is used)."""
    wheel = plan.get("wheel")
    if not wheel:
        return None
    joined = work / wheel["name"]
    parts = sorted((work / "wheel").glob(wheel["name"] + ".part*"))
    with open(joined, "wb") as f:
        for part in parts:
            f.write(part.read_bytes())
    if joined.stat().st_size != wheel["bytes"] or sha256(joined) != wheel["sha256"]:
        raise SystemExit(f"gpu_check: the wheel's {len(parts)} parts do not join into {wheel['name']} (a call's part is missing: run every call, machine warm)")
    site = work / "site"
    python, abi, platforms = joined.name[:-4].split("-")[-3:]
    tags = []  # a CPython wheel: install it for its own tags (the device's 3.12), whatever runs pip
    if python.startswith("cp"):
        tags = ["--only-binary=:all:", "--implementation", "cp", "--python-version", f"{python[2]}.{python[3:]}", "--abi", abi,
                *(x for p in platforms.split(".") for x in ("--platform", p))]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--upgrade",
                    *tags, "--target", str(site), str(joined)], check=True)
    # The CUDA 13 libraries are torch's pip packages (site-packages/nvidia/cu13/lib, nvidia/cudnn/lib):
    # linked beside the new onnxruntime, they sit where `pip install gvr[cuda]` puts them, so gvr's own
    # preload (onnxruntime.preload_dlls) is what finds them, as on a user's machine.
    import importlib.util

    nvidia = importlib.util.find_spec("nvidia")
    if nvidia is not None and nvidia.submodule_search_locations and not (site / "nvidia").exists():
        (site / "nvidia").symlink_to(next(iter(nvidia.submodule_search_locations)), target_is_directory=True)
    return site


def no_gpu_reason() -> str | None:
    """Why nothing can be measured here, or None. The driver first, without importing onnxruntime
    (a dry run elsewhere installs the device's CPython 3.12 build, which this Python cannot import)."""
    from gvrbase.devices import gpu_present

    if not gpu_present():
        return "no NVIDIA driver loads here (or this onnxruntime has no CUDA provider library)"
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return f"this ONNX Runtime ({ort.__version__}, {ort.__file__}) has no CUDA provider"
    return None


def strict_placement(path: Path) -> dict:
    """gvr's own ``--backend ort-cuda`` loader on an artefact: every node on the GPU, or its refusal."""
    from gvrcli.errors import GvrError
    from gvrcli.inference.ort_backend import OrtBackend

    try:
        model = OrtBackend(path, provider="cuda").load()
        return {"ok": True, "description": model.description, "note": model.note}
    except GvrError as e:
        return {"ok": False, "error": str(e)}


def strict_raw(path: Path) -> dict:
    """A strict CUDA session (no CPU fallback) of a bare graph (base: no manifest)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    try:
        ort.InferenceSession(str(path), opts, providers=["CUDAExecutionProvider"])
        return {"ok": True}
    except Exception as e:  # ORT's own types
        return {"ok": False, "error": str(e).splitlines()[0][:400]}


def attention_log(path: Path, feed: dict) -> dict:
    """Run once with ORT's verbose log and keep what it says about attention (the kernel chosen)."""
    import onnxruntime as ort

    from gvrcli.inference.placement import native_stderr

    opts = ort.SessionOptions()
    opts.log_severity_level = 0
    with native_stderr() as read:
        ort.set_default_logger_severity(0)
        session = ort.InferenceSession(str(path), opts, providers=["CUDAExecutionProvider"])
        session.run(None, feed)
        ort.set_default_logger_severity(3)
        text = read()
    lines = [line.split("]", 1)[-1].strip() for line in text.splitlines() if "ttention" in line and "Node(s)" not in line]
    counts = {k: sum(marker in line.lower() for line in lines) for k, marker in (("flash", "flash"), ("memory_efficient", "efficient"), ("unfused", "unfused"))}
    return {"mentions": counts, "lines": list(dict.fromkeys(lines))[:20]}


def ort_time(path: Path, feed: dict, runs: int) -> float:
    """Median ms of one step, every input and the output bound on the GPU (IOBinding)."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CUDAExecutionProvider"])
    binding = session.io_binding()
    for name, value in feed.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value), "cuda", 0))
    z = ort.OrtValue.ortvalue_from_shape_and_type(list(feed["z_t"].shape), np.float32, "cuda", 0)
    binding.bind_ortvalue_output(session.get_outputs()[0].name, z)
    times = []
    for i in range(runs + 2):
        started = time.perf_counter()
        session.run_with_iobinding(binding)
        if i >= 2:
            times.append((time.perf_counter() - started) * 1e3)
    return float(np.median(times))


def torch_time(model, feed: dict, runs: int) -> tuple[float, float]:
    """(median ms of one step, peak MiB) of PyTorch eager bf16 on the GPU, same network and inputs."""
    import torch

    from export.graphs import graph_module

    net = graph_module(model.to_compute_dtype(torch.bfloat16), "step").cuda()
    inputs = {k: torch.from_numpy(v).cuda() for k, v in feed.items()}
    torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.inference_mode():
        for i in range(runs + 2):
            torch.cuda.synchronize()
            started = time.perf_counter()
            net(**inputs)
            torch.cuda.synchronize()
            if i >= 2:
                times.append((time.perf_counter() - started) * 1e3)
    peak = torch.cuda.max_memory_allocated() / 2**20
    del net, inputs
    torch.cuda.empty_cache()
    return sorted(times)[len(times) // 2], peak


def step_feed(preset: str, depth: int, shape):
    from export.spec import DenoiserSpec

    return DenoiserSpec.of(network(preset, depth).config).dummy_inputs("step", *shape, seed=3)


def device(work: Path, out: Path | None, budget: float, runs: int) -> int:
    started = time.perf_counter()
    left = lambda: budget - (time.perf_counter() - started)  # noqa: E731
    plan = json.loads((work / "plan.json").read_text())
    site = install(work, plan)
    if site is not None:
        sys.path.insert(0, str(site))
    graphs = work / "graphs"
    for name, weights in plan["stripped"].items():
        refill(graphs / name, weights, graphs / name.replace(".step.onnx", ".filled.onnx"))
    log(f"gpu_check: device side ready in {time.perf_counter() - started:.0f} s (wheel {'installed' if site else 'not prepared'}, {len(plan['stripped'])} base graphs refilled)")
    reason = no_gpu_reason()
    if reason:
        log(f"gpu_check: no GPU: {reason}; nothing was measured")
        return NO_GPU
    import onnxruntime as ort

    from gvrcli.info import gpu_libraries

    report = {"onnxruntime": ort.__version__, "placement": {}, "attention": {}, "speed": {}, "gvr_upscale": {}, "skipped": []}
    depth = plan["base_depth"]
    # a. strict placement: gvr's loader on tiny's artefacts (its preload finds the CUDA libraries,
    # before torch is imported), then a strict session on base's graphs
    for key, name in sorted(plan["graphs"].items(), key=lambda kv: not kv[0].startswith("tiny")):
        path = graphs / name.replace(".step.onnx", ".filled.onnx")
        report["placement"][key] = strict_placement(path) if key.startswith("tiny") else strict_raw(path)
        log(f"placement {key}: {report['placement'][key]}")
    report["gpu_libraries"] = gpu_libraries()
    import torch

    report["device"], report["torch"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, torch.__version__
    log(f"gpu_check on {report['device']}, onnxruntime {ort.__version__}, torch {torch.__version__}, libraries {report['gpu_libraries']}")
    # b. the attention kernel ORT ran
    for key in ("tiny fp16", "tiny bf16"):
        if key in plan["graphs"]:
            report["attention"][key] = attention_log(graphs / plan["graphs"][key], step_feed("tiny", None, (FRAMES // 2, 36, 64)))
            log(f"attention {key}: {report['attention'][key]['mentions']}")
    # c. base at 1080p per step: ORT CUDA fp16 / bf16 vs PyTorch eager bf16
    if any(k.startswith("base") for k in plan["graphs"]):
        feed = step_feed("base", depth, (FRAMES, *HD))
        row = {"scaled_by": 24 / depth}
        for precision in ("fp16", "bf16"):
            if left() < 60:
                report["skipped"].append(f"base {precision}: time budget")
                continue
            ms = ort_time(graphs / plan["graphs"][f"base {precision}"].replace(".step.onnx", ".filled.onnx"), feed, runs)
            row[f"ort_cuda_{precision}_ms_per_frame_step"] = ms / FRAMES * 24 / depth
        if left() > 60:
            ms, peak = torch_time(network("base", depth), feed, runs)
            row["torch_eager_bf16_ms_per_frame_step"], row["eager_peak_gpu_mib"] = ms / FRAMES * 24 / depth, peak
        report["speed"]["base 1080p"] = row
        log(f"base 1080p (depth {depth}, scaled to 24 blocks): {row}")
    # d. the whole process, only where its media dependencies import
    try:
        import av  # noqa: F401
        import scenedetect  # noqa: F401
    except ImportError:
        report["skipped"].append("gvr upscale: PyAV/scenedetect are not installed here")
    else:
        if left() > 60:
            path = graphs / plan["graphs"]["tiny fp16"]
            cmd = [sys.executable, "-m", "gvrcli", "upscale", str(ROOT / "samples" / "hills.mp4"), str(work / "out"), "--backend", "ort-cuda",
                   "--model", str(path), "--precision", "fp16", "--json"]
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
            summary = next((json.loads(line) for line in done.stdout.splitlines()[::-1] if '"summary"' in line), {})
            report["gvr_upscale"]["tiny fp16"] = {"exit": done.returncode, "fps": summary.get("fps"), "stderr": done.stderr.strip().splitlines()[-3:]}
    report["seconds"] = round(time.perf_counter() - started, 1)
    if report["skipped"]:
        log("skipped: " + "; ".join(report["skipped"]))
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--prepare", type=Path, metavar="DIR", help="here: export the graphs and split the wheel into DIR/call-N")
    mode.add_argument("--device", type=Path, metavar="WORK", help=f"there: join, install and measure (WORK: {WORK})")
    parser.add_argument("--out", type=Path, default=None, help="folder for gpu_check.json (device)")
    parser.add_argument("--base-depth", type=int, default=2, help="blocks of base to export (of 24; figures are scaled to 24)")
    parser.add_argument("--wheel", default="download", help="onnxruntime-gpu wheel: 'download' (pip download, the pinned version), a path, or 'none'")
    parser.add_argument("--part-mib", type=int, default=PART_MIB, help="MiB per call")
    parser.add_argument("--presets", default="tiny,base", help="which networks to prepare (tests: tiny:1, one block of tiny)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement (after 2 warm-ups)")
    parser.add_argument("--budget", type=float, default=280.0, help="device seconds; later measurements are skipped past it")
    args = parser.parse_args(argv)
    if args.device:
        return device(args.device, args.out, args.budget, args.runs)
    if args.wheel == "download":
        wheel = fetch_wheel(args.prepare.parent / ".gpu-check-wheel", pinned_ort())
    else:
        wheel = None if args.wheel == "none" else Path(args.wheel)
    plan = prepare(args.prepare, base_depth=args.base_depth, wheel=wheel, part_mib=args.part_mib, presets=tuple(args.presets.split(",")))
    for i, call in enumerate(plan["calls"], 1):
        log(f"call {i}: {call['folder']} {call['bytes'] / 2**20:.1f} MiB ({len(call['files'])} files)")
    log(f"{len(plan['calls'])} calls; commands in {args.prepare / 'calls.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
