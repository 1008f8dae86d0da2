"""Inference backends: one small dataclass per runtime, each loading a model into a ``Denoiser``.

A ``Denoiser`` runs one denoiser step of the exported graph:
``denoiser(z_t, t, lr, lr_noise, noise_aug, out=velocity)`` on float32 NCTHW numpy arrays,
writing the velocity into ``out`` (the engine reuses one buffer rather than allocating per step).
Each backend checks that the provider or device it was asked for really loaded: ONNX Runtime
silently falls back to CPU when CUDA libraries are missing, which on a farm would turn a GPU job
into a 50x slower one without a word. A requested GPU that is not there is exit 75 (retry
elsewhere); ``auto`` takes the GPU when it loads and says which it got.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from models.manifest import ModelManifest

from gvrcli.errors import ModelError, RetryableError, UsageError
from gvrcli.inference.modelfile import read_manifest

BACKENDS = ("auto", "ort-cuda", "ort-cpu", "openvino")


class Denoiser(Protocol):
    manifest: ModelManifest
    description: str  # e.g. "onnxruntime CPUExecutionProvider"
    note: str  # a fallback worth telling the user about, or ""

    def __call__(self, z_t, t, lr, lr_noise, noise_aug, out: np.ndarray) -> np.ndarray: ...

    def interrupt(self) -> None:
        """Abort the calls in flight (from another thread): SIGTERM must not wait out a long step."""


_OOM_MARKERS = ("out of memory", "failed to allocate", "bad_alloc", "cudaerrormemoryallocation")


def _raise_if_oom(e: Exception) -> None:
    if any(m in str(e).lower() for m in _OOM_MARKERS):
        raise RetryableError(
            f"device out of memory ({str(e).strip().splitlines()[0][:160]}); "
            "retry, or lower --memory-budget / --tile"
        ) from None


_arena_lock = threading.Lock()
_arena_registered = False


def _shared_cpu_arena(ort) -> bool:
    """Register (once per process) a CPU arena that grows by exactly what is requested.

    ORT's default arena rounds each extension up to a power of two and keeps growing over the
    first dozen calls, so a long video peaked ~20% above a short one. Growing by what is asked
    plateaus after a few calls and was also the fastest of the three settings measured (1.04 s a
    call vs 1.26 default vs 1.48 without an arena: tiny default, 20 x 192x320 frames, 2 cores).
    """
    global _arena_registered
    with _arena_lock:
        if not _arena_registered:
            try:
                cfg = ort.OrtArenaCfg({"arena_extend_strategy": 1})  # 1 = kSameAsRequested
                info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
                ort.create_and_register_allocator(info, cfg)
                _arena_registered = True
            except (AttributeError, RuntimeError, TypeError):
                return False  # an ONNX Runtime without it: its default arena serves
        return True


@dataclass
class OrtBackend:
    """ONNX Runtime. Knobs: ``provider`` (cuda, cpu, or auto = CUDA when it loads, else CPU),
    ``device_id`` (which GPU), ``threads`` (CPU intra-op threads, 0 = one per core)."""

    model_path: Path
    provider: str = "auto"
    device_id: int = 0
    threads: int = 0

    def load(self, manifest: ModelManifest | None = None) -> "OrtDenoiser":
        import onnxruntime as ort

        manifest = manifest or read_manifest(self.model_path)
        # ORT logs a multi-line CUDA load failure to stderr by itself; we say it in one line instead.
        ort.set_default_logger_severity(4)
        opts = ort.SessionOptions()
        opts.log_severity_level = 4  # fatal only: gvr reports failures itself, in one line
        opts.intra_op_num_threads = self.threads
        # ORT's pool threads spin for a while after each run; on a small CPU that spinning steals
        # the cores the decode/encode threads and the sampler's numpy work need between calls.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if _shared_cpu_arena(ort):
            opts.add_session_config_entry("session.use_env_allocators", "1")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        want_cuda = self.provider in ("auto", "cuda")
        available = ort.get_available_providers()
        providers: list = ["CPUExecutionProvider"]
        if want_cuda and "CUDAExecutionProvider" in available:
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.device_id}))
        elif self.provider == "cuda":
            raise RetryableError(
                f"ONNX Runtime has no CUDA provider here (available: {', '.join(available)}); "
                "install onnxruntime-gpu with CUDA, or run with --backend ort-cpu"
            )
        try:
            session = ort.InferenceSession(str(self.model_path), sess_options=opts, providers=providers)
        except Exception as e:  # ORT raises its own exception types for unloadable graphs
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise ModelError(f"model {self.model_path}: ONNX Runtime cannot load it ({first})") from None
        loaded = session.get_providers()
        if self.provider == "cuda" and "CUDAExecutionProvider" not in loaded:
            raise RetryableError(
                "the CUDA execution provider did not load (missing CUDA/cuDNN libraries or no GPU); "
                "retry on a GPU node, or run with --backend ort-cpu"
            )
        note = ""
        if self.provider == "auto" and "CUDAExecutionProvider" in available and "CUDAExecutionProvider" not in loaded:
            note = "the CUDA provider did not load (no GPU or CUDA libraries); running on CPU"
        return OrtDenoiser(manifest, session, f"onnxruntime {loaded[0]}", note)


@dataclass
class OrtDenoiser:
    manifest: ModelManifest
    session: object
    description: str
    note: str = ""  # a fallback worth telling the user about
    _dtypes: dict = field(default_factory=dict, repr=False)

    _in_flight: set = field(default_factory=set, repr=False)

    def interrupt(self) -> None:
        for options in list(self._in_flight):
            options.terminate = True  # ORT checks it between kernels and fails the run

    def __post_init__(self):
        # fp16 exports may take half-precision inputs; the runtime keeps float32 everywhere else.
        self._dtypes = {
            i.name: (np.float16 if i.type == "tensor(float16)" else np.float32) for i in self.session.get_inputs()
        }

    def __call__(self, z_t, t, lr, lr_noise, noise_aug, out=None) -> np.ndarray:
        feeds = {"z_t": z_t, "t": t, "lr": lr, "lr_noise": lr_noise, "noise_aug": noise_aug}
        feeds = {k: np.ascontiguousarray(v, dtype=self._dtypes.get(k, np.float32)) for k, v in feeds.items()}
        fp32_out = self._dtypes.get("z_t") == np.float32
        import onnxruntime as ort

        options = ort.RunOptions()
        self._in_flight.add(options)
        try:
            if out is None or not fp32_out:
                (velocity,) = self.session.run(["velocity"], feeds, options)
                if out is None:
                    return velocity.astype(np.float32, copy=False)
                out[...] = velocity
                return out
            # Bind our buffer as the output: ONNX Runtime writes the velocity straight into it.
            binding = self.session.io_binding()
            for name, value in feeds.items():
                binding.bind_cpu_input(name, value)
            binding.bind_output("velocity", "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
            self.session.run_with_iobinding(binding, options)
            return out
        except Exception as e:
            _raise_if_oom(e)
            raise
        finally:
            self._in_flight.discard(options)


@dataclass
class OpenVinoBackend:
    """OpenVINO. Knobs: ``device`` (CPU, GPU, AUTO), ``threads`` (CPU inference threads, 0 = default).
    Reads OpenVINO IR (.xml + .bin) or an ONNX file directly."""

    model_path: Path
    device: str = "AUTO"
    threads: int = 0

    def load(self, manifest: ModelManifest | None = None) -> "OpenVinoDenoiser":
        import openvino as ov

        manifest = manifest or read_manifest(self.model_path)
        core = ov.Core()
        device = self.device.upper()
        available = core.available_devices
        if device not in ("AUTO", "CPU") and not any(d == device or d.startswith(device + ".") for d in available):
            raise RetryableError(
                f"OpenVINO device {device} is not available (available: {', '.join(available)}); "
                "retry on a node that has it, or use --device CPU"
            )
        config = {"INFERENCE_NUM_THREADS": self.threads} if self.threads and device == "CPU" else {}
        if device in ("CPU", "AUTO"):
            # The CPU plugin defaults to bf16 on CPUs with AMX (Sapphire Rapids and later), which
            # is ~1e-3 off; the exports are verified in fp32.
            config["INFERENCE_PRECISION_HINT"] = "f32"
        try:
            compiled = core.compile_model(str(self.model_path), device, config)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else "unknown error"
            raise ModelError(f"model {self.model_path}: OpenVINO cannot compile it for {device} ({first})") from None
        try:
            devices = compiled.get_property("EXECUTION_DEVICES")
        except RuntimeError:
            devices = [device]
        return OpenVinoDenoiser(manifest, compiled, f"openvino {','.join(devices)}")


@dataclass
class OpenVinoDenoiser:
    manifest: ModelManifest
    compiled: object
    description: str
    note: str = ""
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _interrupted: threading.Event = field(default_factory=threading.Event, repr=False)

    def interrupt(self) -> None:
        self._interrupted.set()

    def __call__(self, z_t, t, lr, lr_noise, noise_aug, out=None) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:  # one infer request per thread: requests are not shareable (--jobs > 1)
            request = self._local.request = self.compiled.create_infer_request()
        feeds = {"z_t": z_t, "t": t, "lr": lr, "lr_noise": lr_noise, "noise_aug": noise_aug}
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()}
        try:
            # Asynchronous, polled, so an interrupt can cancel a long inference.
            request.start_async(feeds)
            while not request.wait_for(100):
                if self._interrupted.is_set():
                    request.cancel()
                    raise RuntimeError("inference cancelled")
        except RuntimeError as e:
            _raise_if_oom(e)
            raise
        velocity = request.get_tensor(self.compiled.output("velocity")).data
        if out is None:
            return np.array(velocity, dtype=np.float32, copy=True)
        out[...] = velocity
        return out


def check_denoiser(denoiser: Denoiser, source: Path) -> None:
    """One step on a small input before any video: a graph that disagrees with its manifest (another
    scale, other channels) is a model error (exit 2), not a failure of every file."""
    m = denoiser.manifest
    C, T, h, w, s = m.latent_channels, 1, m.patch * m.window[0], m.patch * m.window[1], m.scale
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1, C, T, h * s, w * s), dtype=np.float32)
    lr = rng.standard_normal((1, C, T, h, w), dtype=np.float32)
    level = np.array([m.noise_aug], dtype=np.float32)
    try:
        velocity = denoiser(z, np.array([1.0], dtype=np.float32), lr, lr, level)
    except RetryableError:
        raise
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ModelError(
            f"model {source}: a test step at the manifest's scale x{s} fails; the graph does not match "
            f"its manifest ({first})"
        ) from None
    if tuple(velocity.shape) != z.shape or not np.isfinite(velocity).all():
        raise ModelError(
            f"model {source}: a test step returns shape {tuple(velocity.shape)} (expected {z.shape}, "
            f"x{s} of the input as the manifest says) or non-finite values"
        )


def make_backend(model_path: Path, backend: str = "auto", device: str = "AUTO", threads: int = 0):
    """The backend dataclass for a ``--backend`` choice (auto: OpenVINO for .xml, ONNX Runtime otherwise)."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
    if backend == "auto":
        backend = "openvino" if Path(model_path).suffix.lower() == ".xml" else "ort-auto"
    if backend == "openvino":
        return OpenVinoBackend(model_path, device=device, threads=threads)
    if Path(model_path).suffix.lower() == ".xml":
        raise UsageError(f"--backend {backend} runs ONNX files; {model_path} is OpenVINO IR (use --backend openvino)")
    provider = {"ort-cuda": "cuda", "ort-cpu": "cpu"}.get(backend, "auto")
    if device.upper() == "GPU" and provider == "auto":
        provider = "cuda"
    elif device.upper() == "CPU" and provider == "auto":
        provider = "cpu"
    return OrtBackend(model_path, provider=provider, threads=threads)
