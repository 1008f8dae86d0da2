"""Where runtimes keep what they compiled from a model, and the look before one is opened.

OpenVINO's compiled graphs, TensorRT's engines and the per-machine speed factors are each kept in
a folder of their own (``COMPILED_CACHES``), so the next run loads in seconds what the first
compiled in minutes. Those folders may be shared by a farm, and the runtimes open what they find
there themselves, blocking: ``irregular_entry`` looks at a folder first (names and types only)
so that a FIFO or a dangling link there costs the cache, never a hung load. Both runtimes' backends
and ``gvr info`` use this; it lives on its own because it belongs to neither runtime.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gvrcli.inference.modelfile import cache_dir


# Runtime -> (environment variable, folder under ~/.cache/gvr) of its compiled-model cache.
# "speed" is not a runtime's: the per-machine speed factors (gvrcli.inference.speed.MachineCache).
COMPILED_CACHES = {"openvino": ("GVR_OV_CACHE", "openvino"), "tensorrt": ("GVR_TRT_CACHE", "tensorrt"), "speed": ("GVR_SPEED_CACHE", "speed")}


def compiled_cache(runtime: str) -> Path | None:
    """Where a runtime keeps what it compiled from a model, to load it next time instead of
    compiling again: its variable's value (``off``: no cache), else ``~/.cache/gvr/<folder>``
    (``$XDG_CACHE_HOME/gvr/<folder>``); see COMPILED_CACHES."""

    env, folder = COMPILED_CACHES[runtime]
    value = os.environ.get(env)
    if value:
        return None if value.lower() == "off" else Path(value)
    return cache_dir() / folder


def irregular_entry(folder: Path) -> str:
    """'' when ``folder`` is a real folder holding only regular files (links followed), else what is
    not, in words. Only names and types are read (``stat``, never ``open``): nothing here blocks."""
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return f"{folder} is not a folder"
        with os.scandir(folder) as it:
            names = sorted(e.name for e in it)
    except OSError as e:
        return f"{folder}: {e.strerror}"
    for name in names:
        try:
            mode = os.stat(folder / name).st_mode
        except OSError:
            return f"{folder / name} is a dangling link"
        if not stat.S_ISREG(mode):
            return f"{folder / name} is not a regular file"
    return ""
