"""Does the exported graph compute what the PyTorch network computes?

``export.targets.verify_export`` gives a copy of the network random weights (``models.init_random_``:
every parameter, the zero-initialised head included, so the whole transformer is exercised, not
just the untrained default's identity path) and exports it exactly as asked into a temporary
folder; this module runs PyTorch, ONNX Runtime (CPU; CUDA too when a GPU answers) and OpenVINO CPU
on the same random inputs at two shapes (``compare``), reporting max abs and relative L2 errors
against PyTorch. The VAE's verification (``export.vae.verify_vae_export``) uses the same report.
Nothing here imports the exporters, so both (``export.targets``, ``export.vae``) import it downward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from export.progress import OnStage, silent
from export.spec import TOLERANCE, VERIFY_HR, DenoiserSpec, rel_l2


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


def graph_files(target: str, path: Path) -> dict[str, Path]:
    """role -> file of every graph of an export at ``path`` (an .onnx file or an OpenVINO folder)."""
    from models.manifest import STEP, companion_name

    main = next(p for p in sorted(path.glob("*.xml")) if p.name.count(".") == 1) if path.is_dir() else path
    graphs = {role: main.with_name(companion_name(main.name, role)) for role in ("condition", "text")}
    return {**{role: p for role, p in graphs.items() if p.exists()}, STEP: main}


def backends_for(target: str, path: Path, threads: int = 0, precision: str = "fp32"):
    """The runtimes that can run the graph file ``path``: (backends, skipped). OpenVINO is pinned
    to f32 arithmetic (a half-precision graph's Casts still round what they round), so the check
    does not depend on the CPU."""
    from export.backends import OpenVINOBackend, OrtBackend, cuda_usable

    skipped = {}
    if target == "onnx":
        backends = []
        missing = cpu_unimplemented(path) if precision == "bf16" else ""
        if missing:  # ORT's CPU provider lacks most bf16 kernels: say which this graph needs
            skipped["onnxruntime-cpu"] = f"ONNX Runtime's CPU provider has no bf16 kernels for {missing}"
        else:  # fp16: nodes without a CPU fp16 kernel run in fp32 between Casts ORT inserts
            backends.append(OrtBackend(path, "CPUExecutionProvider", threads))
        if cuda_usable():
            backends.append(OrtBackend(path, "CUDAExecutionProvider"))
        else:
            skipped["onnxruntime-cuda"] = "no usable GPU / CUDA provider here"
        backends.append(OpenVINOBackend(path, threads=threads))  # through OpenVINO's ONNX frontend
    else:
        backends = [OpenVINOBackend(path, threads=threads)]
    return backends, skipped


def cpu_unimplemented(path: Path) -> str:
    """The ops (and types) of the graph at ``path`` that this ONNX Runtime's CPU provider cannot
    run, counted ("" when it runs them all): ``export.kernel_coverage.unimplemented``."""
    import onnx

    from export.kernel_coverage import summary, unimplemented

    return summary(unimplemented(onnx.load(str(path), load_external_data=False)))


def compare(model, graphs: dict, shapes, precision: str = "fp32", seed: int = 0, skipped=None, on_stage: OnStage = silent) -> VerifyReport:
    """Run every backend of every graph (``graphs``: role -> backends) and the PyTorch fp32 graph on
    the same random inputs at each shape. The step graph is judged on its update ``z_next - z_t``
    (the network's contribution), not on z_next, whose z_t part would hide an error.
    ``on_stage("verifying", done, total)`` counts the checks."""
    from export.backends import TorchBackend
    from export.graphs import graph_module
    from models.manifest import STEP

    spec = DenoiserSpec.of(model.config)
    report = VerifyReport(skipped=dict(skipped or {}))
    total = sum(len(backends) for backends in graphs.values()) * len(shapes)
    on_stage("verifying", 0, total)
    for role, backends in graphs.items():
        reference = TorchBackend(graph_module(model, role))
        for i, shape in enumerate(shapes):
            feed = spec.dummy_inputs(role, *shape, seed=seed + i, hr=VERIFY_HR.get(i) if len(shapes) > 1 else None)
            expected = reference.run(feed)
            for backend in backends:
                got = backend.run(feed)
                if [g.shape for g in got] != [e.shape for e in expected]:
                    report.checks.append(Check(f"{backend.name} {role}", tuple(shape), float("inf"), float("inf"), TOLERANCE[precision]))
                    on_stage("verifying", len(report.checks), total)
                    continue
                if role == STEP:
                    got, expected_ = [g - feed["z_t"] for g in got], [e - feed["z_t"] for e in expected]
                else:
                    expected_ = expected
                a, e = np.concatenate([g.ravel() for g in got]), np.concatenate([x.ravel() for x in expected_])
                report.checks.append(Check(f"{backend.name} {role}", tuple(shape), float(np.abs(a - e).max()), rel_l2(a, e), TOLERANCE[precision]))
                on_stage("verifying", len(report.checks), total)
    return report
