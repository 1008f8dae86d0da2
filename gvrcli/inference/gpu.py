"""Is there a GPU, and are its libraries loaded: the probing done before any GPU session.

Choosing a backend must not cost a session: ``gpu_present`` answers "could ONNX Runtime use a GPU
here" in a few milliseconds (the CUDA provider's library is installed and the driver loads), which
``make_backend``, ``gvr info`` and the exporter ask before deciding anything. And gvr never
imports torch, which would have loaded the CUDA libraries pip installed: ``preload_cuda_libraries``
loads them before the first GPU session, so that ONNX Runtime's CUDA provider finds them.
"""

from __future__ import annotations

from pathlib import Path

from gvrcli.errors import first_line


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


def preload_cuda_libraries(ort) -> str:
    """Load the CUDA, cuBLAS and cuDNN libraries that pip installed (``onnxruntime-gpu[cuda,cudnn]``,
    ``gvr[cuda]``) before the first GPU session: ONNX Runtime's CUDA provider links against them
    but does not look in site-packages itself, and ``gvr`` never imports torch (which would have
    loaded them). ``onnxruntime.preload_dlls`` (ONNX Runtime >= 1.21) does exactly this; it prints
    what it could not load, which we keep off stdout (``--json``) and return. Libraries installed
    system-wide (LD_LIBRARY_PATH, ldconfig) are found either way."""
    import contextlib
    import io

    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return ""
    said = io.StringIO()
    with contextlib.redirect_stdout(said):
        try:
            preload(cuda=True, cudnn=True, msvc=True)
        except (OSError, RuntimeError) as e:  # a missing folder is the provider's problem, said later
            print(first_line(e))
    return said.getvalue().strip()
