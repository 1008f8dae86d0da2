"""Prompt embeddings for a model with a text path: read, check, fit to the model.

gvr ships no text encoder (the paper's base model uses T5-XXL, ~5B parameters): the embeddings
come from the base pipeline that made the low-resolution video, saved beside it as
``NAME.text.safetensors`` holding one tensor ``prompt_embeds`` of shape (L, text_dim) (a leading
batch of one, diffusers' ``encode_prompt`` layout, is accepted too). Read with the safetensors
numpy API, so the runtime needs no torch.

Fitting to the model: a prompt longer than the model's ``text_tokens`` loses its tail (T5 prompts
put the words first and padding last); a shorter one is padded by the runtime with the rows of the
model's learned null embedding after it (``Upscaler.set_prompt``), the tokens training used for a
dropped prompt. A missing sidecar means "no prompt": the null embedding alone.

Every problem is one line naming the file (``InputError``): that video fails, the batch goes on.
``load_prompt_embeds`` also takes an array already in memory (a ``prompt_embeds`` tensor inside a
latent input file), checked the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from models.manifest import ModelManifest

from gvrcli.errors import InputError, first_line

SIDECAR_SUFFIX = ".text.safetensors"
TENSOR = "prompt_embeds"
# numpy reads these; bfloat16 it cannot (save the embeddings as float16 or float32).
_FLOATS = (np.float16, np.float32, np.float64)
MAX_PROMPT_TOKENS = 65536  # a forged header must not size a buffer


@dataclass(frozen=True)
class PromptEmbeds:
    tokens: np.ndarray  # (L, text_dim) float32, L <= text_tokens, C-contiguous
    source: str  # the file (or what held the array)
    dropped: int = 0  # tokens cut off past text_tokens


def sidecar_path(video: Path) -> Path:
    """``clip.mp4`` -> ``clip.text.safetensors`` beside it."""
    return video.with_name(video.stem + SIDECAR_SUFFIX)


def is_sidecar(path: Path) -> bool:
    """A prompt sidecar, never itself an input (the directory walk passes over it)."""
    return path.name.endswith(SIDECAR_SUFFIX)


def load_prompt_embeds(source, manifest: ModelManifest, name: str | None = None) -> PromptEmbeds:
    """``source``: a ``.safetensors`` path holding ``prompt_embeds``, or the array itself (then
    ``name`` says where it came from). Checked against the model: shape (L, text_dim) or
    (1, L, text_dim), a float dtype numpy reads, finite; cut to ``text_tokens``."""
    if isinstance(source, (str, Path)):
        name = str(source)
        embeds = _read(Path(source))
    else:
        embeds, name = source, name or "prompt embeddings"
    if not manifest.has_text:
        raise InputError(f"{name}: the model has no text path (it takes no prompt embeddings)")
    D, N = manifest.text_dim, manifest.text_tokens
    shape = tuple(getattr(embeds, "shape", ()))
    if len(shape) == 3 and shape[0] == 1:
        embeds, shape = embeds[0], shape[1:]
    if len(shape) != 2 or shape[1] != D or not 1 <= shape[0] <= MAX_PROMPT_TOKENS:
        raise InputError(f"{name}: {TENSOR} has shape {shape}; the model takes (L, {D}) with 1 <= L (it uses up to {N} tokens)")
    if getattr(embeds, "dtype", None) not in _FLOATS:
        raise InputError(f"{name}: {TENSOR} is {getattr(embeds, 'dtype', type(embeds).__name__)}; save it as float16 or float32")
    tokens = np.ascontiguousarray(embeds[:N], dtype=np.float32)
    if not np.isfinite(tokens).all():
        raise InputError(f"{name}: {TENSOR} holds NaN or Inf")
    return PromptEmbeds(tokens, name, max(0, shape[0] - N))


def find_prompt(video: Path, manifest: ModelManifest) -> PromptEmbeds | None:
    """The sidecar beside ``video``, loaded and checked; None when there is none."""
    path = sidecar_path(video)
    if not path.exists():
        return None
    return load_prompt_embeds(path, manifest)


def prompt_for_latents(path: Path, manifest: ModelManifest) -> PromptEmbeds | None:
    """The prompt of a latent input file: a ``prompt_embeds`` tensor inside it (a base pipeline's
    latents saved with their prompt), else the sidecar beside it, else None."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            embeds = f.get_tensor(TENSOR) if TENSOR in f.keys() else None
    except (SafetensorError, OSError, TypeError, ValueError) as e:
        raise InputError(f"{path}: unreadable {TENSOR} ({first_line(e)})") from None
    if embeds is None:
        return find_prompt(path, manifest)
    return load_prompt_embeds(embeds, manifest, name=f"{path} ({TENSOR})")


def _read(path: Path) -> np.ndarray:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    try:
        with safe_open(str(path), framework="np") as f:
            if TENSOR not in f.keys():
                raise InputError(f"{path}: no {TENSOR!r} tensor (has {', '.join(sorted(f.keys())) or 'none'})")
            return f.get_tensor(TENSOR)
    except InputError:
        raise
    except (SafetensorError, OSError, TypeError, ValueError) as e:  # damaged header, bf16, short file
        first = first_line(e)
        hint = "; numpy reads no bfloat16: save it as float16 or float32" if "bf16" in first.lower() or "bfloat16" in first.lower() else ""
        raise InputError(f"{path}: not a readable safetensors file with {TENSOR} ({first}{hint})") from None
