"""safetensors files, the format of every gvr checkpoint (SimpleGVR's and the Wan VAE's): written
atomically with the user's file mode, read back with their metadata, checked key by key and shape
by shape, hashed. No pickle.

Below both networks: ``models.checkpoint`` (SimpleGVR) and ``models.vae`` store their weights
with it, and ``models.simplegvr`` hashes its own for the manifest, so none of the three imports
another for the file format.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from gvrbase.atomic import written


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as a SimpleGVR network."""


def save_tensors(state: dict, path: str | os.PathLike, meta: dict) -> Path:
    """Write a state dict + string metadata as safetensors atomically (``gvrbase.atomic.written``)."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    with written(path) as partial:  # published with the user's default mode: safetensors makes 0600
        save_file(tensors, str(partial), metadata=meta)
    return path


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


def weights_sha256(model) -> str:
    """Hash of names, shapes, dtypes and bytes of every tensor, in name order."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().contiguous().cpu()
        h.update(f"{k}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
