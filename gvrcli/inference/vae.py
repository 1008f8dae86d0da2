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

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from models.manifest import ManifestError, ModelManifest
from models.vae_manifest import GRAPH_ROLES, VaeManifest

from gvrbase.errors import first_line
from gvrcli.errors import ModelError, RetryableError
from gvrcli.inference.loaded import LoadedModel, run_graph
from gvrcli.inference.modelfile import graph_paths, read_graph
from gvrcli.inference.tiling import ramp, window_starts
from gvrcli.inference.vae_plan import GROUP, RolePlan


@dataclass(frozen=True)
class VaeGraphs:
    """The four VAE graphs' manifests, by role (``models.vae_manifest.GRAPH_ROLES``)."""

    manifests: dict[str, VaeManifest]
    file_mb: dict[str, float] = field(default_factory=dict)  # each graph's file (its weights), MiB

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
    return VaeGraphs(manifests, {role: paths[role].stat().st_size / 2**20 for role in GRAPH_ROLES})


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


class TiledChain:
    """One role's chunks over overlapping spatial tiles, each tile a ``_Chain`` with its own causal
    caches, the tiles' outputs blended with a linear ramp across the overlap (``gvrcli.inference.tiling``).

    ``run_group`` takes consecutive whole-frame chunks and runs them tile-major: every chunk of the
    group through tile 1, then tile 2, ... With ``plan.spill`` a tile's caches go to a file in a
    private temporary folder after its group and come back before the next, so memory holds one
    tile's caches (``gvrcli.inference.vae_plan``). Tiles are cut in latent cells, so no VAE cell is
    split; the mid-block attention sees one tile, which is why the result is close to, not equal
    to, the one-piece result (docs/vae-tiling.md measures how close).
    """

    def __init__(self, model: LoadedModel, vae: VaeGraphs, role: str, plan: RolePlan):
        self.model, self.vae, self.role, self.plan = model, vae, role, plan
        s = vae.spatial_factor
        self.in_cell, self.out_cell = (s, 1) if role == "vae_encoder" else (1, s)
        self.chains: dict[tuple[int, int], _Chain] = {}
        self.spilled: dict[tuple[int, int], list[tuple[str, tuple]]] = {}
        self._dir: tempfile.TemporaryDirectory | None = None
        self.spill_seconds = 0.0

    @property
    def started(self) -> bool:
        return bool(self.chains)

    def run_group(self, chunks: list[np.ndarray], cells: tuple[int, int], out_shapes: list[tuple], keep: bool = True) -> list[np.ndarray]:
        """Whole-frame chunks (1, C, F, H, W) on an h x w latent grid -> their blended outputs.
        ``keep`` False: no chunk follows (a spilled tile's caches are dropped, not written)."""
        h, w = cells
        (th, tw), ov, ic, oc = self.plan.tile, self.plan.overlap, self.in_cell, self.out_cell
        outs = [np.zeros(shape, dtype=np.float32) for shape in out_shapes]
        weight = np.zeros(out_shapes[0][-2:], dtype=np.float32)
        ys, xs = window_starts(h, th, ov), window_starts(w, tw, ov)
        for y in ys:
            for x in xs:
                chain = self._chain((y, x))
                Y, X = slice(y * oc, (y + th) * oc), slice(x * oc, (x + tw) * oc)
                wy = ramp(th * oc, (y > 0) * ov * oc, (y + th < h) * ov * oc)
                wx = ramp(tw * oc, (x > 0) * ov * oc, (x + tw < w) * ov * oc)
                w2 = wy[:, None] * wx[None, :]
                for out, chunk in zip(outs, chunks):
                    piece = np.ascontiguousarray(chunk[..., y * ic : (y + th) * ic, x * ic : (x + tw) * ic])
                    part = chain.run(piece, (th, tw), (*out.shape[:-2], th * oc, tw * oc))
                    part *= w2
                    out[..., Y, X] += part
                weight[Y, X] += w2
                self._put_away((y, x), chain, keep)
        for out in outs:
            out /= weight
        return outs

    def _chain(self, key: tuple[int, int]) -> _Chain:
        if key not in self.chains:
            self.chains[key] = _Chain(self.model, self.vae, self.role)
        chain = self.chains[key]
        if key in self.spilled:
            started = time.perf_counter()
            chain.caches = {}
            with open(self._path(key), "rb") as f:
                for name, shape in self.spilled.pop(key):
                    chain.caches[name] = np.fromfile(f, dtype=np.float32, count=int(np.prod(shape))).reshape(shape)
            self.spill_seconds += time.perf_counter() - started
        return chain

    def _put_away(self, key: tuple[int, int], chain: _Chain, keep: bool) -> None:
        if not self.plan.spill:
            return
        if keep:
            started = time.perf_counter()
            if self._dir is None:
                self._dir = tempfile.TemporaryDirectory(prefix="gvr-vae-caches-")
            with open(self._path(key), "wb") as f:
                for a in chain.caches.values():
                    np.ascontiguousarray(a, dtype=np.float32).tofile(f)
            self.spilled[key] = [(n, a.shape) for n, a in chain.caches.items()]
            self.spill_seconds += time.perf_counter() - started
        chain.caches = {}  # started (not None), its caches on disk (or no longer needed)

    def _path(self, key: tuple[int, int]) -> Path:
        return Path(self._dir.name) / f"{self.role}-{key[0]}-{key[1]}.f32"

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


class _Runner:
    """A role's chunks one piece (``_Chain``) or tiled (``TiledChain``), grouped when spilled; timed.
    ``lean`` (``VaePlan.lean``): the first chunk runs as a group of its own (through every tile),
    then the role's first-chunk graph is dropped from the loaded model."""

    def __init__(self, model: LoadedModel, vae: VaeGraphs, role: str, plan: RolePlan | None, lean: bool = False):
        self.plan, self.model, self.role = plan, model, role
        self.tiled = TiledChain(model, vae, role, plan) if plan is not None and plan.tiled else None
        self.chain = _Chain(model, vae, role)
        self.group = GROUP if self.tiled is not None and plan.spill else 1  # chunks run tile-major together
        self.first_graph_loaded = lean  # dropped after the first group when lean
        self.pending: list[tuple[np.ndarray, tuple]] = []
        self.seconds = 0.0

    def push(self, x: np.ndarray, cells: tuple[int, int], out_shape: tuple) -> list[np.ndarray]:
        self.pending.append((x, out_shape))
        group = 1 if self.first_graph_loaded else self.group
        return self._flush(cells) if len(self.pending) >= group else []

    def flush(self, cells: tuple[int, int] | None) -> list[np.ndarray]:
        """The outputs of chunks still waiting for their group (the clip's end)."""
        out = self._flush(cells, keep=False) if self.pending and cells is not None else []
        if self.tiled is not None:
            self.tiled.close()
        return out

    def _flush(self, cells: tuple[int, int], keep: bool = True) -> list[np.ndarray]:
        started = time.perf_counter()
        chunks, shapes = [x for x, _ in self.pending], [s for _, s in self.pending]
        self.pending = []
        if self.tiled is None:
            outs = [self.chain.run(x, cells, s) for x, s in zip(chunks, shapes)]
        else:
            outs = self.tiled.run_group(chunks, cells, shapes, keep)
            release = getattr(self.tiled.model, "release", None)  # the planner counted the working set as transient
            if release is not None:
                for role in (self.tiled.role, f"{self.tiled.role}_first"):
                    release(role)
        if self.first_graph_loaded:  # a lean plan: the first chunk has run through every tile
            self.first_graph_loaded = False
            self.model.drop(f"{self.role}_first")
        self.seconds += time.perf_counter() - started
        return outs


class ChunkedEncoder:
    """Pixels -> normalised latents, streaming: ``push`` one planar frame (3, H, W) in [0, 1] (H, W
    multiples of 8), get back the latent frames (C, H/8, W/8) it completes. ``finish`` pads the last
    group of 4 by repeating the last frame (any length becomes 4n + 1 frames, as the VAE needs).
    ``plan`` (``gvrcli.inference.vae_plan.RolePlan``): tiles, and caches spilled, as planned;
    ``lean``: the first-chunk graph is dropped after the first chunk (``VaePlan.lean``)."""

    def __init__(self, model: LoadedModel, vae: VaeGraphs, plan: RolePlan | None = None, lean: bool = False):
        self.runner = _Runner(model, vae, "vae_encoder", plan, lean)
        self.channels = vae.manifests["vae_encoder"].latent_channels
        self.f, self.s = vae.temporal_factor, vae.spatial_factor
        self.group: list[np.ndarray] = []
        self.last: np.ndarray | None = None
        self.cells: tuple[int, int] | None = None
        self._first = True

    @property
    def seconds(self) -> float:
        return self.runner.seconds

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        self.last = frame
        self.group.append(frame)
        need = 1 if self._first else self.f
        return self._run() if len(self.group) == need else []

    def finish(self) -> list[np.ndarray]:
        out = []
        if self.group:
            while len(self.group) < self.f:
                self.group.append(self.last)
            out = self._run()
        return out + [z[0, :, 0] for z in self.runner.flush(self.cells)]

    def _run(self) -> list[np.ndarray]:
        x = np.stack(self.group, axis=1)[None]  # (1, 3, F, H, W)
        self.group, self._first = [], False
        H, W = x.shape[-2:]
        self.cells = (H // self.s, W // self.s)
        zs = self.runner.push(np.ascontiguousarray(x, dtype=np.float32), self.cells, (1, self.channels, 1, *self.cells))
        return [z[0, :, 0] for z in zs]  # (C, h, w) each


class ChunkedDecoder:
    """Normalised latents -> pixels, streaming: ``push`` one latent frame (C, h, w), get back its
    frames (3, 8h, 8w) in [0, 1]: 1 for the first latent frame, 4 for each later one (with spilled
    tiles, a group's frames at once; ``finish`` returns the rest). ``plan``: as ``ChunkedEncoder``'s."""

    def __init__(self, model: LoadedModel, vae: VaeGraphs, plan: RolePlan | None = None, lean: bool = False):
        self.runner = _Runner(model, vae, "vae_decoder", plan, lean)
        self.f, self.s = vae.temporal_factor, vae.spatial_factor
        self.cells: tuple[int, int] | None = None
        self._first = True

    @property
    def seconds(self) -> float:
        return self.runner.seconds

    def push(self, z: np.ndarray) -> list[np.ndarray]:
        h, w = self.cells = z.shape[-2:]
        frames = 1 if self._first else self.f
        self._first = False
        xs = self.runner.push(np.ascontiguousarray(z[None, :, None], dtype=np.float32), (h, w), (1, 3, frames, h * self.s, w * self.s))
        return [x[0, :, k] for x in xs for k in range(x.shape[2])]

    def finish(self) -> list[np.ndarray]:
        return [x[0, :, k] for x in self.runner.flush(self.cells) for k in range(x.shape[2])]


def pad_to_multiple(frame: np.ndarray, multiple: int) -> np.ndarray:
    """Planar (C, H, W) padded at the bottom and right, replicating the edge, to multiples of ``multiple``."""
    H, W = frame.shape[-2:]
    ph, pw = (-H) % multiple, (-W) % multiple
    return np.pad(frame, ((0, 0), (0, ph), (0, pw)), mode="edge") if ph or pw else frame
