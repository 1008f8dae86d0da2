"""SimpleGVR: a simple baseline for latent-cascaded video super-resolution (Xie et al., 2025).

A light diffusion transformer that turns a base generator's low-resolution video latents into
high-resolution latents. Reads top to bottom like the paper:

    LR latent --noise aug (own level)--> LatentUpsampler (conv3d -> bilinear xs -> conv3d) --+
    noisy HR latent z_t ----------------------------------------------------------------------+-> concat
    -> PatchEmbed -> DiT blocks (adaLN-Zero on timestep + noise level; attention in interleaving
       temporal units, sparse local attention) -> FinalLayer -> prediction -> velocity

Sampling is rectified flow (``models.rectified_flow``). The built-in ``tiny`` preset is untrained:
its head is zero-initialised (DiT's adaLN-Zero) and it predicts x0 as the upsampled condition plus
that residual, so it returns a clean bilinear upscale through the full network. Real detail
synthesis needs a trained checkpoint (``models.load_model``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.attention import MODES, UnitAttention, rope_3d
from models.codec import get_codec
from models.rectified_flow import euler_sample

PREDICTIONS = ("x0_residual", "velocity")


@dataclass
class GVRConfig:
    latent_channels: int | None = None  # channels of the codec's latent; None: the codec's own (3 pixel, 16 wan2.1)
    dim: int = 64
    depth: int = 4
    heads: int = 2
    mlp_ratio: float = 4.0
    patch: int = 8  # spatial patch, latent cells per token side (temporal patch is 1)
    scale: int = 2  # output = scale x input, spatially; 2 or 4
    window: tuple[int, int] = (9, 12)  # 2D unit of sparse attention, tokens (rows, cols); paper 12x9
    temporal_unit: int = 5  # latent frames per temporal unit; paper 5 of 20
    topk: int = 1  # other units each query unit attends to; paper k=1
    attention: str = "sparse"  # sparse | masked | swin | full
    prediction: str = "x0_residual"  # what the head predicts; the network always returns velocity
    steps: int = 4  # default Euler steps (paper: 50)
    noise_aug: float = 0.3  # default noise-augmentation level of the LR condition (paper trains in [0.3, 0.6])
    codec: str = "pixel"
    rope_theta: float = 10000.0
    freq_dim: int = 256  # sinusoidal features of t and the noise level

    def __post_init__(self):
        self.window = tuple(self.window)
        codec = get_codec(self.codec)
        if self.latent_channels is None:
            self.latent_channels = codec.channels
        if self.latent_channels != codec.channels:
            raise ValueError(f"latent_channels {self.latent_channels} does not match codec {self.codec!r} ({codec.channels} channels)")
        if self.scale not in (2, 4):
            raise ValueError(f"scale must be 2 or 4, got {self.scale}")
        if self.attention not in MODES:
            raise ValueError(f"attention must be one of {', '.join(MODES)}, got {self.attention!r}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {', '.join(PREDICTIONS)}, got {self.prediction!r}")
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"dim {self.dim} must split into {self.heads} heads of even size")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GVRConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(unknown)}")
        return cls(**d)


# --------------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------------


def modulate(x, shift, scale):
    return x * (1 + scale) + shift


class ScalarEmbedder(nn.Module):
    """Embeds a scalar in [0, 1] per sample (timestep or noise level): sinusoids -> MLP (as DiT)."""

    def __init__(self, dim: int, freq_dim: int):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, s: torch.Tensor) -> torch.Tensor:  # (B,) -> (B, dim)
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=s.device, dtype=torch.float32) / half)
        args = (s.float() * 1000.0)[:, None] * freqs[None]  # x1000: DiT's timestep scale
        return self.mlp(torch.cat([args.cos(), args.sin()], dim=-1).to(self.mlp[0].weight.dtype))


class LatentUpsampler(nn.Module):
    """The condition path: conv3d -> bilinear xs -> conv3d (both convs start as identity)."""

    def __init__(self, channels: int, scale: int):
        super().__init__()
        self.scale = scale
        # Replicate padding: no dark rim at frame edges (and so at the runtime's tile edges).
        self.pre = nn.Conv3d(channels, channels, 3, padding=1, padding_mode="replicate")
        self.post = nn.Conv3d(channels, channels, 3, padding=1, padding_mode="replicate")
        for conv in (self.pre, self.post):
            nn.init.dirac_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, h, w) -> (B, C, T, s*h, s*w)
        x = self.pre(x)
        B, C, T, h, w = x.shape
        x = x.transpose(1, 2).reshape(B * T, C, h, w)
        x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        x = x.view(B, T, C, h * self.scale, w * self.scale).transpose(1, 2)
        return self.post(x)


class PatchEmbed(nn.Module):
    """(B, Cin, T, H, W) -> tokens (B, T, H/p, W/p, dim); H, W padded (replicate) to multiples of p."""

    def __init__(self, in_channels: int, dim: int, patch: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(in_channels, dim, (1, patch, patch), stride=(1, patch, patch))

    def forward(self, x):
        p = self.patch
        H, W = x.shape[-2:]
        x = F.pad(x, (0, (-W) % p, 0, (-H) % p, 0, 0), mode="replicate")
        return self.proj(x).permute(0, 2, 3, 4, 1)  # (B, T, Hp, Wp, dim)


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------


class DiTBlock(nn.Module):
    """Pre-norm transformer block with adaLN-Zero modulation from the conditioning vector."""

    def __init__(self, cfg: GVRConfig, shifted: bool):
        super().__init__()
        self.shifted = shifted  # interleaving: odd blocks shift the temporal unit boundaries
        self.norm1 = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.attn = UnitAttention(cfg.dim, cfg.heads, cfg.attention, cfg.window, cfg.temporal_unit, cfg.topk)
        self.norm2 = nn.LayerNorm(cfg.dim, elementwise_affine=False, eps=1e-6)
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, cfg.dim))
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 6 * cfg.dim))
        nn.init.zeros_(self.adaLN[1].weight)  # adaLN-Zero: every block starts as the identity
        nn.init.zeros_(self.adaLN[1].bias)

    def forward(self, x, c, rope):  # x: (B, T, H, W, D), c: (B, D)
        mod = self.adaLN(c)[:, None, None, None, :]  # (B, 1, 1, 1, 6D)
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = mod.chunk(6, dim=-1)
        x = x + gate_a * self.attn(modulate(self.norm1(x), shift_a, scale_a), rope, self.shifted)
        return x + gate_m * self.mlp(modulate(self.norm2(x), shift_m, scale_m))


class FinalLayer(nn.Module):
    """adaLN -> linear to patch pixels -> unpatchify. Zero-initialised: the untrained head outputs 0."""

    def __init__(self, dim: int, patch: int, channels: int):
        super().__init__()
        self.patch, self.channels = patch, channels
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, patch * patch * channels)
        for layer in (self.adaLN[1], self.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x, c, H: int, W: int):  # (B, T, Hp, Wp, D) -> (B, C, T, H, W)
        shift, scale = self.adaLN(c)[:, None, None, None, :].chunk(2, dim=-1)
        x = self.linear(modulate(self.norm(x), shift, scale))  # (B, T, Hp, Wp, p*p*C)
        B, T, Hp, Wp, _ = x.shape
        p, C = self.patch, self.channels
        x = x.view(B, T, Hp, Wp, p, p, C).permute(0, 6, 1, 2, 4, 3, 5).reshape(B, C, T, Hp * p, Wp * p)
        return x[..., :H, :W]


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


class SimpleGVR(nn.Module):
    def __init__(self, cfg: GVRConfig, seed: int = 0):
        super().__init__()
        # Seeded construction: the untrained default is the same network (same weights hash) on
        # every machine, so its shipped export can be rebuilt bit-identically.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._build(cfg)
        self.eval()

    def _build(self, cfg: GVRConfig) -> None:
        self.config = cfg
        C = cfg.latent_channels
        self.upsampler = LatentUpsampler(C, cfg.scale)
        self.patch_embed = PatchEmbed(2 * C, cfg.dim, cfg.patch)
        self.t_embed = ScalarEmbedder(cfg.dim, cfg.freq_dim)
        self.aug_embed = ScalarEmbedder(cfg.dim, cfg.freq_dim)
        self.blocks = nn.ModuleList(DiTBlock(cfg, shifted=i % 2 == 1) for i in range(cfg.depth))
        self.final = FinalLayer(cfg.dim, cfg.patch, C)

    # The two graphs of an exported model (``export``): ``condition`` runs once per clip (chunk,
    # tile), ``step`` once per sampler step. ``forward`` is one velocity evaluation, what the
    # reference sampler ``upscale`` integrates; ``step`` = Euler update around the same network.

    def condition(self, lr: torch.Tensor, lr_noise: torch.Tensor, noise_aug: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """What a clip's sampler steps share: ``(cond,)``, or ``(cond, base)`` for ``x0_residual``.

        cond = the noise-augmented LR latent, upsampled: (B, C, T, h, w) -> (B, C, T, s*h, s*w);
        base = the clean LR latent, upsampled (the x0 the residual head adds to).
        """
        a = noise_aug.view(-1, 1, 1, 1, 1).to(lr.dtype)
        cond = self.upsampler((1 - a) * lr + a * lr_noise)  # same interpolation as the forward process
        if self.config.prediction == "velocity":
            return (cond,)
        return cond, self.upsampler(lr)

    def velocity(self, z_t, t, cond, noise_aug, base=None):
        """The network given the clip's condition: velocity (B, C, T, H, W) at (z_t, t)."""
        H, W = z_t.shape[-2:]
        x = self.patch_embed(torch.cat([z_t, cond], dim=1))  # (B, T, Hp, Wp, D)
        c = self.t_embed(t) + self.aug_embed(noise_aug)  # (B, D)
        _, T, Hp, Wp, _ = x.shape
        rope = rope_3d(T, Hp, Wp, self.config.dim // self.config.heads, self.config.rope_theta, x.device)
        for block in self.blocks:
            x = block(x, c, rope)
        out = self.final(x, c, H, W)  # (B, C, T, H, W)
        if self.config.prediction == "velocity":
            return out
        # x0 = upsampled clean condition + residual; rectified flow's velocity is (z_t - x0) / t.
        return (z_t - (base + out)) / t.view(-1, 1, 1, 1, 1).to(z_t.dtype)

    def step(self, z_t, t, t_next, cond, noise_aug, base=None):
        """One Euler step of the sampler: ``z_next = z_t + (t_next - t) * velocity``."""
        dt = (t_next - t).view(-1, 1, 1, 1, 1).to(z_t.dtype)
        return z_t + dt * self.velocity(z_t, t, cond, noise_aug, base)

    def forward(self, z_t, t, lr, lr_noise, noise_aug):
        """One denoiser evaluation: velocity (B, C, T, H, W) at (z_t, t) given the LR latent.

        z_t: (B, C, T, H, W) noisy HR latent, H = scale*h; t: (B,) in (0, 1]; lr, lr_noise:
        (B, C, T, h, w) clean LR latent and the standard normal noise of its augmentation;
        noise_aug: (B,) augmentation level.
        """
        cond, *base = self.condition(lr, lr_noise, noise_aug)
        return self.velocity(z_t, t, cond, noise_aug, *base)

    def step_independent(self) -> bool:
        """True when the output does not depend on the number of sampler steps: an ``x0_residual``
        network whose head is zero (the untrained default) predicts x0 = base at every t, and Euler
        integration of that exact velocity lands on base after any number of steps."""
        head = self.final.linear
        return self.config.prediction == "x0_residual" and not head.weight.any() and not head.bias.any()

    @torch.no_grad()
    def upscale(self, lr: torch.Tensor, steps: int | None = None, noise_aug: float | None = None, seed: int = 0, vae=None):
        """Pixels (B, 3, T, h, w) in [0, 1] -> (B, 3, T, s*h, s*w) in [0, 1]; deterministic per seed.

        The latent cascade: codec encode -> ``sample`` in latent space -> codec decode. A VAE codec
        (``codec="wan2.1"``) needs the VAE module, ``vae=`` (``models.load_vae``); the input is
        padded to what the codec takes (4n + 1 frames, multiples of 8) and the output cropped back.
        """
        codec = self.latent_codec(vae)
        param = next(self.parameters())
        lr = lr.to(param.device, param.dtype)
        T, h, w = lr.shape[-3:]
        pad = getattr(codec, "pad", None)
        lat = codec.encode(pad(lr) if pad else lr)
        s = self.config.scale
        return codec.decode(self.sample(lat, steps, noise_aug, seed))[:, :, :T, : s * h, : s * w].clamp(0, 1)

    @torch.no_grad()
    def sample(self, lat: torch.Tensor, steps: int | None = None, noise_aug: float | None = None, seed: int = 0):
        """LR latents (B, C, T, h, w) -> HR latents (B, C, T, s*h, s*w): rectified-flow Euler, seeded."""
        cfg = self.config
        steps = cfg.steps if steps is None else steps
        level = cfg.noise_aug if noise_aug is None else noise_aug
        B, C, T, h, w = lat.shape
        gen = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(B, C, T, h * cfg.scale, w * cfg.scale, generator=gen).to(lat)
        lr_noise = torch.randn(lat.shape, generator=gen).to(lat)
        aug = torch.full((B,), level, device=lat.device, dtype=lat.dtype)

        def denoise(z, t):
            return self(z, torch.full((B,), t, device=z.device, dtype=z.dtype), lat, lr_noise, aug)

        return euler_sample(denoise, noise, steps)

    def codec_encode(self, pixels, vae=None):
        return self.latent_codec(vae).encode(pixels)

    def codec_decode(self, latents, vae=None):
        return self.latent_codec(vae).decode(latents)

    def latent_codec(self, vae=None):
        """The config's codec; for a VAE codec, bound to ``vae`` (which must be that codec's VAE)."""
        if vae is None:
            return get_codec(self.config.codec)
        from models.vae import VaeCodec

        codec = vae if isinstance(vae, VaeCodec) else VaeCodec(vae)
        if codec.name != self.config.codec:
            raise ValueError(f"this network works in the {self.config.codec!r} latent space, not {codec.name!r}")
        return codec

    def manifest(self, **deployment):
        """The deployment facts of this network, as the exporter writes them into artefacts."""
        from models.checkpoint import weights_sha256
        from models.manifest import ModelManifest

        cfg = self.config
        return ModelManifest(
            config=cfg.to_dict(),
            scale=cfg.scale,
            latent_channels=cfg.latent_channels,
            patch=cfg.patch,
            window=cfg.window,
            temporal_unit=cfg.temporal_unit,
            # The fewest steps that give the network's output: 1 for a step-independent one.
            steps=1 if self.step_independent() else cfg.steps,
            noise_aug=cfg.noise_aug,
            prediction=cfg.prediction,
            attention=cfg.attention,
            codec=cfg.codec,
            weights_sha256=weights_sha256(self),
            **deployment,
        )


# --------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------

# tiny: the built-in default; pixel space, 8x8-pixel tokens, 480x270 -> 960x540 in seconds on 2 cores.
# base: the paper's setting as far as it states it: 12x9-token units, 5-frame temporal units, top-1
# routing, 50 steps, and the token grid of an 8x VAE latent with 2x2 patches, which in pixel space is
# 16x16-pixel patches (so it deploys without VAE weights). Width and depth are our DiT-L-sized
# assumption; the paper does not give them.
PRESETS: dict[str, dict] = {
    "tiny": dict(),
    "base": dict(dim=1024, depth=24, heads=16, patch=16, steps=50),
}


def build_model(preset: str = "tiny", **overrides) -> SimpleGVR:
    """The network for a named preset, with any config field overridden (e.g. scale=4)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    return SimpleGVR(GVRConfig(**{**PRESETS[preset], **overrides}))
