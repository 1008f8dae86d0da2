"""The VAE stages of a latent-cascade bundle: chunked encoder and decoder runners, caches carried.

A bundle (``gvr export --vae``) holds the Wan2.1 VAE as four graphs (``export.vae``): encoder and
decoder, each a first-chunk graph and a later-chunk ("step") graph whose causal caches are explicit
inputs and outputs. The runners here chain them the way diffusers chains its own loop: the encoder
takes frame 0 alone, then 4 frames per latent frame; the decoder one latent frame at a time (1
frame out first, then 4). Only one chunk and the fixed-size caches are ever held, so any length
runs in bounded memory, and the result equals a one-piece encode or decode (tested).

``read_vae`` checks the bundle before any video: every VAE graph's own manifest must name the VAE
whose hash the denoiser records (its files' hashes are checked by ``graph_paths``), so a bundle
carrying another VAE's ``vae_*`` files is a model error (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from models.manifest import ManifestError, ModelManifest
from models.vae_manifest import GRAPH_ROLES, VaeManifest

from gvrcli.errors import ModelError, RetryableError, first_line
from gvrcli.inference.backends import LoadedModel, run_graph
from gvrcli.inference.modelfile import graph_paths, read_graph


@dataclass(frozen=True)
class VaeGraphs:
    """The four VAE graphs' manifests, by role (``models.vae_manifest.GRAPH_ROLES``)."""

    manifests: dict[str, VaeManifest]

    @property
    def spatial_factor(self) -> int:
        return self.manifests["vae_encoder"].spatial_factor

    @property
    def temporal_factor(self) -> int:
        return self.manifests["vae_encoder"].temporal_factor


def read_vae(path: Path, manifest: ModelManifest) -> VaeGraphs:
    """The VAE graphs of the bundle whose denoiser is at ``path``; ModelError (exit 2) unless each
    is the graph its role needs, of the VAE the denoiser records, in the denoiser's latent space."""
    paths = graph_paths(path, manifest)  # present, inside the folder, bytes as recorded
    manifests = {}
    for role in GRAPH_ROLES:
        text, io = read_graph(paths[role])
        try:
            m = VaeManifest.from_json(text, source=f"model {paths[role]}")
        except ManifestError as e:
            raise ModelError(str(e)) from None
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as e:  # a forged manifest no check foresaw
            raise ModelError(f"model {paths[role]}: unreadable gvr VAE manifest ({type(e).__name__}: {str(e)[:120]})") from None
        _check_vae_io(paths[role], m, io)
        if m.graph_role != role:
            raise ModelError(f"model {path}: its {role} graph {paths[role].name} is a {m.graph_role} graph")
        if m.weights_sha256 != manifest.vae_weights_sha256:
            raise ModelError(
                f"model {path}: its {role} graph {paths[role].name} is from another VAE than the one the denoiser "
                "was bundled with (weights hash differs)"
            )
        if m.codec != manifest.codec or m.latent_channels != manifest.latent_channels:
            raise ModelError(f"model {path}: its VAE ({m.codec}, {m.latent_channels} channels) is not the denoiser's latent space ({manifest.codec})")
        manifests[role] = m
    return VaeGraphs(manifests)


def _check_vae_io(path: Path, m: VaeManifest, io) -> None:
    """The names the manifest feeds and reads must be the graph's own inputs and outputs."""
    names_in, names_out = io
    want_in, want_out = [m.input, *m.cache_inputs], [m.output, *m.cache_outputs]
    if set(want_in) != set(names_in) or set(want_out) - set(names_out):
        raise ModelError(
            f"model {path}: its VAE manifest names inputs {want_in} / outputs {want_out}, the graph has "
            f"{names_in} / {names_out} (a forged or mismatched manifest)"
        )


def check_vae(model: LoadedModel, vae: VaeGraphs, source: Path) -> None:
    """Every VAE graph once on the smallest frames (one latent cell) before any video, as
    ``check_model`` does for the denoiser: a manifest whose caches, channels or shapes disagree
    with its graphs (forged and rehashed) is a model error (exit 2), not a failure of every file."""
    s, f = vae.spatial_factor, vae.temporal_factor
    try:
        encoder = ChunkedEncoder(model, vae)
        frame = np.full((3, s, s), 0.5, np.float32)
        z = [x for _ in range(1 + f) for x in encoder.push(frame)] + encoder.finish()
        decoder = ChunkedDecoder(model, vae)
        for latent in z[:2]:
            decoder.push(latent)
    except RetryableError:
        raise
    except Exception as e:
        raise ModelError(f"model {source}: a test run of its VAE graphs fails; they do not match their manifests ({first_line(e)})") from None


class _Chain:
    """One role's first graph, then its step graph, with the caches fed on."""

    def __init__(self, model: LoadedModel, vae: VaeGraphs, role: str):
        self.model, self.role = model, role
        self.first_m, self.step_m = vae.manifests[f"{role}_first"], vae.manifests[role]
        self.caches: dict[str, np.ndarray] | None = None  # None: the next chunk is the first

    def run(self, x: np.ndarray, cells: tuple[int, int], out_shape: tuple[int, ...]) -> np.ndarray:
        """One chunk ``x`` (1, C, F, H, W) on an h x w latent grid -> the chunk's output."""
        first = self.caches is None
        m = self.first_m if first else self.step_m
        role = m.graph_role
        shapes = m.cache_shapes(*cells)
        outputs = {m.output: out_shape, **{n + "_out": shapes[n] for n in shapes}}
        inputs = {m.input: x, **({} if first else self.caches)}
        result = run_graph(self.model, role, inputs, outputs)
        self.caches = {n: result[n + "_out"] for n in shapes}
        return result[m.output]


class ChunkedEncoder:
    """Pixels -> normalised latents, streaming: ``push`` one planar frame (3, H, W) in [0, 1] (H, W
    multiples of 8), get back the latent frames (C, H/8, W/8) it completes. ``finish`` pads the last
    group of 4 by repeating the last frame (any length becomes 4n + 1 frames, as the VAE needs)."""

    def __init__(self, model: LoadedModel, vae: VaeGraphs):
        self.chain = _Chain(model, vae, "vae_encoder")
        self.channels = vae.manifests["vae_encoder"].latent_channels
        self.f, self.s = vae.temporal_factor, vae.spatial_factor
        self.group: list[np.ndarray] = []
        self.last: np.ndarray | None = None

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        self.last = frame
        self.group.append(frame)
        need = 1 if self.chain.caches is None else self.f
        return self._run() if len(self.group) == need else []

    def finish(self) -> list[np.ndarray]:
        if not self.group:
            return []
        while len(self.group) < self.f:
            self.group.append(self.last)
        return self._run()

    def _run(self) -> list[np.ndarray]:
        x = np.stack(self.group, axis=1)[None]  # (1, 3, F, H, W)
        self.group = []
        H, W = x.shape[-2:]
        cells = (H // self.s, W // self.s)
        z = self.chain.run(np.ascontiguousarray(x, dtype=np.float32), cells, (1, self.channels, 1, *cells))
        return [z[0, :, 0]]  # (C, h, w)


class ChunkedDecoder:
    """Normalised latents -> pixels, streaming: ``push`` one latent frame (C, h, w), get back its
    frames (3, 8h, 8w) in [0, 1]: 1 for the first latent frame, 4 for each later one."""

    def __init__(self, model: LoadedModel, vae: VaeGraphs):
        self.chain = _Chain(model, vae, "vae_decoder")
        self.f, self.s = vae.temporal_factor, vae.spatial_factor

    def push(self, z: np.ndarray) -> list[np.ndarray]:
        h, w = z.shape[-2:]
        frames = 1 if self.chain.caches is None else self.f
        x = self.chain.run(np.ascontiguousarray(z[None, :, None], dtype=np.float32), (h, w), (1, 3, frames, h * self.s, w * self.s))
        return [x[0, :, k] for k in range(frames)]


def pad_to_multiple(frame: np.ndarray, multiple: int) -> np.ndarray:
    """Planar (C, H, W) padded at the bottom and right, replicating the edge, to multiples of ``multiple``."""
    H, W = frame.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    return np.pad(frame, ((0, 0), (0, ph), (0, pw)), mode="edge") if ph or pw else frame
