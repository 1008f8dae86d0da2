"""What this machine has to compute on, probed cheaply: without importing ONNX Runtime or OpenVINO.

The exporter (which runtimes can verify an export here) and the runtime (which backend ``auto``
picks, what ``gvr info`` reports) ask the same question the same way.
"""

from __future__ import annotations

from pathlib import Path


def gpu_present() -> bool:
    """A GPU ONNX Runtime can use, without creating a session: the CUDA provider is built in and
    the driver library loads (a few ms; no probing run)."""
    import ctypes
    import importlib.util

    # Look for ORT's CUDA provider library rather than importing ORT (an OpenVINO run never needs it).
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return False
    capi = Path(next(iter(spec.submodule_search_locations))) / "capi"
    if not any(capi.glob("libonnxruntime_providers_cuda*")):
        return False

    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True
