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


CODECS = {"pixel": PixelCodec}


def get_codec(name: str) -> LatentCodec:
    try:
        return CODECS[name]()
    except KeyError:
        raise ValueError(f"unknown latent codec {name!r} (known: {', '.join(CODECS)})") from None
