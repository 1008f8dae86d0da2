"""The manifest of an exported VAE chunk graph (``export.vae``): what the runtime needs to chain it.

Torch-free, like ``models.manifest``, and stored the same way (JSON under ``MANIFEST_KEY`` in ONNX
``metadata_props`` / OpenVINO ``rt_info``), with its own ``format`` so that a VAE graph given where
a denoiser is expected (or the reverse) is refused by the format check.

A VAE role (``vae_encoder``, ``vae_decoder``) is two graphs: ``chunk="first"`` (the first chunk:
no cache inputs, returns the caches) and ``chunk="step"`` (every later chunk: caches in and out,
fixed shapes). Run first, then step repeatedly, feeding each ``caches[i]["name"] + CACHE_OUT_SUFFIX``
output back as the ``caches[i]["name"]`` input of the next step. Frame sizes are free (multiples of
8 pixels): a cache's spatial size is ``per_cell`` (a fraction [num, den]) times the latent grid's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from models.manifest import ManifestError, format_problems, parse_manifest

FORMAT = "gvr-vae"
FORMAT_VERSION = 1
ROLES = ("vae_encoder", "vae_decoder")
CHUNKS = ("first", "step")
CACHE_OUT_SUFFIX = "_out"
# The four graphs as a denoiser manifest's ``graphs`` names them (its companion roles).
GRAPH_ROLES = ("vae_encoder_first", "vae_encoder", "vae_decoder_first", "vae_decoder")


def graph_role(role: str, chunk: str) -> str:
    """("vae_encoder", "first") -> "vae_encoder_first"; the step graph keeps the role's name."""
    return role if chunk == "step" else f"{role}_{chunk}"


NORMALISATION = "latents = (posterior mode - latents_mean) / latents_std per channel (diffusers Wan pipelines)"


@dataclass
class VaeManifest:
    role: str  # "vae_encoder" | "vae_decoder"
    chunk: str  # "first" | "step"
    codec: str  # models.codec name, "wan2.1"
    config: dict  # the VAE's constructor config (diffusers AutoencoderKLWan)
    latent_channels: int
    spatial_factor: int
    temporal_factor: int
    latents_mean: tuple[float, ...]
    latents_std: tuple[float, ...]
    input: str  # "pixels" (encoder) | "latents" (decoder)
    output: str
    input_shape: tuple[int, ...]  # NCTHW, batch 1; -1 for the free height and width
    output_shape: tuple[int, ...]
    # [{"name", "channels", "frames", "per_cell": [num, den]}]: cache inputs of "step" graphs, cache
    # outputs of both; shape (1, channels, frames, h * num / den, w * num / den) on an h x w latent grid
    caches: tuple[dict, ...]
    weights_sha256: str  # of the VAE (models.vae.vae_sha256): what a bundle's denoiser records
    normalisation: str = NORMALISATION
    value_range: tuple[float, float] = (0.0, 1.0)  # pixels, RGB
    gvr_version: str = ""
    precision: str = "fp32"
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    def cache_shapes(self, h: int, w: int) -> dict[str, tuple[int, ...]]:
        """name -> shape of every cache on an ``h`` x ``w`` latent grid."""
        out = {}
        for c in self.caches:
            n, d = c["per_cell"]
            out[c["name"]] = (1, c["channels"], c["frames"], h * n // d, w * n // d)
        return out

    @property
    def graph_role(self) -> str:
        return graph_role(self.role, self.chunk)

    @property
    def cache_inputs(self) -> list[str]:
        return [c["name"] for c in self.caches] if self.chunk == "step" else []

    @property
    def cache_outputs(self) -> list[str]:
        return [c["name"] + CACHE_OUT_SUFFIX for c in self.caches]

    def to_json(self) -> str:
        import json

        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, source: str = "model") -> "VaeManifest":
        return parse_manifest(cls, text, source, ("latents_mean", "latents_std", "input_shape", "output_shape", "caches", "value_range"))

    def validate(self, source: str = "model") -> None:
        from models.codec import CODECS, get_codec

        problems = format_problems(self, FORMAT, FORMAT_VERSION)
        if self.role not in ROLES or self.chunk not in CHUNKS:
            problems.append(f"role/chunk {self.role}/{self.chunk} is not one of {ROLES} x {CHUNKS}")
        if self.codec not in CODECS:
            problems.append(f"unknown latent codec {self.codec!r}")
        else:
            c = get_codec(self.codec)
            if (self.latent_channels, self.spatial_factor, self.temporal_factor) != (c.channels, c.spatial_factor, c.temporal_factor):
                problems.append(f"channels/factors disagree with the {self.codec} codec")
        if len(self.latents_mean) != self.latent_channels or len(self.latents_std) != self.latent_channels:
            problems.append("latents_mean / latents_std need one value per latent channel")
        if any(not _cache_entry(c) for c in self.caches):
            problems.append("caches must be {name, channels, frames, per_cell} objects with positive sizes")
        if problems:
            raise ManifestError(f"{source}: inconsistent gvr VAE manifest: {'; '.join(problems)}")


def _cache_entry(c) -> bool:
    def pos(v, high=1 << 16):
        return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= high

    return (
        isinstance(c, dict) and set(c) == {"name", "channels", "frames", "per_cell"} and isinstance(c["name"], str)
        and pos(c["channels"]) and pos(c["frames"], 64)
        and isinstance(c["per_cell"], (list, tuple)) and len(c["per_cell"]) == 2 and all(pos(v, 64) for v in c["per_cell"])
    )
