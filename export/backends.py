"""The runtimes an export is checked on, one small dataclass each, with an explicit check that the
requested provider or device really loaded (ONNX Runtime falls back to CPU silently otherwise)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from export.errors import ExportError


@dataclass
class TorchBackend:
    """PyTorch eager, the reference. Knob: threads (torch's intra-op pool)."""

    model: object  # a module: one of export.graphs' graphs
    name: str = "pytorch"

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.inference_mode():
            out = self.model(**{k: torch.from_numpy(v) for k, v in feed.items()})
        return [o.float().numpy() for o in (out if isinstance(out, tuple) else (out,))]


@dataclass
class OrtBackend:
    """ONNX Runtime. Knobs: provider (CPU or CUDA), intra-op threads (0 = all cores), optimisation
    level (ORT_ENABLE_ALL: constant folding and its own fusions on top of our fused Attention)."""

    path: Path
    provider: str = "CPUExecutionProvider"
    threads: int = 0
    _session: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return "onnxruntime-" + self.provider.removesuffix("ExecutionProvider").lower()

    def load(self):
        import onnxruntime as ort

        if self._session is None:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.intra_op_num_threads = self.threads
            opts.add_session_config_entry("mlas.enable_gemm_fastmath_arm64_bfloat16", "0")  # fp32 GEMMs stay fp32
            opts.log_severity_level = 3
            session = ort.InferenceSession(str(self.path), opts, providers=[self.provider])
            if session.get_providers()[0] != self.provider:
                raise ExportError(f"onnxruntime did not load {self.provider} (got {session.get_providers()})")
            self._session = session
        return self._session

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [o.astype(np.float32) for o in self.load().run(None, feed)]


def cuda_usable() -> bool:
    """True when ONNX Runtime's CUDA provider is built in *and* a GPU answers (not just listed):
    the runtime's own check, ``gvrbase.devices.gpu_present``."""
    from gvrbase.devices import gpu_present

    return gpu_present()


@dataclass
class OpenVINOBackend:
    """OpenVINO. Knobs: device ("CPU"), inference precision (f32 for verification: the CPU plugin
    would pick bf16 on AMX/AVX512-BF16 machines), threads (0 = plugin default)."""

    path: Path  # .xml (IR) or .onnx (read through the ONNX frontend)
    device: str = "CPU"
    precision: str = "f32"
    threads: int = 0
    _compiled: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"openvino-{self.device.lower()}"

    def load(self):
        import openvino as ov

        if self._compiled is None:
            core = ov.Core()
            if self.device not in core.available_devices:
                raise ExportError(f"OpenVINO device {self.device} is not available (have {core.available_devices})")
            config = {"INFERENCE_PRECISION_HINT": self.precision}
            if self.threads:
                config["INFERENCE_NUM_THREADS"] = self.threads
            self._compiled = core.compile_model(core.read_model(str(self.path)), self.device, config)
        return self._compiled

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        compiled = self.load()
        request = compiled.create_infer_request()
        request.infer(feed)
        return [np.asarray(request.get_output_tensor(i).data, dtype=np.float32).copy() for i in range(len(compiled.outputs))]
