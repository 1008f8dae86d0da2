"""What every backend's ``load()`` returns, and how the engine runs it: the loaded-model contract.

A loaded model (``LoadedModel``) runs its graphs by role (``models.manifest.graph_io``): the
condition graph once per clip, the step graph once per sampler step. The engine binds its own
preallocated float32 numpy buffers to a graph's inputs and outputs once (``bind``) and then runs
the binding as often as it likes (``Bound.run``): the runtime reads the inputs and writes the
outputs in place, so a sampler step allocates nothing and copies nothing on the host. (The same
seam takes device-resident buffers on a GPU.)

The engine, the VAE and the checks see only this contract, never a runtime: it lives apart from
the runtimes' backends (``gvrcli.inference.ort_backend``, ``gvrcli.inference.openvino_backend``)
so that those point down to it and nothing points across. ``check_model`` runs every graph once
before any video, so a graph that disagrees with its manifest fails once, not per file.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
from models.manifest import CONDITION, STEP, TEXT, ModelManifest

from gvrbase.errors import first_line
from gvrcli.errors import ModelError, RetryableError

# Memory of one tile through the model, beyond what the process held after loading it:
# ACTIVATION_FIXED_MB + ACTIVATION_FACTOR x the tile's HR float32 latent (z_t), for the engine's
# latent buffers (z ping-pong, cond, base), the runtime's activations and its allocator's slack.
# Fitted to ``benchmarks/calibrate_memory.py`` (built-in tiny default, 8 frames 480x270 -> 960x540,
# two chunks of two steps), a line on or above every measured tile: ONNX Runtime (arena on, memory
# pattern off) 565 / 1628 / 2551 MB beyond load for 144x144 / 270x270 / whole-frame tiles (z = 7.6 /
# 26.7 / 47.5 MB); OpenVINO, which compiles the engine's large clips for their static shape
# (STATIC_MIN_ELEMENTS: the fixed part), 385 / 709 / 947 MB, and 1472 MB for 270x270 tiles of a
# 20-frame chunk (z = 66.7 MB).
# The memory planner (``gvrcli.inference.memory``) sizes tiles with them.
ACTIVATION_FACTOR = {"onnxruntime": 50, "openvino": 18}
ACTIVATION_FIXED_MB = {"onnxruntime": 300, "openvino": 256}


class OnDemand(dict):
    """role -> a loaded graph (a session, a compiled model): those loaded up front, and any other
    (or one dropped since) loaded when first asked for. A lean VAE plan (``gvrcli.inference.vae_plan``)
    drops a first-chunk graph after its chunk and gets it back for the next file's."""

    def __init__(self, loaded: dict, load: Callable[[str], object]):
        super().__init__(loaded)
        self._load = load

    def __missing__(self, role: str):
        value = self[role] = self._load(role)
        return value


def give_memory_back() -> None:
    """Ask the C allocator to return freed memory to the system (glibc keeps it otherwise): after a
    graph's weights are dropped, so the process's resident size shows it."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # musl and others: nothing to ask
            pass


class Bound(Protocol):
    def run(self) -> None:
        """Run the graph on the bound buffers (outputs written in place)."""


class LoadedModel(Protocol):
    manifest: ModelManifest
    description: str  # e.g. "onnxruntime CPUExecutionProvider"
    precision: str  # what it computes in: one of PRECISIONS
    note: str  # a fallback worth telling the user about, or ""
    activation_factor: float  # see ACTIVATION_FACTOR
    activation_fixed_mb: float  # see ACTIVATION_FIXED_MB

    def bind(self, role: str, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> Bound: ...

    def interrupt(self) -> None:
        """Abort the runs in flight (from another thread): SIGTERM must not wait out a long step."""

    def drop(self, role: str) -> None:
        """Unload ``role``'s graph and its weights now; its next run loads it again."""


_OOM_MARKERS = ("out of memory", "failed to allocate", "bad_alloc", "cudaerrormemoryallocation")


def raise_if_oom(e: Exception) -> None:
    """A runtime's out-of-memory failure as exit 75 (retry elsewhere, or with less), one line."""
    if any(m in str(e).lower() for m in _OOM_MARKERS):
        raise RetryableError(
            f"device out of memory ({first_line(e)}); "
            "retry, or lower --memory-budget / --tile"
        ) from None


def f32_buffer(value: np.ndarray) -> np.ndarray:
    """``value`` itself, which a runtime may read or write in place; anything else is refused."""
    if value.dtype != np.float32 or not value.flags.c_contiguous:
        raise ValueError("bound buffers must be C-contiguous float32")  # a copy would silently unbind them
    return value


def run_graph(model: LoadedModel, role: str, inputs: dict[str, np.ndarray], output_shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Run one graph once on fresh output buffers (tests, checks; the engine binds its own)."""
    outputs = {name: np.empty(shape, dtype=np.float32) for name, shape in output_shapes.items()}
    model.bind(role, {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}, outputs).run()
    return outputs


def check_model(model: LoadedModel, source: Path) -> None:
    """Every graph once on a small input before any video: a graph that disagrees with its manifest
    (another scale, other channels, another text width) is a model error (exit 2), not a failure
    of every file."""
    m = model.manifest
    C, T, h, w, s = m.latent_channels, 1, m.patch * m.window[0], m.patch * m.window[1], m.scale
    rng = np.random.default_rng(0)
    lr = rng.standard_normal((1, C, T, h, w), dtype=np.float32)
    level = np.array([m.noise_aug], dtype=np.float32)
    hr = (1, C, T, h * s, w * s)
    try:
        grid = np.zeros((1, 1, 1, *hr[-2:]), np.float32)
        conds = run_graph(model, CONDITION, {"lr": lr, "lr_noise": lr, "noise_aug": level, "hr_grid": grid}, {"cond": hr, **({"base": hr} if "base" in m.inputs else {})})
        if m.has_text:
            dim = int(m.config["dim"])
            prompt = rng.standard_normal((1, 2, m.text_dim), dtype=np.float32)
            texts = run_graph(model, TEXT, {"prompt": prompt}, {"text": (1, 2, dim), "text_null": (1, m.text_tokens, dim)})
            conds["text"] = texts["text_null"]
        z = rng.standard_normal(hr, dtype=np.float32)
        feeds = {"z_t": z, "t": np.array([1.0], np.float32), "t_next": np.array([0.5], np.float32), "noise_aug": level, **conds}
        out = run_graph(model, STEP, feeds, {"z_next": hr})["z_next"]
    except RetryableError:
        raise
    except Exception as e:
        raise ModelError(
            f"model {source}: a test step at the manifest's scale x{s} fails; the graphs do not match "
            f"its manifest ({first_line(e)})"
        ) from None
    if not np.isfinite(out).all() or not all(np.isfinite(c).all() for c in conds.values()):
        raise ModelError(f"model {source}: a test step at the manifest's scale x{s} returns non-finite values")
