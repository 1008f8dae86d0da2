"""The ``--backend`` choice: which runtime's backend dataclass runs a model here, and why.

One small dataclass per runtime, each loading *all* of a model's graphs into a ``LoadedModel``
(``gvrcli.inference.loaded``): ``OrtBackend`` (``gvrcli.inference.ort_backend``: CPU, CUDA,
TensorRT) and ``OpenVinoBackend`` (``gvrcli.inference.openvino_backend``). This module only
chooses between them. ``auto`` decides without loading or probing anything heavy: OpenVINO for an
IR file, a GPU provider when a GPU is present (``gvrcli.inference.gpu``), else the CPU backend
predicted fastest for the workload. A misspelt ``--device`` or ``--precision`` is a usage error
here (exit 2), before any runtime is imported.
"""

from __future__ import annotations

import re
from pathlib import Path

from models.manifest import ModelManifest

from gvrcli.errors import UsageError
from gvrbase.devices import gpu_present
from gvrcli.inference.openvino_backend import OpenVinoBackend
from gvrcli.inference.ort_backend import OrtBackend
from gvrcli.inference.precision import PRECISIONS

BACKENDS = ("auto", "ort-cuda", "ort-tensorrt", "ort-cpu", "openvino")


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


def backend_name(backend) -> str:
    """The ``--backend`` name of a backend ``make_backend`` made: ort-cpu, ort-cuda, ort-tensorrt, openvino."""
    return "openvino" if isinstance(backend, OpenVinoBackend) else f"ort-{backend.provider}"


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
