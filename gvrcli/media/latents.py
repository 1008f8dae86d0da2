"""Latent files: a base model's low-resolution latents as an input, and ``--save-latents`` outputs.

The paper's own path: a base pipeline's latents (diffusers ``output_type="latent"``, the
normalised latents its transformer produced) are upscaled without a decode and re-encode. The
file is safetensors holding one tensor ``latents`` (C, T, h, w) (a leading batch of 1 is taken)
and metadata ``fps``. Everything is validated from the header before any data is read: a file
that is not safetensors, lacks the tensor or ``fps``, has another channel count than the bundle,
a non-float dtype, or a decoded size over ``--max-pixels`` fails with one line naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from gvrbase.errors import first_line
from gvrcli.errors import InputError

SUFFIX = ".safetensors"
TENSOR = "latents"
OUTPUT_SUFFIX = ".latents.safetensors"  # --save-latents: OUTPUT + this, beside the output
# fps is read as a rational with a denominator of at most 1001 (NTSC's 24000/1001 exactly): a value
# under 1/1000 would round to 0 frames per second, which no time base can express.
MIN_FPS, MAX_FPS = 0.001, 1000.0
DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


@dataclass
class LatentInfo:
    """A latent input, as ``probe_latents`` found it (``frames`` and ``path`` as a VideoInfo's)."""

    path: Path
    shape: tuple[int, int, int, int]  # (C, T, h, w) without the batch
    fps: Fraction
    frames: int  # video frames it decodes to: temporal_factor (T - 1) + 1
    width: int  # decoded LR size in pixels: spatial_factor x (w, h)
    height: int


def is_latent_file(path: Path) -> bool:
    return Path(path).suffix.lower() == SUFFIX


def probe_latents(path: Path, channels: int, spatial_factor: int, temporal_factor: int, max_pixels: int) -> LatentInfo:
    """Check a latent file's header against the bundle; InputError (one line naming it) if unusable."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    try:
        with safe_open(str(path), framework="np") as f:
            keys, meta = list(f.keys()), f.metadata() or {}
            if TENSOR not in keys:
                raise InputError(f"{path}: a latent file holds a tensor {TENSOR!r} (found: {', '.join(keys[:5]) or 'none'})")
            sl = f.get_slice(TENSOR)
            shape, dtype = tuple(sl.get_shape()), sl.get_dtype()
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable safetensors file ({first_line(e)})") from None
    if len(shape) == 5 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 4:
        raise InputError(f"{path}: latents of shape {list(shape)}; expected (C, T, h, w)")
    C, T, h, w = shape
    if C != channels:
        raise InputError(f"{path}: latents have {C} channels; the bundle's VAE has {channels}")
    if min(T, h, w) < 1:
        raise InputError(f"{path}: latents of shape {list(shape)} are empty")
    if dtype not in DTYPES:
        raise InputError(f"{path}: latents of dtype {dtype}; expected F32, F16 or F64")
    fps = _fps(path, meta.get("fps"))
    H, W = h * spatial_factor, w * spatial_factor
    if H * W > max_pixels:
        raise InputError(f"{path}: decodes to {W}x{H}, which exceeds the limit of {max_pixels} pixels (raise it with --max-pixels)")
    return LatentInfo(path, (C, T, h, w), fps, temporal_factor * (T - 1) + 1, W, H)


def _fps(path: Path, text) -> Fraction:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{path}: metadata 'fps' is missing or not a number ({text!r})") from None
    if not math.isfinite(value) or not MIN_FPS <= value <= MAX_FPS:
        raise InputError(f"{path}: metadata fps {text} is outside [{MIN_FPS:g}, {MAX_FPS:g}]")
    return Fraction(value).limit_denominator(1001)  # >= 1/1000: never 0, a time base the encoder takes


def read_latents(info: LatentInfo) -> np.ndarray:
    """The latents (C, T, h, w) as float32; InputError if the data is not what the header said."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        z = load_file(str(info.path))[TENSOR]
    except (SafetensorError, OSError, ValueError) as e:
        raise InputError(f"{info.path}: unreadable latents ({first_line(e)})") from None
    z = np.ascontiguousarray(z.reshape(info.shape), dtype=np.float32)
    if not np.isfinite(z).all():
        raise InputError(f"{info.path}: latents hold NaN or Inf")
    return z


def latents_path(output: Path) -> Path:
    return output.with_name(output.name + OUTPUT_SUFFIX)


def write_latents(partial: Path, latents: np.ndarray, fps: Fraction | float | None) -> None:
    """Write ``latents`` (C, T, h, w) with ``fps`` into ``partial`` (published by ``gvrbase.atomic``)."""
    from safetensors.numpy import save_file

    meta = {"fps": f"{float(fps):.6g}"} if fps else {}
    save_file({TENSOR: np.ascontiguousarray(latents, dtype=np.float32)}, str(partial), metadata=meta)
