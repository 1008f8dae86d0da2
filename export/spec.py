"""Export spec of the SimpleGVR denoiser step (in the manner of optimum's ONNX configs).

One place that says what the exported graph is: its inputs and outputs, which dimensions are
dynamic, the dummy inputs used to trace and to verify it, the tolerance per precision and the
minimum opset. Exporter, verifier, tests and benchmark all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.manifest import INPUT_NAMES, OUTPUT_NAMES

# ONNX Attention (one fused node per attention call) exists from opset 23.
MIN_OPSET = 23
DEFAULT_OPSET = 23

# Relative L2 error allowed against PyTorch fp32, per exported precision.
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2}
PRECISIONS = tuple(TOLERANCE)

# Dynamic axes of every input, by name: (B,) for the scalars; (B, C, T, H, W) for the videos.
DYNAMIC_AXES = {
    "z_t": {2: "T", 3: "H", 4: "W"},
    "t": {},
    "lr": {2: "T", 3: "h", 4: "w"},
    "lr_noise": {2: "T", 3: "h", 4: "w"},
    "noise_aug": {},
}

# Tracing size of a dynamic export. Deliberately "generic": no two sizes equal and none of them 0/1,
# so torch.export's duck-sizing does not tie T to h or specialise a dimension, and T exceeds a
# temporal unit so both the padded and the shifted unit paths are traced.
TRACE_SHAPE = (7, 22, 30)  # (T, h, w) of the LR latent

# The two shapes verification runs at: one window-aligned-ish, one deliberately ragged.
VERIFY_SHAPES = ((6, 18, 26), (3, 11, 17))


@dataclass(frozen=True)
class DenoiserSpec:
    """Shapes of one denoiser step for a network with ``channels`` latent channels and ``scale``."""

    channels: int
    scale: int

    input_names: tuple[str, ...] = INPUT_NAMES
    output_names: tuple[str, ...] = OUTPUT_NAMES

    def input_shapes(self, T: int, h: int, w: int, batch: int = 1) -> dict[str, tuple[int, ...]]:
        C, s = self.channels, self.scale
        video_lr = (batch, C, T, h, w)
        return {
            "z_t": (batch, C, T, s * h, s * w),
            "t": (batch,),
            "lr": video_lr,
            "lr_noise": video_lr,
            "noise_aug": (batch,),
        }

    def dummy_inputs(self, T: int, h: int, w: int, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
        """Random float32 inputs in the ranges the sampler produces (t in (0, 1], level in [0.3, 0.6])."""
        rng = np.random.default_rng(seed)
        shapes = self.input_shapes(T, h, w, batch)
        return {
            "z_t": rng.standard_normal(shapes["z_t"], dtype=np.float32),
            "t": rng.uniform(0.05, 1.0, shapes["t"]).astype(np.float32),
            "lr": rng.uniform(-1.0, 1.0, shapes["lr"]).astype(np.float32),
            "lr_noise": rng.standard_normal(shapes["lr_noise"], dtype=np.float32),
            "noise_aug": rng.uniform(0.3, 0.6, shapes["noise_aug"]).astype(np.float32),
        }


def rel_l2(actual: np.ndarray, expected: np.ndarray) -> float:
    """||actual - expected|| / ||expected|| in float64."""
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    return float(np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-30))
