"""Inference backends: one small dataclass per runtime, each loading *all* of a model's graphs.

A loaded model (``LoadedModel``) runs its graphs by role (``models.manifest.graph_io``): the
condition graph once per clip, the step graph once per sampler step. The engine binds its own
preallocated float32 numpy buffers to a graph's inputs and outputs once (``bind``) and then runs
the binding as often as it likes (``Bound.run``): the runtime reads the inputs and writes the
outputs in place, so a sampler step allocates nothing and copies nothing on the host. (The same
seam takes device-resident buffers on a GPU.)

Each backend checks that the provider or device it was asked for really loaded: ONNX Runtime
silently falls back to CPU when CUDA libraries are missing, which on a farm would turn a GPU job
into a 50x slower one without a word. A requested GPU that is not there is exit 75 (retry
elsewhere). On a GPU provider every node runs on the GPU or the model is refused, naming the nodes
(``gvrcli.inference.placement``), and the sampler's latents stay on the device (``device_buffer``).
Precision is explicit (``PRECISIONS``): OpenVINO always gets its
``INFERENCE_PRECISION_HINT``, so the same command computes the same numbers on every CPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from models.manifest import STEP, ModelManifest

from gvrcli.errors import ModelError, RetryableError, UsageError, first_line
from gvrcli.inference.caches import compiled_cache, irregular_entry
from gvrcli.inference.gpu import gpu_present
from gvrcli.inference.modelfile import graph_paths, read_manifest
from gvrcli.inference.openvino_model import OpenVinoModel
from gvrcli.inference.ort_backend import OrtBackend
from gvrcli.inference.precision import PRECISIONS, artefact_precision
from gvrcli.inference.quiet_openvino import import_openvino

BACKENDS = ("auto", "ort-cuda", "ort-tensorrt", "ort-cpu", "openvino")


# --------------------------------------------------------------------------------------------------
# OpenVINO
# --------------------------------------------------------------------------------------------------

# --precision -> INFERENCE_PRECISION_HINT. Always set: OpenVINO's CPU plugin otherwise picks bf16
# by itself on CPUs that have it (AMX, AVX-512 BF16), and the same command differs by farm node.
_OV_HINT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}


@dataclass
class OpenVinoBackend:
    """OpenVINO. Knobs: ``device`` (CPU, GPU, AUTO), ``threads`` (CPU inference threads, 0 = default),
    ``precision`` (None = the artefact's). Reads OpenVINO IR (.xml + .bin) or ONNX files directly."""

    model_path: Path
    device: str = "AUTO"
    threads: int = 0
    precision: str | None = None
    reason: str = ""
    cache: Path | None = field(default_factory=lambda: compiled_cache("openvino"))

    def load(self, manifest: ModelManifest | None = None) -> "OpenVinoModel":
        ov = import_openvino()
        manifest = manifest or read_manifest(self.model_path)
        core = ov.Core()
        device = self.device.upper()
        available = core.available_devices
        if device not in ("AUTO", "CPU") and not any(d == device or d.startswith(device + ".") for d in available):
            raise RetryableError(
                f"OpenVINO device {device} is not available (available: {', '.join(available)}); "
                "retry on a node that has it, or use --device CPU"
            )
        # AUTO would pick a GPU if one is there, else the CPU: resolve it so the hint is checked
        # against the device that runs.
        if device == "AUTO":
            device = next((d for d in available if d.startswith("GPU")), "CPU")
        precision, weights = self._precision(core, device, manifest)
        config = {"INFERENCE_PRECISION_HINT": _OV_HINT[precision]}
        if precision == "fp16" and weights:
            # An fp16 artefact: on the CPU pinned to f32 arithmetic between the graph's own fp16
            # Casts (the same numbers on every CPU); a GPU computes f16 natively.
            config["INFERENCE_PRECISION_HINT"] = "f16" if device.startswith("GPU") else "f32"
        if self.threads and device == "CPU":
            config["INFERENCE_NUM_THREADS"] = self.threads
        graphs, compiled = {}, {}
        cache, note = self._cache_config()
        cached = {**config, **cache}
        for role, path in graph_paths(self.model_path, manifest).items():
            try:
                graphs[role] = core.read_model(str(path))
                compiled[role] = core.compile_model(graphs[role], device, cached)
            except RuntimeError as e:
                raise ModelError(f"model {path}: OpenVINO cannot compile it for {device} ({first_line(e)})") from None
        try:
            devices = compiled[STEP].get_property("EXECUTION_DEVICES")
        except RuntimeError:
            devices = [device]
        return OpenVinoModel(
            manifest, compiled, f"openvino {','.join(devices)}", precision, note=note, core=core, graphs=graphs, device=device, config=config
        )

    def _cache_config(self) -> dict:
        """OpenVINO's compiled-model cache for the load-time (dynamic-shape) graphs: compiling the
        tiny default's two graphs takes ~1.1 s on a 2-core CPU, loading them from the cache ~0.15 s.
        One blob per graph, model, device, precision and OpenVINO version (a few MB). The per-shape
        static copies (``OpenVinoModel._compiled_for``) are not cached: one per chunk length and
        tile, ~50 MB each, would grow without bound over a farm's clips. A folder that cannot be
        made means no cache, not a failure; OpenVINO recompiles over a damaged blob by itself.

        Returns (config, note). The folder may be shared by a farm, so anyone may have put anything
        there, and OpenVINO opens its blobs itself, blocking: a FIFO named like a blob would hang the
        load for good. So the folder is looked at first (names and types only, nothing opened):
        unless every entry is a regular file, the cache is not used this run, with a note naming
        the entry (gvr never removes or moves what others put there)."""
        if self.cache is None:
            return {}, ""
        try:
            Path(self.cache).mkdir(parents=True, exist_ok=True)
        except OSError:
            return {}, ""
        odd = irregular_entry(Path(self.cache))
        if odd:
            return {}, f"compiled-model cache not used this run: {odd} (compiling without it)"
        return {"CACHE_DIR": str(self.cache)}, ""

    def _precision(self, core, device: str, manifest: ModelManifest) -> tuple[str, bool]:
        """(precision, whether fp16 means fp16 *weights* computed in f32)."""
        wanted = self.precision or manifest.precision
        if wanted == "fp16" and manifest.precision == "fp32" or wanted == "bf16":
            caps = _capabilities(core, device)
            name = {"fp16": "FP16", "bf16": "BF16"}[wanted]
            if name not in caps:
                raise UsageError(
                    f"--precision {wanted}: OpenVINO {device} does not compute in {wanted} on this machine "
                    f"(capabilities: {', '.join(caps) or 'none'})"
                    + ("; an fp16 artefact (gvr export --precision fp16) stores fp16 weights" if wanted == "fp16" else "")
                )
            return wanted, False
        return artefact_precision(self.precision, manifest, "openvino"), wanted == "fp16"


def _capabilities(core, device: str) -> list[str]:
    try:
        return [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except RuntimeError:
        return []


# --------------------------------------------------------------------------------------------------
# Checks and choice
# --------------------------------------------------------------------------------------------------


# --device: AUTO or a device kind OpenVINO names, optionally numbered (GPU.1). Anything else is a
# typo: a usage error (exit 2), not the "not on this node, retry elsewhere" (exit 75) of a real
# device this node lacks, which a scheduler would requeue forever.
_DEVICES = re.compile(r"AUTO|(CPU|GPU|NPU)(\.[0-9]+)?", re.IGNORECASE)


def check_device(device: str) -> None:
    if not isinstance(device, str) or not _DEVICES.fullmatch(device):
        raise UsageError(f"--device {device!r}: not a device name (AUTO, CPU, GPU, GPU.1, NPU)")


def make_backend(
    model_path: Path, backend: str = "auto", device: str = "AUTO", threads: int = 0, precision: str | None = None,
    manifest: ModelManifest | None = None, cpu_choice=None, **gpu,
):
    """The backend dataclass for a ``--backend`` choice. ``auto``: OpenVINO for .xml; for ONNX a GPU
    provider when a GPU is present, else the CPU backend predicted fastest on this machine:
    ``cpu_choice()`` -> (backend, reason) (the batch passes ``gvrcli.inference.speed.choose_cpu_backend``
    for its workload), by default the shipped speed table on a nominal clip (ONNX Runtime for an
    int8 ONNX artefact, whose quantised ops are ONNX Runtime's). ``reason`` says why. ``gpu``:
    TensorRT's ``trt_cache``, ``frames``, ``lr_max``."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    check_device(device)
    if precision is not None and precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    is_ir = Path(model_path).suffix.lower() == ".xml"
    reason = ""
    if backend == "auto":
        int8 = (precision or (manifest.precision if manifest else "")) == "int8"
        if is_ir:
            backend, reason = "openvino", "OpenVINO IR"
        elif device.upper() == "GPU" or (device.upper() != "CPU" and precision != "bf16" and gpu_present()):
            backend, reason = "ort-cuda", "a GPU is present"
        elif int8 or not _openvino_importable():
            backend, reason = "ort-cpu", "int8 ONNX artefact" if int8 else "OpenVINO is not installed"
        else:
            backend, reason = cpu_choice() if cpu_choice is not None else _table_choice()
    if backend == "openvino":
        return OpenVinoBackend(model_path, device=device, threads=threads, precision=precision, reason=reason)
    if is_ir:
        raise UsageError(f"--backend {backend} runs ONNX files; {model_path} is OpenVINO IR (use --backend openvino)")
    provider = {"ort-cuda": "cuda", "ort-tensorrt": "tensorrt", "ort-cpu": "cpu"}[backend]
    extra = {k: v for k, v in gpu.items() if v is not None} if provider == "tensorrt" else {}
    return OrtBackend(model_path, provider=provider, threads=threads, precision=precision, reason=reason, **extra)


def _table_choice() -> tuple[str, str]:
    """The CPU backend whose shipped speed model is faster on a nominal clip (20 frames, whole
    960x540 output frames), when no workload is known."""
    from gvrcli.inference.speed import CPU_BACKENDS, table_model

    seconds = {name: table_model(name).call_seconds(20, (540, 960), (1, 1), 1) for name in CPU_BACKENDS}
    best = min(seconds, key=seconds.get)
    return best, "no GPU; the speed table's fastest CPU backend on a 20-frame 960x540 clip (gvrcli.inference.speed_table)"


def _openvino_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None
