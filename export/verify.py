"""Does the exported graph compute what the PyTorch network computes?

``verify_export`` gives a copy of the network random weights (``models.init_random_``: every
parameter, the zero-initialised head included, so the whole transformer is exercised, not just the
untrained default's identity path), exports it exactly as asked into a temporary folder and runs
PyTorch, ONNX Runtime (CPU; CUDA too when a GPU answers) and OpenVINO CPU on the same random inputs
at two shapes, reporting max abs and relative L2 errors against PyTorch.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from export.spec import TOLERANCE, VERIFY_SHAPES, DenoiserSpec, rel_l2


@dataclass
class Check:
    backend: str
    shape: tuple[int, int, int]  # (T, h, w) of the LR latent
    max_abs: float
    rel_l2: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.rel_l2 <= self.tolerance

    def line(self) -> str:
        verdict = "ok" if self.ok else "FAIL"
        T, h, w = self.shape
        return f"{self.backend:<22} T,h,w={T},{h},{w}  max abs {self.max_abs:.2e}  rel L2 {self.rel_l2:.2e}  (tol {self.tolerance:.0e}) {verdict}"


@dataclass
class VerifyReport:
    checks: list[Check] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # backend -> why it did not run

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def lines(self) -> list[str]:
        return [c.line() for c in self.checks] + [f"{b:<22} skipped: {why}" for b, why in self.skipped.items()]


def backends_for(target: str, path: Path, threads: int = 0):
    """The runtimes that can run ``path``: (backends, skipped)."""
    from export.backends import OpenVINOBackend, OrtBackend, cuda_usable

    skipped = {}
    if target == "onnx":
        backends = [OrtBackend(path, "CPUExecutionProvider", threads)]
        if cuda_usable():
            backends.append(OrtBackend(path, "CUDAExecutionProvider"))
        else:
            skipped["onnxruntime-cuda"] = "no usable GPU / CUDA provider here"
        backends.append(OpenVINOBackend(path, threads=threads))  # through OpenVINO's ONNX frontend
    else:
        xml = next(path.glob("*.xml")) if path.is_dir() else path
        backends = [OpenVINOBackend(xml, threads=threads)]
    return backends, skipped


def compare(model, backends, shapes, precision: str = "fp32", seed: int = 0, skipped=None) -> VerifyReport:
    """Run every backend and PyTorch (fp32) on the same random inputs at each shape."""
    import numpy as np

    from export.backends import TorchBackend

    cfg = model.config
    spec = DenoiserSpec(cfg.latent_channels, cfg.scale)
    reference = TorchBackend(model)
    report = VerifyReport(skipped=dict(skipped or {}))
    for i, shape in enumerate(shapes):
        feed = spec.dummy_inputs(*shape, seed=seed + i)
        expected = reference.run(feed)
        for backend in backends:
            got = backend.run(feed)
            if got.shape != expected.shape:
                report.checks.append(Check(backend.name, tuple(shape), float("inf"), float("inf"), TOLERANCE[precision]))
                continue
            report.checks.append(
                Check(backend.name, tuple(shape), float(np.abs(got - expected).max()), rel_l2(got, expected), TOLERANCE[precision])
            )
    return report


def verify_export(target: str, model, *, seed: int = 0, shapes=None, threads: int = 0, **export_kwargs) -> VerifyReport:
    """Export a random-weight copy of ``model`` like ``export_model`` would and compare backends."""
    from models.checkpoint import init_random_

    from export.targets import TARGETS

    randomised = init_random_(copy.deepcopy(model), seed=seed).eval()
    dynamic = export_kwargs.get("dynamic", True)
    shapes = shapes or (VERIFY_SHAPES if dynamic else (export_kwargs["static_shape"],))
    spec = TARGETS[target]
    with tempfile.TemporaryDirectory(prefix="gvr-verify-") as tmp:
        stage = Path(tmp) / ("model" if spec.is_dir else "model.onnx")
        spec.run(randomised, stage, stem="model", **export_kwargs)
        backends, skipped = backends_for(target, stage, threads)
        return compare(randomised, backends, shapes, export_kwargs.get("precision", "fp32"), seed, skipped)
