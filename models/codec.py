"""Latent codecs: how pixels become the latents the network denoises.

The built-in default works in pixel space (the identity codec on RGB, rescaled to [-1, 1]), so no
VAE weights are needed. A real video VAE plugs in by implementing ``LatentCodec``. The arithmetic
here works on numpy arrays and torch tensors alike, so the runtime (no torch) and the reference
model share it.
"""

from __future__ import annotations

from typing import Protocol


class LatentCodec(Protocol):
    name: str
    channels: int  # latent channels
    spatial_factor: int  # pixels per latent cell along H and W
    temporal_factor: int  # frames per latent frame

    def encode(self, pixels): ...  # (B, 3, T, H, W) in [0, 1] -> (B, C, T', H', W')

    def decode(self, latents): ...  # inverse of encode, pixels in [0, 1] (not clipped)


class PixelCodec:
    """Identity on RGB pixels, rescaled from [0, 1] to [-1, 1] (the usual diffusion data range)."""

    name = "pixel"
    channels = 3
    spatial_factor = 1
    temporal_factor = 1

    def encode(self, pixels):
        return pixels * 2.0 - 1.0

    def decode(self, latents):
        return (latents + 1.0) * 0.5


class VaeRequired(ValueError):
    """A latent codec that needs VAE weights was used without them."""


class Wan21Codec:
    """The Wan2.1 video VAE's latent space: 16 channels, 8x spatial, causal 4x temporal.

    Its first latent frame holds the first video frame alone and every further latent frame the
    next 4 frames, so T frames have ``(T - 1) // 4 + 1`` latent frames (T = 4n + 1 exactly) and T'
    latent frames decode to ``4 (T' - 1) + 1`` frames. Latents are normalised per channel with the
    VAE's ``latents_mean`` / ``latents_std`` (diffusers' Wan pipelines: ``(z - mean) / std``), so the
    network sees what a Wan base model's transformer produces.

    This descriptor is torch-free (the runtime reads the factors); encoding and decoding need the
    VAE's weights: ``models.vae.VaeCodec(vae)`` is the same codec bound to a VAE module.
    """

    name = "wan2.1"
    channels = 16
    spatial_factor = 8
    temporal_factor = 4

    def encode(self, pixels):
        raise VaeRequired("the wan2.1 codec needs VAE weights: pass vae= (models.load_vae / models.build_vae)")

    decode = encode


def latent_frames(codec: LatentCodec, frames: int) -> int:
    """Latent frames that ``frames`` video frames (padded to the next whole chunk) encode to."""
    f = codec.temporal_factor
    return frames if f == 1 else (frames - 1 + f - 1) // f + 1


def video_frames(codec: LatentCodec, latent: int) -> int:
    """Frames that ``latent`` latent frames decode to (causal: the first latent frame is one frame)."""
    f = codec.temporal_factor
    return latent if f == 1 else f * (latent - 1) + 1


CODECS = {"pixel": PixelCodec, "wan2.1": Wan21Codec}


def get_codec(name: str) -> LatentCodec:
    try:
        return CODECS[name]()
    except KeyError:
        raise ValueError(f"unknown latent codec {name!r} (known: {', '.join(CODECS)})") from None
