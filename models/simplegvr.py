"""SimpleGVR: a simple baseline for latent-cascaded video super-resolution (Xie et al., 2025).

A light diffusion transformer that turns a base generator's low-resolution video latents into
high-resolution latents. Reads top to bottom like the paper:

    LR latent --noise aug (own level)--> LatentUpsampler (conv3d -> bilinear to H x W -> conv3d) --+
    noisy HR latent z_t ------------------------------------------------------------------------+-> concat
    -> PatchEmbed -> DiT blocks (adaLN-Zero on timestep + noise level; [2D spatial attention per
       frame]; 3D attention in interleaving temporal units, sparse local attention; [cross-attention
       to the prompt's text tokens]; MLP) -> FinalLayer -> prediction -> velocity

The paper's block, inherited from its text-to-video base, has all four sub-layers; ``tiny`` keeps
only the 3D attention and the MLP, ``base`` has them all. Prompt embeddings come from the base
pipeline's text encoder (gvr ships none); a learned null embedding stands for "no prompt", and
training drops the prompt so that classifier-free guidance (``rectified_flow.guided``) works.
The output size is any H x W: the upsampler interpolates to it, whatever the ratio.

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

from models.attention import MODES, CrossAttention, LayerNorm32, UnitAttention, pad, rope_3d
from models.codec import get_codec
from models.rectified_flow import euler_sample, guided

PREDICTIONS = ("x0_residual", "velocity")


@dataclass
class GVRConfig:
    latent_channels: int | None = None  # channels of the codec's latent; None: the codec's own (3 pixel, 16 wan2.1)
    dim: int = 64
    depth: int = 4
    heads: int = 2
    mlp_ratio: float = 4.0
    patch: int = 8  # spatial patch, latent cells per token side (temporal patch is 1)
    scale: int = 2  # the nominal (trained) ratio, 2 or 4; any output size runs (``condition(size=)``)
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
    spatial_attention: bool = False  # a per-frame 2D attention sub-layer before the 3D one (paper block)
    text_dim: int = 0  # width of the prompt embeddings (T5-XXL: 4096); 0 = no text cross-attention
    text_tokens: int = 0  # prompt tokens the model takes (longer prompts are truncated, shorter padded with the null embedding)
    shift: float = 1.0  # SD3 timestep shift of the sampler schedule (rectified_flow.timesteps); 1 = uniform

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
        if self.text_dim < 0 or self.text_tokens < 0 or (self.text_dim > 0) != (self.text_tokens > 0):
            raise ValueError(f"text_dim {self.text_dim} and text_tokens {self.text_tokens} must both be positive (text) or both 0")
        if not self.shift > 0:
            raise ValueError(f"shift must be > 0, got {self.shift}")

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


class TextEmbedder(nn.Module):
    """Prompt embeddings (B, L, text_dim) -> tokens (B, L, dim): PixArt's caption MLP. Per token, so
    padding the prompt with null rows before it equals padding its output with the projected null."""

    def __init__(self, text_dim: int, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim))

    def forward(self, prompt: torch.Tensor) -> torch.Tensor:
        return self.mlp(prompt.to(self.mlp[0].weight.dtype))


class LatentUpsampler(nn.Module):
    """The condition path: conv3d -> bilinear to the output size -> conv3d (both convs start as identity)."""

    def __init__(self, channels: int, scale: int):
        super().__init__()
        self.scale = scale
        # Replicate padding: no dark rim at frame edges (and so at the runtime's tile edges).
        self.pre = nn.Conv3d(channels, channels, 3, padding=1, padding_mode="replicate")
        self.post = nn.Conv3d(channels, channels, 3, padding=1, padding_mode="replicate")
        for conv in (self.pre, self.post):
            nn.init.dirac_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor, size=None) -> torch.Tensor:  # (B, C, T, h, w) -> (B, C, T, H, W)
        """``size`` = (H, W) of the output, any ratio; None = the nominal ``scale`` x. At an integer
        ratio, interpolating to a size computes exactly what ``scale_factor`` does."""
        x = self.pre(x)
        B, C, T, h, w = x.shape
        H, W = size if size is not None else (h * self.scale, w * self.scale)
        x = x.transpose(1, 2).reshape(B * T, C, h, w)
        x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
        x = x.view(B, T, C, H, W).transpose(1, 2)
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
        x = pad(x, (0, (-W) % p, 0, (-H) % p, 0, 0), mode="replicate")  # bf16: in fp32 (models.attention.pad)
        return self.proj(x).permute(0, 2, 3, 4, 1)  # (B, T, Hp, Wp, dim)


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------


class DiTBlock(nn.Module):
    """Pre-norm transformer block, the paper's order: [2D spatial attention], 3D attention in
    temporal units, [text cross-attention], MLP. adaLN-Zero modulation from the conditioning vector
    on the self-attentions and the MLP; the cross-attention has its own affine LayerNorm (as in Wan
    and PixArt: the prompt is the same at every timestep)."""

    def __init__(self, cfg: GVRConfig, shifted: bool):
        super().__init__()
        self.shifted = shifted  # interleaving: odd blocks shift the temporal unit boundaries
        self.norm1 = LayerNorm32(cfg.dim, elementwise_affine=False, eps=1e-6)
        self.attn = UnitAttention(cfg.dim, cfg.heads, cfg.attention, cfg.window, cfg.temporal_unit, cfg.topk)
        self.norm2 = LayerNorm32(cfg.dim, elementwise_affine=False, eps=1e-6)
        hidden = int(cfg.dim * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, cfg.dim))
        mods = 6
        if cfg.spatial_attention:
            # The same windows and routing with a temporal unit of one frame: each 2D unit attends
            # to its own and its top-k units of that frame, so the cost stays linear in area.
            self.norm_s = LayerNorm32(cfg.dim, elementwise_affine=False, eps=1e-6)
            self.spatial = UnitAttention(cfg.dim, cfg.heads, cfg.attention, cfg.window, 1, cfg.topk)
            mods += 3
        if cfg.text_dim:
            self.norm_x = LayerNorm32(cfg.dim, eps=1e-6)
            self.cross = CrossAttention(cfg.dim, cfg.heads)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, mods * cfg.dim))
        nn.init.zeros_(self.adaLN[1].weight)  # adaLN-Zero: every block starts as the identity
        nn.init.zeros_(self.adaLN[1].bias)

    def forward(self, x, c, rope, text=None):  # x: (B, T, H, W, D), c: (B, D), text: (B, N, D)
        mod = self.adaLN(c)[:, None, None, None, :]  # (B, 1, 1, 1, 6D or 9D)
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m, *spatial = mod.chunk(mod.shape[-1] // x.shape[-1], dim=-1)
        if spatial:
            shift_s, scale_s, gate_s = spatial
            x = x + gate_s * self.spatial(modulate(self.norm_s(x), shift_s, scale_s), rope, False)
        x = x + gate_a * self.attn(modulate(self.norm1(x), shift_a, scale_a), rope, self.shifted)
        if text is not None:
            x = x + self.cross(self.norm_x(x), text)
        return x + gate_m * self.mlp(modulate(self.norm2(x), shift_m, scale_m))


class FinalLayer(nn.Module):
    """adaLN -> linear to patch pixels -> unpatchify. Zero-initialised: the untrained head outputs 0."""

    def __init__(self, dim: int, patch: int, channels: int):
        super().__init__()
        self.patch, self.channels = patch, channels
        self.norm = LayerNorm32(dim, elementwise_affine=False, eps=1e-6)
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
        if cfg.text_dim:
            self.text_embed = TextEmbedder(cfg.text_dim, cfg.dim)
            # "No prompt" (PixArt's y_embedding): the tokens training substitutes for a dropped prompt.
            self.null_text = nn.Parameter(torch.randn(cfg.text_tokens, cfg.text_dim) / cfg.text_dim**0.5)

    # Parameters that stay fp32 when the network computes in half precision (``to_compute_dtype``):
    # the condition path, whose 3-channel convolutions are < 1% of a step's FLOPs and whose output
    # ``base`` is the low band of the result, and the text path (once per video). Norms (``LayerNorm32``, ``RMSNorm``), RoPE, routing
    # scores, timestep sinusoids and the Euler update compute in fp32 by construction, whatever
    # the parameters' dtype: the model's one declaration of what must stay fp32.
    FP32_MODULES = ("upsampler", "text_embed")

    @property
    def compute_dtype(self) -> torch.dtype:
        """What the transformer computes in: its parameters' dtype (fp32, or fp16/bf16)."""
        return self.patch_embed.proj.weight.dtype

    def to_compute_dtype(self, dtype: torch.dtype) -> "SimpleGVR":
        """Cast the transformer to ``dtype`` (torch.float16 / bfloat16 / float32) in place, keeping
        ``FP32_MODULES`` in fp32. Inputs and outputs of ``condition``/``step`` stay fp32."""
        for name, child in self.named_children():
            child.to(torch.float32 if name in self.FP32_MODULES else dtype)  # never through half and back
        return self

    # The graphs of an exported model (``export``): ``text`` runs once per video (a model with a
    # text path), ``condition`` once per clip (chunk, tile), ``step`` once per sampler step.
    # ``forward`` is one velocity evaluation, what the reference sampler ``upscale`` integrates;
    # ``step`` = Euler update around the same network.

    def text(self, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The text graph: ``(text, text_null)``, prompt embeddings (B, L, text_dim) projected to
        (B, L, dim) and the null embedding projected, (1, text_tokens, dim).

        The projection is per token, so the runtime pads a short prompt's ``text`` with the rows
        of ``text_null`` after it, which equals ``prompt_tokens`` (padding before it)."""
        return self.text_embed(prompt), self.text_embed(self.null_text[None])

    def prompt_tokens(self, prompt: torch.Tensor | None, batch: int = 1) -> torch.Tensor:
        """What the step takes as ``text``: (B, text_tokens, dim). ``prompt`` (B, L, text_dim) is cut
        to text_tokens (a longer prompt loses its tail) or padded with the null embedding's rows
        L.. (a shorter one); None = the null embedding ("no prompt")."""
        N = self.config.text_tokens
        null = self.null_text[None].expand(batch if prompt is None else prompt.shape[0], -1, -1)
        prompt = null if prompt is None else torch.cat([prompt[:, :N].to(null.dtype), null[:, prompt.shape[1] :]], dim=1)
        return self.text_embed(prompt)  # (B, N, dim)

    def condition(self, lr: torch.Tensor, lr_noise: torch.Tensor, noise_aug: torch.Tensor, size=None) -> tuple[torch.Tensor, ...]:
        """What a clip's sampler steps share: ``(cond,)``, or ``(cond, base)`` for ``x0_residual``.

        cond = the noise-augmented LR latent, upsampled: (B, C, T, h, w) -> (B, C, T, H, W), with
        (H, W) = ``size`` (any ratio; None = the nominal scale x);
        base = the clean LR latent, upsampled (the x0 the residual head adds to).
        """
        a = noise_aug.view(-1, 1, 1, 1, 1).to(lr.dtype)
        cond = self.upsampler((1 - a) * lr + a * lr_noise, size)  # same interpolation as the forward process
        if self.config.prediction == "velocity":
            return (cond,)
        return cond, self.upsampler(lr, size)

    def velocity(self, z_t, t, cond, noise_aug, base=None, text=None):
        """The network given the clip's condition (and, with a text path, the projected prompt
        tokens ``text`` (B, N, dim), ``prompt_tokens``): velocity (B, C, T, H, W) at (z_t, t).
        In z_t's dtype: the transformer computes in ``compute_dtype``; latents, the x0 conversion and
        the sampler stay in theirs (fp32), so a half-precision network takes and returns fp32."""
        H, W = z_t.shape[-2:]
        x = self.patch_embed(torch.cat([z_t, cond], dim=1).to(self.compute_dtype))  # (B, T, Hp, Wp, D)
        c = self.t_embed(t) + self.aug_embed(noise_aug)  # (B, D)
        _, T, Hp, Wp, _ = x.shape
        rope = rope_3d(T, Hp, Wp, self.config.dim // self.config.heads, self.config.rope_theta, x.device)
        if self.config.text_dim and text is None:
            text = self.prompt_tokens(None, x.shape[0])
        if text is not None:
            text = text.to(self.compute_dtype)
        for block in self.blocks:
            x = block(x, c, rope, text)
        out = self.final(x, c, H, W).to(z_t.dtype)  # (B, C, T, H, W)
        if self.config.prediction == "velocity":
            return out
        # x0 = upsampled clean condition + residual; rectified flow's velocity is (z_t - x0) / t.
        return (z_t - (base + out)) / t.view(-1, 1, 1, 1, 1).to(z_t.dtype)

    def step(self, z_t, t, t_next, cond, noise_aug, base=None, text=None):
        """One Euler step of the sampler: ``z_next = z_t + (t_next - t) * velocity``.

        Guidance needs no other graph: the update is affine in the velocity, so the runtime runs
        this step with the prompt's and the null ``text`` and combines the two ``z_next`` exactly
        as the velocities combine (``rectified_flow.guided``), which is the guided Euler step."""
        dt = (t_next - t).view(-1, 1, 1, 1, 1).to(z_t.dtype)
        return z_t + dt * self.velocity(z_t, t, cond, noise_aug, base, text)

    def forward(self, z_t, t, lr, lr_noise, noise_aug, prompt=None):
        """One denoiser evaluation: velocity (B, C, T, H, W) at (z_t, t) given the LR latent.

        z_t: (B, C, T, H, W) noisy HR latent, any H x W; t: (B,) in (0, 1]; lr, lr_noise:
        (B, C, T, h, w) clean LR latent and the standard normal noise of its augmentation;
        noise_aug: (B,) augmentation level; prompt: (B, L, text_dim) embeddings or None.
        """
        cond, *base = self.condition(lr, lr_noise, noise_aug, z_t.shape[-2:])
        text = self.prompt_tokens(prompt, z_t.shape[0]) if self.config.text_dim else None
        return self.velocity(z_t, t, cond, noise_aug, *(base or [None]), text)

    def step_independent(self) -> bool:
        """True when the output does not depend on the number of sampler steps: an ``x0_residual``
        network whose head is zero (the untrained default) predicts x0 = base at every t, and Euler
        integration of that exact velocity lands on base after any number of steps."""
        head = self.final.linear
        return self.config.prediction == "x0_residual" and not head.weight.any() and not head.bias.any()

    @torch.no_grad()
    def upscale(self, lr: torch.Tensor, steps: int | None = None, noise_aug: float | None = None, seed: int = 0, vae=None, size=None, prompt=None, cfg: float = 1.0):
        """Pixels (B, 3, T, h, w) in [0, 1] -> (B, 3, T, H, W) in [0, 1]; deterministic per seed.
        (H, W) = ``size``, default the nominal scale x.

        The latent cascade: codec encode -> ``sample`` in latent space -> codec decode. A VAE codec
        (``codec="wan2.1"``) needs the VAE module, ``vae=`` (``models.load_vae``); the input is
        padded to what the codec takes (4n + 1 frames, multiples of 8) and the output cropped back.
        """
        codec = self.latent_codec(vae)
        param = next(self.parameters())
        lr = lr.to(param.device, param.dtype)
        T, h, w = lr.shape[-3:]
        H, W = size if size is not None else (self.config.scale * h, self.config.scale * w)
        pad = getattr(codec, "pad", None)
        lat = codec.encode(pad(lr) if pad else lr)
        f = getattr(codec, "spatial_factor", 1)
        lat_size = None if size is None else (-(-H // f), -(-W // f))
        out = self.sample(lat, steps, noise_aug, seed, size=lat_size, prompt=prompt, cfg=cfg)
        return codec.decode(out)[:, :, :T, :H, :W].clamp(0, 1)

    @torch.no_grad()
    def sample(self, lat: torch.Tensor, steps: int | None = None, noise_aug: float | None = None, seed: int = 0, size=None, prompt=None, cfg: float = 1.0):
        """LR latents (B, C, T, h, w) -> HR latents (B, C, T, H, W): rectified-flow Euler, seeded.

        ``size`` = (H, W), default the nominal scale x; ``prompt`` (B, L, text_dim) embeddings or
        None; ``cfg`` the guidance scale (1 = none: one network call per step)."""
        cfg_ = self.config
        steps = cfg_.steps if steps is None else steps
        level = cfg_.noise_aug if noise_aug is None else noise_aug
        B, C, T, h, w = lat.shape
        H, W = size if size is not None else (h * cfg_.scale, w * cfg_.scale)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(B, C, T, H, W, generator=gen).to(lat)
        lr_noise = torch.randn(lat.shape, generator=gen).to(lat)
        aug = torch.full((B,), level, device=lat.device, dtype=lat.dtype)
        guide = cfg_.text_dim and prompt is not None and cfg != 1.0

        def denoise(z, t):
            t = torch.full((B,), t, device=z.device, dtype=z.dtype)
            v = self(z, t, lat, lr_noise, aug, prompt)
            return guided(self(z, t, lat, lr_noise, aug, None), v, cfg) if guide else v

        return euler_sample(denoise, noise, steps, cfg_.shift)

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
        from models.manifest import ModelManifest
        from models.tensorfile import weights_sha256

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
            text_dim=cfg.text_dim,
            text_tokens=cfg.text_tokens,
            shift=cfg.shift,
            weights_sha256=weights_sha256(self),
            untrained=self.step_independent(),
            **deployment,
        )


# --------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------

# tiny: the built-in default; pixel space, 8x8-pixel tokens, 480x270 -> 960x540 in seconds on 2 cores.
# base: the paper's setting as far as it states it: 12x9-token units, 5-frame temporal units, top-1
# routing, 50 steps, and the token grid of an 8x VAE latent with 2x2 patches, which in pixel space is
# 16x16-pixel patches (so it deploys without VAE weights), and the paper's full block: 2D spatial
# attention and cross-attention to the base model's T5 prompt embeddings (umT5-XXL as Wan2.1 uses
# them: 4096 wide, 512 tokens). Width and depth are our DiT-L-sized assumption; the paper does not
# give them.
PRESETS: dict[str, dict] = {
    "tiny": dict(),
    "base": dict(dim=1024, depth=24, heads=16, patch=16, steps=50, spatial_attention=True, text_dim=4096, text_tokens=512),
}


def build_model(preset: str = "tiny", **overrides) -> SimpleGVR:
    """The network for a named preset, with any config field overridden (e.g. scale=4)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    return SimpleGVR(GVRConfig(**{**PRESETS[preset], **overrides}))
