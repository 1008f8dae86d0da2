"""Self-describing checkpoints: safetensors weights with the GVRConfig in the file's metadata.

No pickle. ``load_model`` rebuilds the network from the stored config and checks every key and
shape, naming what is missing, unexpected or mismatched.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from gvrbase.filemode import publish_mode
from models import __version__
from models.simplegvr import GVRConfig, SimpleGVR

FORMAT = "simplegvr"
CONFIG_KEY = "gvr.config"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as a SimpleGVR network."""


def save_model(model: SimpleGVR, path: str | os.PathLike) -> Path:
    """Write weights + config atomically (temp file in the same folder, then rename)."""
    meta = {"format": FORMAT, "gvr_version": __version__, CONFIG_KEY: json.dumps(model.config.to_dict())}
    return save_tensors(model.state_dict(), path, meta)


def save_tensors(state: dict, path: str | os.PathLike, meta: dict) -> Path:
    """Write a state dict + string metadata as safetensors atomically (temp file in the same folder, then rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        publish_mode(tmp)  # mkstemp and safetensors make 0600; a checkpoint is 0666 & ~umask like any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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


def read_metadata(path: Path) -> dict:
    """The string metadata of a safetensors file ({} when it has none)."""
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except Exception as e:  # safetensors raises several types for a damaged header
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


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


def read_tensors(path: Path) -> dict:
    """Every tensor of a safetensors file; a damaged file is a CheckpointError naming it."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise CheckpointError(f"{path}: damaged tensor data ({e})") from None


def check_tensors(path: Path, expected: dict, stored: dict, against: str) -> None:
    """Refuse ``stored`` unless it has exactly ``expected``'s keys and shapes, naming every difference."""
    problems = []
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing:
        problems.append(f"missing {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected {_some(unexpected)}")
    for k in sorted(set(expected) & set(stored)):
        if stored[k].shape != expected[k].shape:
            problems.append(f"{k} has shape {tuple(stored[k].shape)}, expected {tuple(expected[k].shape)}")
    if problems:
        raise CheckpointError(f"{path}: does not match {against}: {'; '.join(problems)}")


def _some(names: list[str], n: int = 4) -> str:
    more = f" and {len(names) - n} more" if len(names) > n else ""
    return ", ".join(names[:n]) + more


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


def weights_sha256(model) -> str:
    """Hash of names, shapes, dtypes and bytes of every tensor, in name order."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().contiguous().cpu()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
