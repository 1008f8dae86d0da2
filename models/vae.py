"""The Wan2.1 video VAE (diffusers' ``AutoencoderKLWan``) as SimpleGVR's latent codec, chunk by chunk.

The VAE is causal in time: every temporal convolution sees only the past, through a cache of the
last frames of its input (diffusers keeps the caches in a python list, ``feat_cache``). Here the
cache is explicit: ``VaeEncoderStep`` / ``VaeDecoderStep`` take one chunk plus the cache tensors
and return the output plus the new caches, so any length encodes and decodes in bounded memory and
each step exports as one static-shape graph (``export.vae``).

Chunks follow diffusers' own loops: the encoder takes 1 frame, then 4 frames per latent frame; the
decoder one latent frame (1 frame out first, then 4). The first chunk is a separate module
(``first=True``): there the VAE's temporal resampling layers skip their temporal convolution (the
encoder's ``downsample3d`` passes the frame through; the decoder's ``upsample3d`` does not double
it), which no cache value can imitate. Every other cache after the first chunk is exactly what a
zero cache gives: a causal convolution's first chunk pads with zeros, and diffusers' ``"Rep"``
marker means "zero-padded", so the first step hands on zero-padded caches of the same fixed shapes
as every later step (``cache_specs``). Chunked encode / decode equal diffusers' one-piece calls
within fp32 reassociation, not bit for bit: chunks let the kernels block and sum in another order
(0 difference on one Xeon, 1.6e-6 on an AMD EPYC; the bound is derived in tests/tolerances.py).

Values: pixels in [0, 1] (the codec contract; the VAE works in [-1, 1]) and **normalised** latents,
as diffusers' Wan pipelines use them: ``z = (mode - latents_mean) / latents_std`` per channel on
encode (the posterior's mode, ``sample_mode="argmax"``), ``z * latents_std + latents_mean`` before
decoding. Decoded pixels are clamped to the VAE's range like diffusers' ``decode``.
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models import __version__
from models.codec import get_codec, latent_frames
from models.tensorfile import CheckpointError, check_tensors, read_metadata, read_tensors, save_tensors, weights_sha256

FORMAT = "wan-vae"
CONFIG_KEY = "gvr.vae_config"
FAMILIES = ("wan2.1",)


class VaeError(CheckpointError):
    """A VAE file or config that cannot be used as the Wan2.1 VAE."""


# --------------------------------------------------------------------------------------------------
# Build, save, load
# --------------------------------------------------------------------------------------------------


def _vae_class():
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan


def default_config() -> dict:
    """The Wan2.1 VAE's own config: diffusers' ``AutoencoderKLWan`` defaults (base_dim 96, 127 M params)."""
    params = inspect.signature(_vae_class().__init__).parameters
    return {k: p.default for k, p in params.items() if k != "self"}


def check_config(config: dict, family: str = "wan2.1") -> dict:
    """The full config (defaults filled in) if it describes a Wan2.1-layout VAE, else VaeError."""
    defaults = default_config()
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise VaeError(f"unknown {family} VAE config fields: {', '.join(unknown)}")
    cfg = {**defaults, **config}
    codec = get_codec(family)
    spatial = 2 ** (len(cfg["dim_mult"]) - 1)
    temporal = 2 ** sum(bool(t) for t in cfg["temperal_downsample"])
    problems = []
    if cfg["z_dim"] != codec.channels:
        problems.append(f"z_dim {cfg['z_dim']} (the {family} codec has {codec.channels} latent channels)")
    if (spatial, temporal) != (codec.spatial_factor, codec.temporal_factor):
        problems.append(f"factors {spatial}x spatial, {temporal}x temporal (the {family} codec is {codec.spatial_factor}x, {codec.temporal_factor}x)")
    if cfg["is_residual"] or cfg["patch_size"] is not None or (cfg["in_channels"], cfg["out_channels"]) != (3, 3):
        problems.append("a Wan2.2-style VAE (is_residual / patch_size) or non-RGB channels")
    if len(cfg["latents_mean"]) != cfg["z_dim"] or len(cfg["latents_std"]) != cfg["z_dim"]:
        problems.append("latents_mean / latents_std need one value per latent channel")
    elif min(cfg["latents_std"]) <= 0:
        problems.append("latents_std must be positive")
    if problems:
        raise VaeError(f"not a {family} VAE config: {'; '.join(problems)}")
    return cfg


def build_vae(family: str = "wan2.1", seed: int = 0, **config) -> nn.Module:
    """A Wan2.1-architecture VAE with seeded random weights (reproducible), config overrides as in
    diffusers (e.g. ``base_dim=16, num_res_blocks=1`` for tests). Eval mode, float32."""
    if family not in FAMILIES:
        raise ValueError(f"unknown VAE {family!r} (known: {', '.join(FAMILIES)})")
    cfg = check_config(config, family)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = _vae_class()(**cfg)
    return vae.eval()


def vae_config(vae) -> dict:
    """The constructor config of a VAE module (JSON-ready)."""
    names = default_config().keys()
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vae.config.items() if k in names}


def vae_sha256(vae) -> str:
    """Hash of the VAE's tensors, as ``models.weights_sha256`` (what bundles record)."""
    return weights_sha256(vae)


def save_vae(vae, path: str | os.PathLike) -> Path:
    """Write the weights (diffusers-format keys) with the config in the safetensors metadata."""
    meta = {"format": FORMAT, "gvr_version": __version__, "family": "wan2.1", CONFIG_KEY: json.dumps(vae_config(vae))}
    return save_tensors(vae.state_dict(), path, meta)


def load_vae(path: str | os.PathLike, config: dict | str | os.PathLike | None = None) -> nn.Module:
    """Load a Wan2.1 VAE from safetensors: a file ``save_vae`` wrote (config in its metadata), or the
    public diffusers file ``vae/diffusion_pytorch_model.safetensors`` of a Wan2.1 diffusers repo,
    whose config is ``config`` (a dict or a ``config.json`` path), else the ``config.json`` beside
    it, else the Wan2.1 defaults. Every key and shape is checked; weights become float32."""
    path = Path(path)
    try:
        meta = read_metadata(path)
        cfg = _find_config(path, meta, config)
        try:
            vae = build_vae("wan2.1", **cfg)
        except (VaeError, TypeError) as e:
            raise VaeError(f"{path}: {e}") from None
        stored = read_tensors(path)
        check_tensors(path, vae.state_dict(), stored, "a Wan2.1 VAE of its config")
    except VaeError:
        raise
    except CheckpointError as e:
        raise VaeError(str(e)) from None
    vae.load_state_dict({k: v.float() for k, v in stored.items()}, strict=True)
    return vae.eval()


def _find_config(path: Path, meta: dict, config) -> dict:
    """The constructor config: ``config`` (dict or JSON file), else the file's metadata, else a
    ``config.json`` beside it, else {} (the Wan2.1 defaults). diffusers' private keys are dropped."""
    from models.manifest import json_object

    if config is None:
        if CONFIG_KEY in meta:
            text, where = meta[CONFIG_KEY], "its metadata"
        elif (path.parent / "config.json").is_file():
            config = path.parent / "config.json"
        else:
            return {}
    if isinstance(config, dict):
        cfg, where = dict(config), "the given config"
    else:
        if config is not None:
            where = str(config)
            try:
                text = Path(config).read_text()
            except OSError as e:
                raise VaeError(f"{path}: cannot read VAE config {config} ({e.strerror or e})") from None
        try:
            cfg = json_object(text)
        except ValueError as e:
            raise VaeError(f"{path}: VAE config in {where} {e}") from None
    if cfg.get("_class_name", "AutoencoderKLWan") != "AutoencoderKLWan":
        raise VaeError(f"{path}: VAE config in {where} is a {cfg['_class_name']}, not AutoencoderKLWan")
    return {k: v for k, v in cfg.items() if not k.startswith("_")}  # diffusers' _class_name, _diffusers_version


# --------------------------------------------------------------------------------------------------
# The causal caches, explicit
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheSpec:
    """One causal layer's cache: (1, channels, frames, H*scale, W*scale) for a chunk of H x W."""

    name: str
    channels: int
    frames: int
    scale: Fraction  # cache spatial size / chunk input spatial size

    def shape(self, H, W) -> tuple:
        """Integer arithmetic only, so that symbolic sizes (a dynamic-shape export) pass through."""
        n, d = self.scale.numerator, self.scale.denominator
        if isinstance(H, int) and isinstance(W, int) and (H * n % d or W * n % d):
            raise ValueError(f"{H}x{W} is not a multiple of the VAE's spatial factor")
        return (1, self.channels, self.frames, H * n // d, W * n // d)

    def to_dict(self, per_cell: Fraction) -> dict:
        """The manifest's entry: channels, frames, and the cache's side per latent cell
        (``per_cell`` = the chunk input's side per latent cell: 8 for pixels, 1 for latents)."""
        scale = self.scale * per_cell
        return {"name": self.name, "channels": self.channels, "frames": self.frames, "per_cell": [scale.numerator, scale.denominator]}


ROLES = ("encoder", "decoder")
PROBE = 16  # pixels; probe chunks are PROBE x PROBE (encoder) or PROBE/8 latent cells (decoder)


def _run(vae, role: str, x, feat_cache: list, first: bool):
    """One chunk through diffusers' own encoder/decoder with its list of caches (mutated in place)."""
    if role == "encoder":
        return vae.encoder(x, feat_cache=feat_cache, feat_idx=[0])
    return vae.decoder(x, feat_cache=feat_cache, feat_idx=[0], first_chunk=first)


def _layer_count(vae, role: str) -> int:
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

    return sum(isinstance(m, WanCausalConv3d) for m in getattr(vae, role).modules())


@torch.no_grad()
def cache_specs(vae, role: str) -> list[CacheSpec]:
    """The fixed cache layout of every step after the first, found by running two probe chunks."""
    p = next(vae.parameters())
    if role == "encoder":
        chunks, size = [torch.zeros(1, 3, n, PROBE, PROBE) for n in (1, 4)], PROBE
    else:
        size = PROBE // 8
        chunks = [torch.zeros(1, vae.config.z_dim, 1, size, size)] * 2
    cache = [None] * _layer_count(vae, role)
    for i, x in enumerate(chunks):
        _run(vae, role, x.to(p), cache, first=i == 0)
    used = [(i, c) for i, c in enumerate(cache) if isinstance(c, torch.Tensor)]  # 1x1x1 convs keep no cache
    return [CacheSpec(f"{role}_cache_{i:02d}", c.shape[1], c.shape[2], Fraction(c.shape[-1], size)) for i, c in used]


class _VaeStep(nn.Module):
    """One chunk of the VAE with its causal caches as explicit tensors: ``(x, *caches) -> (y, *caches)``.

    ``first=True`` is the first-chunk graph: it takes no caches (they start empty) and returns the
    caches every later step takes, zero-padded to their fixed shapes.
    """

    role = ""

    def __init__(self, vae, first: bool = False):
        super().__init__()
        self.vae, self.first = vae, first
        self.specs = cache_specs(vae, self.role)
        self._slots = [int(s.name.rsplit("_", 1)[1]) for s in self.specs]
        self._layers = _layer_count(vae, self.role)
        cfg = vae.config
        self.register_buffer("mean", torch.tensor(cfg.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1), persistent=False)

    @property
    def cache_names(self) -> list[str]:
        return [s.name for s in self.specs]

    def _step(self, x, caches):
        if self.first and caches:
            raise ValueError("the first chunk takes no caches")
        if not self.first and len(caches) != len(self.specs):
            raise ValueError(f"expected {len(self.specs)} cache tensors, got {len(caches)}")
        feat = [None] * self._layers
        for slot, c in zip(self._slots, caches):
            feat[slot] = c
        y = _run(self.vae, self.role, x, feat, self.first)
        # diffusers' "Rep" marker (a first-chunk upsample3d): the layer zero-pads next time, a zero cache.
        out = [feat[slot] if isinstance(feat[slot], torch.Tensor) else None for slot in self._slots]
        return y, self._complete(out, x)

    def _complete(self, caches, x):
        """Zero-pad the first chunk's short caches (and "Rep" markers) to their fixed shapes."""
        H, W = x.shape[-2:]
        done = []
        for c, spec in zip(caches, self.specs):
            shape = spec.shape(H, W)
            if c is None:
                c = x.new_zeros(shape)
            elif c.shape[2] < spec.frames:
                c = torch.cat([c.new_zeros((*c.shape[:2], spec.frames - c.shape[2], *c.shape[3:])), c], dim=2)
            done.append(c)
        return done


class VaeEncoderStep(_VaeStep):
    """Pixels (1, 3, F, H, W) in [0, 1] -> normalised latent (1, 16, 1, H/8, W/8) + caches.

    F = 1 for the first chunk, 4 afterwards (4k gives k latent frames; the exported graphs use 4).
    """

    role = "encoder"

    def forward(self, x, *caches):
        y, new = self._step(x * 2.0 - 1.0, caches)
        mu = self.vae.quant_conv(y)[:, : self.vae.config.z_dim]  # the posterior's mode
        return ((mu - self.mean) / self.std, *new)


class VaeDecoderStep(_VaeStep):
    """Normalised latent (1, 16, L, h, w) -> pixels (1, 3, F, 8h, 8w) in [0, 1] + caches.

    F = 1 for the first chunk (L = 1), 4 L afterwards (the exported graphs use L = 1).
    """

    role = "decoder"

    def forward(self, z, *caches):
        x = self.vae.post_quant_conv(z * self.std + self.mean)
        y, new = self._step(x, caches)
        return ((y.clamp(-1.0, 1.0) + 1.0) * 0.5, *new)


# --------------------------------------------------------------------------------------------------
# The codec: chunked encode and decode in bounded memory
# --------------------------------------------------------------------------------------------------


class VaeCodec:
    """``models.codec.Wan21Codec`` bound to VAE weights: encode and decode chunk by chunk.

    ``encode`` pads the frame count to 4n + 1 by repeating the last frame and H, W to multiples of
    8 (replicate); the caller crops the decoded video back.
    """

    name = "wan2.1"

    def __init__(self, vae, latent_frames_per_step: int = 1):
        desc = get_codec(self.name)
        self.channels, self.spatial_factor, self.temporal_factor = desc.channels, desc.spatial_factor, desc.temporal_factor
        self.vae, self.k = vae, latent_frames_per_step
        self.enc_first, self.enc = VaeEncoderStep(vae, first=True), VaeEncoderStep(vae)
        self.dec_first, self.dec = VaeDecoderStep(vae, first=True), VaeDecoderStep(vae)

    def pad(self, pixels):
        """(B, 3, T, H, W) -> padded to 4n + 1 frames and multiples of 8 (replicating the edges)."""
        T, H, W = pixels.shape[-3:]
        f, s = self.temporal_factor, self.spatial_factor
        extra_t = f * (latent_frames(self, T) - 1) + 1 - T
        if extra_t:
            pixels = torch.cat([pixels, pixels[:, :, -1:].expand(-1, -1, extra_t, -1, -1)], dim=2)
        if H % s or W % s:
            pixels = F.pad(pixels, (0, (-W) % s, 0, (-H) % s, 0, 0), mode="replicate")
        return pixels

    @torch.no_grad()
    def encode(self, pixels):
        """(B, 3, T, H, W) in [0, 1] -> (B, 16, (T-1)//4 + 1 rounded up, ceil(H/8), ceil(W/8))."""
        return torch.cat([self._encode_one(p[None]) for p in self.pad(pixels)], dim=0)

    @torch.no_grad()
    def decode(self, latents):
        """(B, 16, T', h, w) -> (B, 3, 4 (T' - 1) + 1, 8h, 8w) in [0, 1]."""
        return torch.cat([self._decode_one(z[None]) for z in latents], dim=0)

    def _encode_one(self, x):
        f = self.temporal_factor * self.k
        y, *cache = self.enc_first(x[:, :, :1])
        outs = [y]
        for i in range(1, x.shape[2], f):
            y, *cache = self.enc(x[:, :, i : i + f], *cache)
            outs.append(y)
        return torch.cat(outs, dim=2)

    def _decode_one(self, z):
        y, *cache = self.dec_first(z[:, :, :1])
        outs = [y]
        for i in range(1, z.shape[2], self.k):
            y, *cache = self.dec(z[:, :, i : i + self.k], *cache)
            outs.append(y)
        return torch.cat(outs, dim=2)
