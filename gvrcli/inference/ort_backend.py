"""ONNX Runtime's backend: which execution provider runs each graph, and the sessions built for it.

``OrtBackend`` is a small dataclass of knobs (provider, GPU, threads, precision, TensorRT's cache
and shape profile); ``load`` turns it into an ``OrtModel`` (``gvrcli.inference.ort_model``).
Everything here exists because ONNX Runtime is quiet about what it did: it silently falls back to
the CPU when CUDA libraries are missing, which on a farm would turn a GPU job into a 50x slower one
without a word. So the provider that was asked for must really load (a requested GPU that is not
there is exit 75: retry elsewhere), and on a GPU provider every node runs on the GPU or the model
is refused, naming the nodes (``gvrcli.inference.placement``); only ONNX Runtime's own integer
shape arithmetic may stay on the CPU, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from models.manifest import STEP, ModelManifest

from gvrbase.errors import first_line
from gvrcli.errors import ModelError, RetryableError, UsageError
from gvrcli.inference.caches import compiled_cache, irregular_entry
from gvrbase.devices import gpu_present
from gvrcli.inference.gpu import preload_cuda_libraries
from gvrcli.inference.loaded import OnDemand, raise_if_oom
from gvrcli.inference.modelfile import graph_paths, read_manifest
from gvrcli.inference.ort_model import OrtModel
from gvrcli.inference.precision import artefact_precision


# --provider choice -> the ONNX Runtime execution providers it needs, first to last.
ORT_PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider",),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider"),  # CUDA runs what TensorRT does not take
}


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
        paths = graph_paths(self.model_path, manifest)

        def load(role: str):
            if use == "cpu":
                return self._session(ort, paths[role], [("CPUExecutionProvider", {})], strict=False), 0
            return self._gpu_session(ort, paths[role], use, manifest, role, precision)

        for role in paths:
            sessions[role], shape_math[role] = load(role)
        sessions = OnDemand(sessions, lambda role: load(role)[0])
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
            raise_if_oom(e)
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


# ORT's message when a node lands on the CPU with fallback disabled (onnxruntime inference_session.cc).
CPU_FALLBACK_MARKER = "fallback to CPU EP has been explicitly disabled"


class CpuFallback(Exception):
    """A strict GPU session was refused: some node would run on the CPU."""
