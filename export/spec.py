"""Export spec of the SimpleGVR denoiser step (in the manner of optimum's ONNX configs).

One place that says what the exported graph is: its inputs and outputs, which dimensions are
dynamic, the dummy inputs used to trace and to verify it, the tolerance per precision and the
minimum opset. Exporter, verifier, tests and benchmark all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.manifest import CONDITION, STEP, graph_io

# ONNX Attention (one fused node per attention call) exists from opset 23.
MIN_OPSET = 23
DEFAULT_OPSET = 23

# Relative L2 error allowed against PyTorch fp32, per exported precision. int8 is quantised
# (weights and, on OpenVINO, activations): a stated, looser bound, checked on the step's output.
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "int8": 5e-2}
PRECISIONS = tuple(TOLERANCE)

# Dynamic axes of every tensor, by name: (B,) for the scalars; (B, C, T, H, W) for the videos.
_HR, _LR = {2: "T", 3: "H", 4: "W"}, {2: "T", 3: "h", 4: "w"}
DYNAMIC_AXES = {
    "z_t": _HR, "cond": _HR, "base": _HR, "z_next": _HR,
    "t": {}, "t_next": {}, "noise_aug": {},
    "lr": _LR, "lr_noise": _LR,
}

# Tracing size of a dynamic export. Deliberately "generic": no two sizes equal and none of them 0/1,
# so torch.export's duck-sizing does not tie T to h or specialise a dimension, and T exceeds a
# temporal unit so both the padded and the shifted unit paths are traced.
TRACE_SHAPE = (7, 22, 30)  # (T, h, w) of the LR latent

# The two shapes verification runs at: one window-aligned-ish, one deliberately ragged.
VERIFY_SHAPES = ((6, 18, 26), (3, 11, 17))


@dataclass(frozen=True)
class DenoiserSpec:
    """Shapes of a model's graphs (``models.manifest.graph_io``) for ``channels`` latent channels,
    ``scale`` and ``prediction``; sizes are given as (T, h, w) of the LR latent."""

    channels: int
    scale: int
    prediction: str = "x0_residual"

    def names(self, role: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return graph_io(role, self.prediction)

    def input_shapes(self, role: str, T: int, h: int, w: int, batch: int = 1) -> dict[str, tuple[int, ...]]:
        C, s = self.channels, self.scale
        shapes = {"lr": (batch, C, T, h, w), "lr_noise": (batch, C, T, h, w), "t": (batch,), "t_next": (batch,), "noise_aug": (batch,)}
        shapes.update({k: (batch, C, T, s * h, s * w) for k in ("z_t", "cond", "base")})
        return {k: shapes[k] for k in self.names(role)[0]}

    def dummy_inputs(self, role: str, T: int, h: int, w: int, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
        """Random float32 inputs in the ranges the sampler produces (t in (0, 1], t_next < t, level
        in [0.3, 0.6], conditions in [-1, 1])."""
        rng = np.random.default_rng(seed)
        feed = {}
        for name, shape in self.input_shapes(role, T, h, w, batch).items():
            if name in ("z_t", "lr_noise"):
                feed[name] = rng.standard_normal(shape, dtype=np.float32)
            elif name in ("lr", "cond", "base"):
                feed[name] = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
            elif name == "t":
                feed[name] = rng.uniform(0.3, 1.0, shape).astype(np.float32)
            elif name == "t_next":
                feed[name] = (feed["t"] - rng.uniform(0.05, 0.3, shape)).astype(np.float32)
            else:  # noise_aug
                feed[name] = rng.uniform(0.3, 0.6, shape).astype(np.float32)
        return feed


ROLES = (CONDITION, STEP)


def rel_l2(actual: np.ndarray, expected: np.ndarray) -> float:
    """||actual - expected|| / ||expected|| in float64."""
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    return float(np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-30))
