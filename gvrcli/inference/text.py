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

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from models.manifest import ModelManifest

from gvrbase.errors import first_line
from gvrcli.errors import InputError

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
    (1, L, text_dim), a float dtype numpy reads, finite; cut to ``text_tokens``. From a file, the
    shape is checked from its header and only the rows the model uses are read."""
    name = str(source) if isinstance(source, (str, Path)) else name or "prompt embeddings"
    if not manifest.has_text:
        raise InputError(f"{name}: the model has no text path (it takes no prompt embeddings)")
    D, N = manifest.text_dim, manifest.text_tokens
    if isinstance(source, (str, Path)):
        embeds, tokens = _read(Path(source), D, N)
    else:
        embeds, shape = source, tuple(getattr(source, "shape", ()))
        if len(shape) == 3 and shape[0] == 1:
            embeds, shape = embeds[0], shape[1:]
        _check_shape(name, shape, D, N)
        embeds, tokens = embeds[:N], shape[0]
    if getattr(embeds, "dtype", None) not in _FLOATS:
        raise InputError(f"{name}: {TENSOR} is {getattr(embeds, 'dtype', type(embeds).__name__)}; save it as float16 or float32")
    kept = np.ascontiguousarray(embeds, dtype=np.float32)
    if not np.isfinite(kept).all():
        raise InputError(f"{name}: {TENSOR} holds NaN or Inf")
    return PromptEmbeds(kept, name, max(0, tokens - N))


def _check_shape(name: str, shape: tuple, D: int, N: int) -> None:
    """(L, D) with 1 <= L <= MAX_PROMPT_TOKENS, from the header, before any row is read."""
    if len(shape) != 2 or shape[1] != D or shape[0] < 1:
        raise InputError(f"{name}: {TENSOR} has shape {shape}; the model takes (L, {D}) with 1 <= L (it uses up to {N} tokens)")
    if shape[0] > MAX_PROMPT_TOKENS:
        raise InputError(
            f"{name}: {TENSOR} holds {shape[0]} tokens, over the {MAX_PROMPT_TOKENS} a prompt file may hold "
            f"(a prompt of up to {MAX_PROMPT_TOKENS} tokens is cut to the model's {N})"
        )


def find_prompt(video: Path, manifest: ModelManifest, tree: Path | None = None) -> PromptEmbeds | None:
    """The sidecar beside ``video``, loaded and checked; None when there is none. ``tree``: the
    input tree ``video`` was found in, or None when links may lead anywhere (``--follow-symlinks``):
    a sidecar read beside an input follows the walk's rule for links (``beside_file``)."""
    path = beside_file(sidecar_path(video), tree)
    return None if path is None else load_prompt_embeds(path, manifest)


def beside_file(path: Path, tree: Path | None) -> Path | None:
    """The one rule for a file read beside an input (its prompt sidecar): None when there is none;
    InputError (that input fails, one line) when it is a dangling link, or a link whose target lies
    outside ``tree`` (the input's tree; None: anywhere). Links are not followed out of the tree a
    walk found the input in, for the inputs themselves as for what is read beside them."""
    if not os.path.lexists(path):
        return None
    if os.path.islink(path):
        real = os.path.realpath(path)
        if not os.path.exists(real):
            raise InputError(f"{path}: a dangling symbolic link (to {os.readlink(path)}); remove it or point it at the prompt")
        if tree is not None:
            root = os.path.realpath(tree)
            if not real.startswith(root.rstrip(os.sep) + os.sep):
                raise InputError(
                    f"{path}: a symbolic link out of the input tree {tree} (to {real}); not read "
                    "(--follow-symlinks reads it)"
                )
    return path


def prompt_for_latents(path: Path, manifest: ModelManifest, tree: Path | None = None) -> PromptEmbeds | None:
    """The prompt of a latent input file: a ``prompt_embeds`` tensor inside it (a base pipeline's
    latents saved with their prompt), else the sidecar beside it (``find_prompt``), else None."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as f:
            embeds = f.get_tensor(TENSOR) if TENSOR in f.keys() else None
    except (SafetensorError, OSError, TypeError, ValueError) as e:
        raise InputError(f"{path}: unreadable {TENSOR} ({first_line(e)})") from None
    if embeds is None:
        return find_prompt(path, manifest, tree)
    return load_prompt_embeds(embeds, manifest, name=f"{path} ({TENSOR})")


def _read(path: Path, D: int, N: int) -> tuple[np.ndarray, int]:
    """(the first ``N`` rows, the token count L) of the file's ``prompt_embeds``, its shape checked
    from the header first (a forged header sizes nothing)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    try:
        with safe_open(str(path), framework="np") as f:
            if TENSOR not in f.keys():
                raise InputError(f"{path}: no {TENSOR!r} tensor (has {', '.join(sorted(f.keys())) or 'none'})")
            rows = f.get_slice(TENSOR)
            shape = tuple(rows.get_shape())
            batched = len(shape) == 3 and shape[0] == 1
            _check_shape(str(path), shape[1:] if batched else shape, D, N)
            keep = min(N, shape[-2])  # safetensors refuses a slice past the tensor's end
            return (rows[0:1, :keep][0] if batched else rows[:keep]), shape[-2]
    except InputError:
        raise
    except (SafetensorError, OSError, TypeError, ValueError) as e:  # damaged header, bf16, short file
        first = first_line(e)
        hint = "; numpy reads no bfloat16: save it as float16 or float32" if "bf16" in first.lower() or "bfloat16" in first.lower() else ""
        raise InputError(f"{path}: not a readable safetensors file with {TENSOR} ({first}{hint})") from None
