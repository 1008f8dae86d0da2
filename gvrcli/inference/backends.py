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

import os
import re
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from models.manifest import CONDITION, STEP, TEXT, ModelManifest

from gvrbase.devices import gpu_present
from gvrbase.errors import first_line
from gvrcli.errors import ModelError, RetryableError, UsageError
from gvrcli.inference.modelfile import cache_dir, graph_paths, read_manifest
from gvrcli.inference.quiet_openvino import import_openvino

BACKENDS = ("auto", "ort-cuda", "ort-tensorrt", "ort-cpu", "openvino")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")

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


_OOM_MARKERS = ("out of memory", "failed to allocate", "bad_alloc", "cudaerrormemoryallocation")


def _raise_if_oom(e: Exception) -> None:
    if any(m in str(e).lower() for m in _OOM_MARKERS):
        raise RetryableError(
            f"device out of memory ({first_line(e)}); "
            "retry, or lower --memory-budget / --tile"
        ) from None


def half_graph(manifest: ModelManifest) -> bool:
    """A true fp16/bf16 graph (``gvr export --precision fp16|bf16`` since issue 11), not an older
    fp16 export's fp16 weights with fp32 arithmetic."""
    return manifest.extra.get("compute") in ("fp16", "bf16")


def artefact_precision(requested: str | None, manifest: ModelManifest, runtime: str, extra: str = "") -> str:
    """The precision to run: ``requested``, or the artefact's own (fp32 for every fp32 export, which
    is all that ships). fp16, bf16 (ONNX) and int8 need artefacts exported so (``gvr export
    --precision``); ``runtime`` ("onnxruntime" on CPU, "onnxruntime-gpu", "openvino") decides
    what can compute it; ``extra`` names alternatives in the refusal."""
    have = manifest.precision
    want = requested or have
    if want not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)} (got {want!r})")
    # A true half-precision graph computes in its own dtype; an older fp16 export (fp16 weights,
    # fp32 arithmetic) also runs as fp32, and on OpenVINO as bf16.
    own_only = ("int8", "bf16") + (("fp16",) if half_graph(manifest) else ())
    if have in own_only and want != have:
        raise UsageError(f"--precision {want}: the model is a {have} artefact; run it with --precision {have} or use an fp32 export")
    if want in ("fp16", "int8") and have != want:
        raise UsageError(
            f"--precision {want}: the model is a {have} artefact; export one with gvr export --precision {want}{extra}"
        )
    if want == "bf16" and runtime == "onnxruntime":
        raise UsageError(
            "--precision bf16: ONNX Runtime's CPU provider has no bf16 kernels; run a bf16 artefact with "
            "--backend ort-cuda or openvino, or an fp32 one with --backend openvino --precision bf16"
        )
    if want == "bf16" and have == "fp32" and runtime != "openvino":
        raise UsageError("--precision bf16 on an fp32 artefact runs on OpenVINO's CPU plugin (--backend openvino); export a bf16 graph for ONNX Runtime CUDA")
    return want


# --------------------------------------------------------------------------------------------------
# ONNX Runtime
# --------------------------------------------------------------------------------------------------


# --provider choice -> the ONNX Runtime execution providers it needs, first to last.
ORT_PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider",),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider"),  # CUDA runs what TensorRT does not take
}


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


def default_trt_cache() -> Path | None:
    """TensorRT's engine and timing caches: ``$GVR_TRT_CACHE``, else ``~/.cache/gvr/tensorrt``. An
    engine is built once per model, GPU, TensorRT version and shape profile (minutes for ``base``)
    and loaded from here afterwards (seconds)."""
    return compiled_cache("tensorrt")


def trt_profiles(manifest: ModelManifest, role: str, frames: int, lr_max: tuple[int, int], lr_opt: tuple[int, int] | None = None) -> dict[str, str]:
    """TensorRT shape profiles (``trt_profile_min_shapes/opt_shapes/max_shapes``) of one graph, for
    the runtime's clips: T from 1 (a short shot, the last chunk) to ``frames`` (a full chunk), LR
    sizes from the load-time check's (one window) to ``lr_max`` (the largest tile or frame the
    engine will pass; ``Upscaler.tile_size`` keeps to it), optimised for ``lr_opt`` (default: the
    largest) at a full chunk, output sizes at the model's scale (``--scale``/``--size`` at other
    ratios need a ``--tile`` whose output fits). Format: ``name:1x3x20x540x960,name2:...``."""
    from models.manifest import graph_io

    C, s = manifest.latent_channels, manifest.scale
    small = (manifest.patch * manifest.window[0], manifest.patch * manifest.window[1])
    lr_opt = lr_opt or lr_max
    sizes = {"min": (1, *small), "opt": (frames, *lr_opt), "max": (frames, *lr_max)}
    names = graph_io(role, manifest.prediction, manifest.has_text)[0]
    tokens = (1, manifest.text_tokens, int(manifest.config.get("dim", 0))) if manifest.has_text else None
    out = {}
    for key, (T, h, w) in sizes.items():
        dims = {}
        for name in names:
            if name in ("lr", "lr_noise"):
                dims[name] = (1, C, T, h, w)
            elif name in ("z_t", "cond", "base"):
                dims[name] = (1, C, T, h * s, w * s)
            elif name == "hr_grid":  # its shape is the output size
                dims[name] = (1, 1, 1, h * s, w * s)
            elif name == "text":
                dims[name] = tokens
            elif name == "prompt":  # the prompt's tokens: 1 up to the model's text_tokens
                dims[name] = (1, 1 if key == "min" else manifest.text_tokens, manifest.text_dim)
            else:  # t, t_next, noise_aug
                dims[name] = (1,)
        out[f"trt_profile_{key}_shapes"] = ",".join(f"{n}:{'x'.join(str(d) for d in v)}" for n, v in dims.items())
    return out


@dataclass
class OrtBackend:
    """ONNX Runtime. Knobs: ``provider`` (cuda, tensorrt, cpu, or auto = CUDA when it loads, else
    CPU), ``device_id`` (which GPU), ``threads`` (CPU intra-op threads, 0 = one per core),
    ``precision`` (None = the artefact's), ``device_buffers`` (where the engine's sampler keeps its
    latents: "cuda" for a GPU provider, None = host numpy buffers; "cpu" runs the device path on
    the CPU, for tests), and for TensorRT ``trt_cache`` (engine cache folder), ``frames`` and
    ``lr_max`` (the shape profile: chunk length and largest LR tile)."""

    model_path: Path
    provider: str = "auto"
    device_id: int = 0
    threads: int = 0
    precision: str | None = None
    reason: str = ""  # why auto chose it, for the start line
    device_buffers: str | None = "auto"
    trt_cache: Path | None = None
    frames: int = 20
    lr_max: tuple[int, int] = (540, 960)
    cache_note: str = field(default="", repr=False)  # the engine cache was not used, and why

    def load(self, manifest: ModelManifest | None = None) -> "OrtModel":
        import onnxruntime as ort

        manifest = manifest or read_manifest(self.model_path)
        gpu = self.provider in ("cuda", "tensorrt")
        precision = artefact_precision(
            self.precision, manifest, "onnxruntime-gpu" if gpu or self.provider == "auto" and gpu_present() else "onnxruntime",
            " (or use --backend openvino)",
        )
        # ORT logs a multi-line CUDA load failure to stderr by itself; we say it in one line instead.
        ort.set_default_logger_severity(4)
        available = ort.get_available_providers()
        if self.provider == "auto":
            use = "cuda" if "CUDAExecutionProvider" in available else "cpu"
        else:
            use = self.provider
        missing = [p for p in ORT_PROVIDERS[use] if p not in available]
        if missing or (use != "cpu" and not gpu_present()):
            if self.provider == "auto":
                use = "cpu"
            else:
                what = (f"this ONNX Runtime has no {', '.join(missing)} (providers: {', '.join(available)})" if missing
                        else "no GPU answers here (no NVIDIA driver loads)")
                raise RetryableError(
                    f"--backend ort-{use}: {what}; retry on a GPU node with onnxruntime-gpu, or run with --backend ort-cpu"
                )
        preloaded = preload_cuda_libraries(ort) if use != "cpu" else ""
        sessions, shape_math = {}, {}
        for role, path in graph_paths(self.model_path, manifest).items():
            if use == "cpu":
                sessions[role] = self._session(ort, path, [("CPUExecutionProvider", {})], strict=False)
                continue
            sessions[role], shape_math[role] = self._gpu_session(ort, path, use, manifest, role, precision)
        note = self.cache_note
        if any(shape_math.values()):
            counts = ", ".join(f"{n} in the {role} graph" for role, n in shape_math.items() if n)
            note = f"shape-arithmetic nodes run on the CPU ({counts}: ONNX Runtime keeps integer shape math there by design); every tensor op is on the GPU"
        loaded = sessions[STEP].get_providers()
        if use != "cpu" and loaded[0] != ORT_PROVIDERS[use][0]:
            why = f" ({preloaded.splitlines()[0]})" if preloaded else ""
            raise RetryableError(
                f"the {ORT_PROVIDERS[use][0]} did not load (missing CUDA/cuDNN/TensorRT libraries or no GPU{why}); "
                "install gvr[cuda] or retry on a GPU node, or run with --backend ort-cpu"
            )
        if self.provider == "auto" and use == "cpu" and "CUDAExecutionProvider" in available:
            note = "the CUDA provider did not load (no GPU or CUDA libraries); running on CPU"
        buffers = self.device_buffers
        if buffers == "auto":
            buffers = None if use == "cpu" else "cuda"
        lr_max = self.lr_max if use == "tensorrt" else None  # TensorRT's profile bounds the clips it takes
        return OrtModel(manifest, sessions, f"onnxruntime {loaded[0]}", precision, note, latent_device=buffers, device_id=self.device_id, lr_max=lr_max)

    def _options(self, ort, strict: bool, verbose: bool = False):
        opts = ort.SessionOptions()
        opts.log_severity_level = 0 if verbose else 4  # fatal only: gvr reports failures itself, in one line
        opts.intra_op_num_threads = self.threads
        # ORT's pool threads spin for a while after each run; on a small CPU that spinning steals
        # the cores the decode/encode threads and the sampler's numpy work need between calls.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # fp32 stays fp32 on every CPU: MLAS may otherwise run fp32 GEMMs in bf16 where the CPU has
        # fast bf16 (its arm64 "fastmath" mode; off by default today, pinned so a default cannot change it).
        opts.add_session_config_entry("mlas.enable_gemm_fastmath_arm64_bfloat16", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ORT's memory pattern pre-plans one block per input shape on top of its arena: at 8 x
        # 960x540 it took the step's peak from 2.2 to 4.0 GB and its first call from 1.7 to 4.2 s,
        # for no steady-state gain (1.28 vs 1.30 s per step, a session alone).
        opts.enable_mem_pattern = False
        if strict:  # a node the GPU provider cannot run fails the session instead of running on the CPU
            opts.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        return opts

    def _session(self, ort, path: Path, providers, strict: bool, verbose: bool = False):
        opts = self._options(ort, strict, verbose)
        try:
            return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as e:  # ORT raises its own exception types for unloadable graphs
            if strict and CPU_FALLBACK_MARKER in str(e):
                raise CpuFallback(str(e)) from None
            _raise_if_oom(e)
            raise ModelError(f"model {path}: ONNX Runtime cannot load it ({first_line(e)})") from None

    def _provider_list(self, use: str, manifest: ModelManifest, role: str, precision: str) -> list:
        cuda = ("CUDAExecutionProvider", {"device_id": self.device_id})
        if use == "cuda":
            return [cuda]
        cache = self.trt_cache or default_trt_cache()  # None: GVR_TRT_CACHE=off, built every run
        if cache is not None:
            try:
                Path(cache).mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise UsageError(f"--trt-cache {cache}: cannot create it ({e.strerror})") from None
            odd = irregular_entry(Path(cache))  # TensorRT opens its engines itself: see OpenVinoBackend._cache_config
            if odd:
                self.cache_note, cache = f"engine cache not used this run: {odd} (building without it)", None
        trt = {
            "device_id": self.device_id,
            "trt_fp16_enable": precision == "fp16",
            "trt_bf16_enable": precision == "bf16",  # a bf16 artefact: TensorRT builds bf16 layers only when asked
            **({"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)} if cache is not None else {}),
            **trt_profiles(manifest, role, self.frames, self.lr_max),
        }
        return [("TensorrtExecutionProvider", trt), cuda]

    def _gpu_session(self, ort, path: Path, use: str, manifest, role: str, precision: str):
        """A session whose every node runs on the GPU provider(s): strict (CPU fallback disabled)
        first; if ORT refuses, the placement is read from its own log (``placement``) to tell ORT's
        deliberate CPU shape arithmetic (int64 Shape/Gather/Concat... on dynamic shapes, which the
        CUDA provider leaves to the CPU by design: allowed, with a note) from a tensor op the GPU
        provider cannot run (refused, naming the nodes). Returns (session, shape nodes on CPU)."""
        from gvrcli.inference.placement import cpu_nodes, explain_fallback

        providers = self._provider_list(use, manifest, role, precision)
        try:
            return self._session(ort, path, providers, strict=True), 0
        except CpuFallback:
            pass
        shape_nodes, compute_nodes = cpu_nodes(lambda **kw: self._session(ort, path, providers, strict=False, **kw), path)
        if compute_nodes:
            raise ModelError(explain_fallback(path, ORT_PROVIDERS[use][0], compute_nodes))
        return self._session(ort, path, providers, strict=False), len(shape_nodes)


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


# ORT's message when a node lands on the CPU with fallback disabled (onnxruntime inference_session.cc).
CPU_FALLBACK_MARKER = "fallback to CPU EP has been explicitly disabled"


class CpuFallback(Exception):
    """A strict GPU session was refused: some node would run on the CPU."""


@dataclass
class OrtModel:
    manifest: ModelManifest
    sessions: dict  # role -> InferenceSession
    description: str
    precision: str
    note: str = ""
    activation_factor: float = ACTIVATION_FACTOR["onnxruntime"]
    activation_fixed_mb: float = ACTIVATION_FIXED_MB["onnxruntime"]
    latent_device: str | None = None  # where the engine keeps the sampler's latents ("cuda", "cpu" OrtValues), None = host numpy
    device_id: int = 0
    lr_max: tuple[int, int] | None = None  # largest LR tile the graphs take (TensorRT's profile)
    _in_flight: set = field(default_factory=set, repr=False)
    _shrink: set = field(default_factory=set, repr=False)  # roles whose runs give their arena memory back

    def release(self, role: str) -> None:
        """Let ``role``'s runs give their working memory back when they end (the arena shrinks to what
        is in use), at some cost per run: for graphs run in bursts (the tiled VAE, gvrcli.inference.vae_plan)."""
        self._shrink.add(role)

    def bind(self, role, inputs, outputs) -> "OrtBound":
        """An IOBinding: ORT reads the inputs and writes the outputs in place. A value is a host
        float32 numpy buffer, or an ``OrtValue`` from ``device_buffer`` (on the device: no copy)."""
        session = self.sessions[role]
        binding = session.io_binding()
        for name, value in inputs.items():
            if isinstance(value, np.ndarray):
                binding.bind_cpu_input(name, _f32(value))
            else:
                binding.bind_ortvalue_input(name, value)
        for name, value in outputs.items():
            if isinstance(value, np.ndarray):
                binding.bind_output(name, "cpu", 0, np.float32, list(_f32(value).shape), value.ctypes.data)
            else:
                binding.bind_ortvalue_output(name, value)
        return OrtBound(self, session, binding, role in self._shrink)

    def device_buffer(self, shape, values: np.ndarray | None = None):
        """A float32 ``OrtValue`` on this model's device (allocated once, reused by the engine),
        filled from ``values`` (a host copy) if given."""
        import onnxruntime as ort

        if values is not None:
            return ort.OrtValue.ortvalue_from_numpy(_f32(np.ascontiguousarray(values)), self.latent_device, self.device_id)
        return ort.OrtValue.ortvalue_from_shape_and_type(list(shape), np.float32, self.latent_device, self.device_id)

    def interrupt(self) -> None:
        for options in list(self._in_flight):
            options.terminate = True  # ORT checks it between kernels and fails the run


@dataclass
class OrtBound:
    model: OrtModel
    session: object
    binding: object
    shrink: bool = False

    def run(self) -> None:
        import onnxruntime as ort

        options = ort.RunOptions()
        if self.shrink:
            options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.model._in_flight.add(options)
        try:
            self.session.run_with_iobinding(self.binding, options)
        except Exception as e:
            _raise_if_oom(e)
            raise
        finally:
            self.model._in_flight.discard(options)


def _f32(value: np.ndarray) -> np.ndarray:
    if value.dtype != np.float32 or not value.flags.c_contiguous:
        raise ValueError("bound buffers must be C-contiguous float32")  # a copy would silently unbind them
    return value


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


# Clips at least this large (output pixels x frames) run on a copy of the graph compiled for their
# exact shape: the CPU plugin then plans its memory statically, and a step at 8 x 960x540 needs
# ~45% less of it (640 vs 1140 MB). A compiled copy holds that memory, so one is kept per role (and
# each thread's request for the role follows it): a new shape costs a compile (a second or two; a
# video has one or two shapes: full chunks, the last chunk; tiles share a size). Keeping four cut
# the sample job's recompiles but peaked at 3.7 GB instead of 2.4. Smaller clips (the load-time
# check) use the dynamic graph.
STATIC_MIN_ELEMENTS = 1 << 20
STATIC_CACHE = 1  # compiled shapes kept per role


@dataclass
class OpenVinoModel:
    manifest: ModelManifest
    compiled: dict  # role -> CompiledModel (dynamic shapes)
    description: str
    precision: str
    note: str = ""
    activation_factor: float = ACTIVATION_FACTOR["openvino"]
    activation_fixed_mb: float = ACTIVATION_FIXED_MB["openvino"]
    core: object = None
    graphs: dict = field(default_factory=dict)  # role -> openvino.Model, to specialise per shape
    device: str = "CPU"
    config: dict = field(default_factory=dict)
    _static: dict = field(default_factory=dict, repr=False)  # (role, shapes) -> CompiledModel
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _interrupted: threading.Event = field(default_factory=threading.Event, repr=False)

    def bind(self, role, inputs, outputs) -> "OpenVinoBound":
        """Tensors sharing our buffers' memory, set on the thread's request for the role and shape at
        each run (requests are not shareable between threads, and each holds its own activation
        memory, so ping-pong bindings share one)."""
        import openvino as ov

        compiled = self._compiled_for(role, {k: v.shape for k, v in inputs.items()})
        tensors = {name: ov.Tensor(_f32(value), shared_memory=True) for name, value in {**inputs, **outputs}.items()}
        return OpenVinoBound(self, role, compiled, tensors, tuple(outputs), {k: v.shape for k, v in outputs.items()})

    def prepare(self, role: str, shapes: dict[str, tuple]) -> None:
        """Compile now the graph a later ``bind`` of these input shapes will run."""
        self._compiled_for(role, shapes)

    def _compiled_for(self, role: str, shapes: dict[str, tuple]):
        if role not in self.graphs or max(int(np.prod(s)) for s in shapes.values()) < STATIC_MIN_ELEMENTS:
            return self.compiled[role]
        key = (role, tuple(sorted(shapes.items())))
        with self._lock:
            if key not in self._static:
                import openvino as ov

                graph = self.graphs[role].clone()
                graph.reshape({i: ov.PartialShape(list(shapes[_tensor_name(i, shapes)])) for i in graph.inputs})
                mine = [k for k in self._static if k[0] == role]
                if len(mine) >= STATIC_CACHE:
                    del self._static[mine[0]]
                self._static[key] = self.core.compile_model(graph, self.device, self.config)
            return self._static[key]

    def request(self, role: str, compiled):
        """This thread's infer request for ``role`` on ``compiled``: one per role, replaced (with its
        activation memory) when the role's shape changes."""
        requests = self._local.__dict__.setdefault("requests", {})
        held = requests.get(role)
        if held is None or held[0] is not compiled:
            requests.pop(role, None)  # free the old activations before the new request allocates
            requests[role] = (compiled, compiled.create_infer_request())
        return requests[role][1]

    def release(self, role: str) -> None:
        """Free ``role``'s working memory now: this thread's infer request and the role's static
        copy (the next run makes them again): for graphs run in bursts (the tiled VAE)."""
        self._local.__dict__.get("requests", {}).pop(role, None)
        with self._lock:
            for key in [k for k in self._static if k[0] == role]:
                del self._static[key]

    def interrupt(self) -> None:
        self._interrupted.set()


def _tensor_name(port, names) -> str:
    """Our name for a graph port (a port may carry several tensor names; the frontend adds its own)."""
    return next(n for n in port.get_names() if n in names)


@dataclass
class OpenVinoBound:
    model: OpenVinoModel
    role: str
    compiled: object
    tensors: dict
    outputs: tuple
    shapes: dict  # output name -> the bound buffer's shape

    def run(self) -> None:
        compiled = self.compiled
        request = self.model.request(self.role, compiled)
        for name, tensor in self.tensors.items():
            if name in self.outputs:
                request.set_tensor(compiled.output(name), tensor)
            else:
                request.set_tensor(compiled.input(name), tensor)
        try:
            # Asynchronous, polled, so an interrupt can cancel a long inference.
            request.start_async()
            while not request.wait_for(100):
                if self.model._interrupted.is_set():
                    request.cancel()
                    raise RuntimeError("inference cancelled")
        except RuntimeError as e:
            _raise_if_oom(e)
            raise
        for name in self.outputs:  # OpenVINO shrinks a bound tensor to fit a smaller result, silently
            shape = tuple(request.get_tensor(compiled.output(name)).shape)
            if shape != self.shapes[name]:
                raise ValueError(f"graph output {name} has shape {shape}, the bound buffer {self.shapes[name]}")


# --------------------------------------------------------------------------------------------------
# Checks and choice
# --------------------------------------------------------------------------------------------------


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
