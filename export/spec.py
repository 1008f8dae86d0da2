"""Export spec of the SimpleGVR denoiser step (in the manner of optimum's ONNX configs).

One place that says what the exported graph is: its inputs and outputs, which dimensions are
dynamic, the dummy inputs used to trace and to verify it, the tolerance per precision and the
minimum opset. Exporter, verifier, tests and benchmark all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.manifest import CONDITION, STEP, TEXT, graph_io

# ONNX Attention (one fused node per attention call) exists from opset 23.
MIN_OPSET = 23
DEFAULT_OPSET = 23

# Relative L2 error allowed against PyTorch fp32, per exported precision. int8 is quantised
# (weights and, on OpenVINO, activations): a stated, looser bound, checked on the step's output.
# bf16 keeps 8 mantissa bits to fp16's 11: its bound is int8's.
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 5e-2, "int8": 5e-2}
PRECISIONS = ("fp32", "fp16", "int8")  # every exporter (the VAE's too)
DENOISER_PRECISIONS = ("fp32", "fp16", "bf16", "int8")  # bf16: a true bf16 graph of the denoiser

# Dynamic axes of every tensor, by name: (B,) for the scalars; (B, C, T, H, W) for the videos;
# hr_grid (1, 1, 1, H, W) only carries the output size; prompt embeddings (1, L, text_dim) any
# length. The step's ``text`` is always (1, text_tokens, dim): the runtime pads, so it stays static.
_HR, _LR = {2: "T", 3: "H", 4: "W"}, {2: "T", 3: "h", 4: "w"}
DYNAMIC_AXES = {
    "z_t": _HR, "cond": _HR, "base": _HR, "z_next": _HR,
    "t": {}, "t_next": {}, "noise_aug": {},
    "lr": _LR, "lr_noise": _LR, "hr_grid": {3: "H", 4: "W"},
    "prompt": {1: "L"}, "text": {}, "text_null": {},
}
TEXT_TRACE_TOKENS = 5  # prompt length the text graph is traced at: neither 1 nor text_tokens

# Tracing size of a dynamic export. Deliberately "generic": no two sizes equal and none of them 0/1,
# so torch.export's duck-sizing does not tie T to h or specialise a dimension, and T exceeds a
# temporal unit so both the padded and the shifted unit paths are traced.
TRACE_SHAPE = (7, 22, 30)  # (T, h, w) of the LR latent
TRACE_HR = (47, 61)  # (H, W) of the output: a non-integer ratio, so nothing ties H to h

# The two shapes verification runs at: one window-aligned-ish, one deliberately ragged.
VERIFY_SHAPES = ((6, 18, 26), (3, 11, 17))
# Output sizes of the verification shapes, by index (None = the nominal scale x): the ragged one
# at a non-integer, anisotropic ratio (x2.27 by x1.88), like the paper's 384x672 -> 1080x1920.
VERIFY_HR = {1: (25, 32)}


@dataclass(frozen=True)
class DenoiserSpec:
    """Shapes of a model's graphs (``models.manifest.graph_io``) for ``channels`` latent channels,
    ``scale``, ``prediction`` and, with ``text_dim``, its text path; sizes are given as (T, h, w)
    of the LR latent and, optionally, ``hr`` = (H, W) of the output (default the nominal scale x)."""

    channels: int
    scale: int
    prediction: str = "x0_residual"
    text_dim: int = 0
    text_tokens: int = 0
    dim: int = 0  # the network's width: the projected text tokens'

    @classmethod
    def of(cls, config) -> "DenoiserSpec":
        """The spec of a network's graphs, from its GVRConfig."""
        return cls(config.latent_channels, config.scale, config.prediction, config.text_dim, config.text_tokens, config.dim)

    def roles(self) -> tuple[str, ...]:
        return ROLES + ((TEXT,) if self.text_dim else ())

    def names(self, role: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return graph_io(role, self.prediction, bool(self.text_dim))

    def input_shapes(self, role: str, T: int, h: int, w: int, batch: int = 1, hr=None) -> dict[str, tuple[int, ...]]:
        C, s = self.channels, self.scale
        H, W = hr or (s * h, s * w)
        shapes = {"lr": (batch, C, T, h, w), "lr_noise": (batch, C, T, h, w), "t": (batch,), "t_next": (batch,), "noise_aug": (batch,)}
        shapes.update({k: (batch, C, T, H, W) for k in ("z_t", "cond", "base")})
        shapes.update(hr_grid=(batch, 1, 1, H, W), prompt=(batch, TEXT_TRACE_TOKENS, self.text_dim), text=(batch, self.text_tokens, self.dim))
        return {k: shapes[k] for k in self.names(role)[0]}

    def dummy_inputs(self, role: str, T: int, h: int, w: int, batch: int = 1, seed: int = 0, hr=None) -> dict[str, np.ndarray]:
        """Random float32 inputs in the ranges the sampler produces (t in (0, 1], t_next < t, level
        in [0.3, 0.6], conditions in [-1, 1], prompt embeddings and text tokens standard normal)."""
        rng = np.random.default_rng(seed)
        feed = {}
        for name, shape in self.input_shapes(role, T, h, w, batch, hr).items():
            if name in ("z_t", "lr_noise", "prompt", "text"):
                feed[name] = rng.standard_normal(shape, dtype=np.float32)
            elif name in ("lr", "cond", "base"):
                feed[name] = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
            elif name == "t":
                feed[name] = rng.uniform(0.3, 1.0, shape).astype(np.float32)
            elif name == "t_next":
                feed[name] = (feed["t"] - rng.uniform(0.05, 0.3, shape)).astype(np.float32)
            elif name == "hr_grid":
                feed[name] = np.zeros(shape, dtype=np.float32)  # only its shape is read
            else:  # noise_aug
                feed[name] = rng.uniform(0.3, 0.6, shape).astype(np.float32)
        return feed


ROLES = (CONDITION, STEP)


def rel_l2(actual: np.ndarray, expected: np.ndarray) -> float:
    """||actual - expected|| / ||expected|| in float64."""
    a, e = actual.astype(np.float64), expected.astype(np.float64)
    return float(np.linalg.norm(a - e) / max(np.linalg.norm(e), 1e-30))
