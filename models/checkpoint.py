"""Self-describing checkpoints: safetensors weights with the GVRConfig in the file's metadata.

No pickle. ``load_model`` rebuilds the network from the stored config and checks every key and
shape, naming what is missing, unexpected or mismatched. The file format itself (atomic writes,
metadata, tensors, the key and shape check, the weights hash) is ``models.tensorfile``, shared
with the VAE.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from models import __version__
from models.simplegvr import GVRConfig, SimpleGVR
from models.tensorfile import CheckpointError, check_tensors, read_metadata, read_tensors, save_tensors

FORMAT = "simplegvr"
CONFIG_KEY = "gvr.config"


def save_model(model: SimpleGVR, path: str | os.PathLike) -> Path:
    """Write weights + config atomically (temp file in the same folder, then rename)."""
    meta = {"format": FORMAT, "gvr_version": __version__, CONFIG_KEY: json.dumps(model.config.to_dict())}
    return save_tensors(model.state_dict(), path, meta)


def read_config(path: str | os.PathLike) -> GVRConfig:
    """The GVRConfig stored in a checkpoint's metadata."""
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("format") != FORMAT or CONFIG_KEY not in meta:
        raise CheckpointError(f"{path}: not a SimpleGVR checkpoint (no {CONFIG_KEY!r} in its metadata)")
    try:
        return GVRConfig.from_dict(json.loads(meta[CONFIG_KEY]))
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: bad config in metadata ({e})") from None


def load_model(path: str | os.PathLike, **overrides) -> SimpleGVR:
    """Rebuild the network from a checkpoint; ``overrides`` may change runtime fields such as
    ``attention`` or ``steps`` (not shapes)."""
    path = Path(path)
    cfg = read_config(path)
    try:
        model = SimpleGVR(GVRConfig(**{**cfg.to_dict(), **overrides}))
    except ValueError as e:
        raise CheckpointError(f"{path}: {e}") from None
    stored = read_tensors(path)
    check_tensors(path, model.state_dict(), stored, "its config")
    model.load_state_dict(stored, strict=True)
    return model.eval()


# Parameters that multiply a normalised signal (LayerNorm weights, the Wan VAE's RMS-norm gamma):
# randomised around 1, not 0, so a random network keeps its signal.
NORM_GAINS = ("norm.weight", ".gamma")


def init_random_(model, seed: int = 0, std: float = 0.5) -> SimpleGVR:
    """Fill every parameter with seeded random values, zero-initialised heads included, so tests and
    export verification exercise all weights (not the untrained default's identity path)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            r = torch.randn(p.shape, generator=gen)
            if name.endswith(NORM_GAINS):
                p.copy_(1.0 + 0.1 * r)
            else:
                p.copy_(r * (std / fan_in**0.5 if p.dim() > 1 else 0.02))
    return model
