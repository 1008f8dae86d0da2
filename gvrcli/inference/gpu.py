"""The GPU's libraries, loaded before any GPU session (whether there is a GPU at all is
``gvrbase.devices.gpu_present``, which the exporter asks too).

gvr never imports torch, which would have loaded the CUDA libraries pip installed: ``preload_cuda_libraries``
loads them before the first GPU session, so that ONNX Runtime's CUDA provider finds them.
"""

from __future__ import annotations


from gvrbase.errors import first_line


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
