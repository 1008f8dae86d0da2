"""``gvr info``: what this machine can run (providers, devices, encoders) and what a model declares."""

from __future__ import annotations

import dataclasses
import platform
from pathlib import Path

from gvrbase.errors import first_line
from gvrcli.media.formats import CODECS
from gvrcli.inference.modelfile import ASSETS_DIR, cache_dir, default_model_name, read_manifest


def _ort_distribution() -> str:
    """Which ONNX Runtime build is installed: onnxruntime-gpu (CUDA + CPU) or onnxruntime (CPU)."""
    from importlib.metadata import PackageNotFoundError, distribution

    for name in ("onnxruntime-gpu", "onnxruntime"):
        try:
            distribution(name)
            return name
        except PackageNotFoundError:
            continue
    return "unknown"


# What the GPU providers link against: pip distributions (any of the names) and the library to ask
# for its version (soname candidates, the version function, how to format its integer).
_GPU_LIBRARIES = {
    "cuda driver": ((), ("libcuda.so.1", "nvcuda.dll"), "cuDriverGetVersion", "cuda"),
    "cuda runtime": (("nvidia-cuda-runtime", "nvidia-cuda-runtime-cu12"), ("libcudart.so.13", "libcudart.so.12"), "cudaRuntimeGetVersion", "cuda"),
    "cublas": (("nvidia-cublas", "nvidia-cublas-cu12"), (), "", ""),
    "cudnn": (("nvidia-cudnn-cu13", "nvidia-cudnn-cu12"), ("libcudnn.so.9",), "cudnnGetVersion", "cudnn"),
    "tensorrt": (("tensorrt-cu13-libs", "tensorrt-cu12-libs", "tensorrt-libs", "tensorrt"), ("libnvinfer.so.10",), "getInferLibVersion", "tensorrt"),
}


def _format_version(value: int, style: str) -> str:
    """The libraries' version integers: CUDA 13000 -> 13.0; cuDNN 92400 -> 9.24.0; TensorRT 101400 -> 10.14.0."""
    if style == "cuda":
        return f"{value // 1000}.{value % 1000 // 10}"
    if style == "cudnn":
        return f"{value // 10000}.{value % 10000 // 100}.{value % 100}"
    return f"{value // 10000}.{value % 10000 // 100}.{value % 100}"


def gpu_libraries() -> dict[str, dict]:
    """CUDA driver, CUDA runtime, cuBLAS, cuDNN and TensorRT as found here: the pip package's version
    (its metadata) and the loaded library's own (its version function), each absent where not
    found. Loading a library that is not there is not an error: a CPU machine reports nothing."""
    import ctypes
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name, (dists, libs, func, style) in _GPU_LIBRARIES.items():
        entry = {}
        for dist in dists:
            try:
                entry["package"] = f"{dist} {version(dist)}"
                break
            except PackageNotFoundError:
                continue
        for lib in libs:
            try:
                handle = ctypes.CDLL(lib)
                value = ctypes.c_int()
                fn = getattr(handle, func)
                if func in ("cudnnGetVersion", "getInferLibVersion"):  # return the number
                    fn.restype = ctypes.c_size_t if func == "cudnnGetVersion" else ctypes.c_int32
                    number = int(fn())
                elif fn(ctypes.byref(value)) == 0:
                    number = value.value
                else:
                    continue
                entry["library"] = f"{lib} {_format_version(number, style)}"
                break
            except (OSError, AttributeError):
                continue
        if entry:
            found[name] = entry
    return found


def _backends(providers: list[str], openvino: bool) -> dict[str, str]:
    """Each ``--backend`` and whether it can run here, with the reason when it cannot. GPU providers
    are checked the way ``--backend ort-cuda`` checks them (provider built in, driver loads), without
    creating a session."""
    from gvrbase.devices import gpu_present
    from gvrcli.inference.ort_backend import ORT_PROVIDERS

    gpu = gpu_present()

    def ort_gpu(use: str) -> str:
        missing = [p for p in ORT_PROVIDERS[use] if p not in providers]
        if missing:
            return f"unavailable: this ONNX Runtime build has no {', '.join(missing)} (onnxruntime-gpu has it, on Linux and Windows x86_64)"
        if not gpu:
            return "unavailable: no GPU answers here (no NVIDIA driver); exit 75 if asked for"
        return "available (every node on the GPU or a refusal naming the nodes; TensorRT engines cached)" if use == "tensorrt" else "available"

    return {
        "ort-cpu": "available",
        "ort-cuda": ort_gpu("cuda"),
        "ort-tensorrt": ort_gpu("tensorrt"),
        "openvino": "available" if openvino else "unavailable: OpenVINO does not load here",
    }


def collect(model: Path | None = None) -> dict:
    import av
    import onnxruntime as ort

    from gvrcli import version

    providers = ort.get_available_providers()
    facts: dict = {
        "gvr": version(),
        "platform": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "onnxruntime": {"version": ort.__version__, "package": _ort_distribution(), "providers": providers},
    }
    try:
        from gvrcli.inference.quiet_openvino import import_openvino

        ov = import_openvino()

        core = ov.Core()
        facts["openvino"] = {
            "version": ov.__version__,
            "devices": {d: core.get_property(d, "FULL_DEVICE_NAME") for d in core.available_devices},
            "cpu_capabilities": [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")],
        }
    except (ImportError, RuntimeError) as e:
        facts["openvino"] = {"error": first_line(e)}
    facts["backends"] = _backends(providers, "error" not in facts["openvino"])
    if any(p != "CPUExecutionProvider" for p in providers):
        from gvrcli.inference.gpu import preload_cuda_libraries

        preload_cuda_libraries(ort)  # what a GPU session would load, so the versions are the ones it gets
    facts["gpu_libraries"] = gpu_libraries()
    facts["pyav"] = {
        "version": av.__version__,
        "encoders": {name: c.encoder in av.codecs_available for name, c in CODECS.items()},
    }
    if model is None:
        for candidate in (ASSETS_DIR / default_model_name(2), cache_dir() / default_model_name(2)):
            if candidate.is_file():
                model = candidate
                break
    if model is None:
        facts["model"] = {"path": None, "note": "built-in default not built yet (gvr upscale exports it on first use)"}
    else:
        manifest = read_manifest(model)
        facts["model"] = {"path": str(model), "note": manifest.note or None, "manifest": dataclasses.asdict(manifest)}
    facts["precision"] = _precisions(facts, manifest.precision if model is not None else "fp32")
    facts["caches"] = _caches()
    return facts


def _caches() -> dict:
    """Where the runtimes keep what they compiled (``gvrcli.inference.caches.compiled_cache``), and its size now."""
    from gvrcli.inference.caches import COMPILED_CACHES, compiled_cache

    out = {}
    for name, (env, _) in COMPILED_CACHES.items():
        path = compiled_cache(name)
        files = [f for f in path.rglob("*") if f.is_file()] if path is not None and path.is_dir() else []
        out[name] = {"path": str(path) if path is not None else None, "env": env, "files": len(files), "mib": round(sum(f.stat().st_size for f in files) / 2**20, 1)}
    return out


def _precisions(facts: dict, default: str) -> dict:
    """What ``--precision`` gives on this machine: the default (the model's) and where each runs."""
    caps = facts["openvino"].get("cpu_capabilities", [])
    return {
        "default": default,
        "fp32": "every backend",
        "bf16": "bf16 artefacts (gvr export --precision bf16) on ort-cuda/ort-tensorrt and openvino"
        + ("; fp32 artefacts on openvino CPU" if "BF16" in caps else " (this CPU has no bf16)"),
        "fp16": "fp16 artefacts (gvr export --precision fp16: a half-precision graph) on every backend"
        + ("; openvino CPU computes f16" if "FP16" in caps else ""),
        "int8": "int8 artefacts (gvr export --precision int8)",
    }


def render(facts: dict) -> None:
    from rich.console import Console

    console = Console()
    console.print(f"[bold]gvr[/] {facts['gvr']}", highlight=False)
    console.print(f"[bold]Platform[/] {facts['platform']}")
    ort_facts = facts["onnxruntime"]
    console.print(
        f"[bold]ONNX Runtime[/] {ort_facts['version']} ({ort_facts['package']}): providers {', '.join(ort_facts['providers'])}"
    )
    ov_facts = facts["openvino"]
    if "error" in ov_facts:
        console.print(f"[bold]OpenVINO[/]: unavailable ({ov_facts['error']})")
    else:
        devices = "; ".join(f"{k} ({v})" for k, v in ov_facts["devices"].items())
        console.print(f"[bold]OpenVINO[/] {ov_facts['version']}: devices {devices}")
    p = facts["precision"]
    console.print(f"[bold]Precision[/] (--precision): default {p['default']}; " + "; ".join(f"{k}: {v}" for k, v in p.items() if k != "default"), markup=True, highlight=False)
    console.print("[bold]Backends[/] " + "; ".join(f"{k} {v}" for k, v in facts["backends"].items()), highlight=False)
    caches = "; ".join(
        f"{k} {c['path']} ({c['files']} files, {c['mib']} MiB)" if c["path"] else f"{k} off (${c['env']}=off)" for k, c in facts["caches"].items()
    )
    console.print(f"[bold]Compiled-model caches[/] {caches}", highlight=False)
    libs = "; ".join(f"{k} {', '.join(v.values())}" for k, v in facts["gpu_libraries"].items()) or "none found (no CUDA, cuDNN or TensorRT here)"
    console.print(f"[bold]GPU libraries[/] {libs}", highlight=False)
    enc = ", ".join(f"{k}{'' if ok else ' (missing)'}" for k, ok in facts["pyav"]["encoders"].items())
    console.print(f"[bold]PyAV[/] {facts['pyav']['version']}: encoders {enc}")
    m = facts["model"]
    if not m["path"]:
        console.print(f"[bold]Model[/]: {m['note']}")
        return
    console.print(f"[bold]Model[/] {m['path']}", highlight=False)
    if m["note"]:
        console.print(f"  {m['note']}", markup=False, highlight=False)
    for key, value in m["manifest"].items():
        if key != "config":
            console.print(f"  {key}: {value}", markup=False, highlight=False)
    console.print(f"  config: {m['manifest']['config']}", markup=False, highlight=False)
