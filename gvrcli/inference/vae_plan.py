"""Memory planning for the latent cascade's VAE stages: one piece, tiles, or tiles with spilled caches.

The Wan2.1 VAE is the memory of a latent cascade. Its decoder's causal caches alone hold 2364
floats per output pixel (``cache_mb``, exact from the graphs' manifests: 32 caches of 2 frames,
96 to 384 channels, at 1 to 1/8 of the output's side), 9.4 GiB for a 1440x720 frame, and a chunk's
run holds the caches it was given and the ones it returns. The encoder's come to 1404 floats per
input pixel. What one chunk costs, in MiB, per role:

* **caches**, held between chunks: ``cache_mb`` of the grid (two copies while a chunk runs);
* **the working set of one chunk** on the runtime: ``fixed + factor x frame-pixels`` (the chunk's
  frames x its full-resolution side, pixels out for the decoder, in for the encoder), the
  runtime's activations and its allocator's slack. The runtime keeps it once allocated (ONNX
  Runtime's arena per session, OpenVINO's infer request per graph), so the four VAE graphs'
  working sets add up in one piece: the step graph's plus ``FIRST_SHARE`` of it for the
  first-chunk graph, per role, held to the end (measured: a 1440x720 cascade planned without this
  peaked at 7 GiB under a 3000 MiB budget). Tiled runs give theirs back after each group
  (``release`` on the loaded model), so there a working set is transient. ``VAE_FIXED_MB`` / ``VAE_FACTOR`` per backend
  and role, fitted by ``benchmarks/calibrate_vae_memory.py`` on the Wan2.1 configuration (base_dim
  96; another base_dim scales the factor, its activations' channels scale with it).

The plan takes the first of these that fits the process's budget beside what the rest of the
process holds (``plan_vae``), preferring the encoder and the decoder alike in this order:

1. **one piece**: the whole frame per chunk, caches in memory (exact);
2. **tiles**: overlapping spatial tiles (latent cells), each with its own causal caches, blended
   with a linear ramp over the overlap (``gvrcli.inference.vae.TiledChain``): the working set
   shrinks to one tile's, the caches stay (the overlap adds to them); fewer tiles first;
3. **tiles, caches spilled**: as 2, but each tile's caches wait on disk between groups of
   ``GROUP`` latent frames (tile-major within a group), so memory holds one tile's caches and the
   group's frames. Slower (the caches' bytes are written and read once per group and tile).

Each of these runs with every graph loaded, or **lean**: each role's first-chunk graph (as large
as its step graph: ~270 MiB for the Wan2.1 decoder) is loaded only for the first chunk, then
dropped (``drop`` on the loaded model), so the rest of the file runs with the two step graphs'
weights, not four. Lean costs a session load per role and file; it is chosen when it saves tiles
(fewer tiles compute less overlap) or spilling, and never where everything fits anyway.

A budget nothing meets is reported (``VaePlan.fits`` False) and the smallest spilled tiles run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Working set of one chunk beyond the caches it takes and returns: fixed MiB + factor bytes per
# frame-pixel (decoder: output pixels x 4 frames; encoder: input pixels x 4 frames), for the
# Wan2.1 configuration (base_dim 96). Fitted by benchmarks/calibrate_vae_memory.py (grids of 8x8,
# 16x16 and 28x28 latent cells, a line on or above every point) on a 2-core Intel Xeon: ONNX
# Runtime encoder 30 / 214 / 715 MiB, decoder 83 / 362 / 1199 MiB; OpenVINO (which compiles per
# shape, hence its fixed part) encoder 295 / 448 / 1047, decoder 427 / 768 / 1610 MiB.
VAE_FIXED_MB = {("onnxruntime", "vae_decoder"): 0, ("onnxruntime", "vae_encoder"): 0,
                ("openvino", "vae_decoder"): 351, ("openvino", "vae_encoder"): 227}
VAE_FACTOR = {("onnxruntime", "vae_decoder"): 6380, ("onnxruntime", "vae_encoder"): 3893,
              ("openvino", "vae_decoder"): 6685, ("openvino", "vae_encoder"): 4354}
BASE_DIM = 96  # the configuration the factors were fitted on
GROUP = 2  # latent frames decoded (encoded) tile-major between two spills of a tile's caches
DEFAULT_OVERLAP = 8  # latent cells (64 pixels, as diffusers' 256-pixel tiles at a 192 stride) shared by neighbours
MIN_TILE = 12  # latent cells: smaller tiles would be mostly overlap
ROLES = ("vae_encoder", "vae_decoder")
FIRST_SHARE = 0.5  # the first-chunk graph's working set / the step graph's (1 frame in or out, not 4; rounded up)
# Resident MiB of a loaded graph per MiB of its file (its weights): 1.03-1.10 on ONNX Runtime and
# OpenVINO CPU for the Wan2.1 VAE graphs (2-core Xeon). Loading counts the upper end, dropping the lower.
WEIGHTS_LOADED, WEIGHTS_FREED = 1.1, 1.0


def runtime_of(model) -> str:
    """"onnxruntime" or "openvino", from a loaded model's description."""
    name = getattr(model, "description", "onnxruntime").split()[0]
    return name if name in ("onnxruntime", "openvino") else "onnxruntime"


@dataclass(frozen=True)
class RoleCost:
    """What one VAE role costs on one runtime: caches per latent cell (exact), working set per pixel."""

    role: str
    cache_floats_per_cell: float  # every cache's floats per latent cell of the chunk's grid
    fixed_mb: float
    factor: float  # bytes per frame-pixel at full resolution
    frames: int = 4  # full-resolution frames per chunk (the step graphs')
    pixels_per_cell: int = 64  # full-resolution pixels per latent cell
    first_weights_mb: float = 0.0  # the first-chunk graph's file: what dropping it frees (lean plans)

    @classmethod
    def of(cls, manifest, runtime: str, first_weights_mb: float = 0.0) -> "RoleCost":
        """From the role's step-graph manifest (``models.vae_manifest.VaeManifest``)."""
        floats = sum(c["channels"] * c["frames"] * (c["per_cell"][0] / c["per_cell"][1]) ** 2 for c in manifest.caches)
        scale = manifest.config.get("base_dim", BASE_DIM) / BASE_DIM
        key = (runtime, manifest.role)
        return cls(manifest.role, floats, VAE_FIXED_MB[key], VAE_FACTOR[key] * scale,
                   pixels_per_cell=manifest.spatial_factor**2, first_weights_mb=first_weights_mb)

    def cache_mb(self, h: int, w: int) -> float:
        """The caches of one h x w latent grid."""
        return self.cache_floats_per_cell * h * w * 4 / 2**20

    def work_mb(self, h: int, w: int) -> float:
        """One chunk's working set on an h x w latent grid, beyond its caches."""
        return self.fixed_mb + self.factor * self.frames * h * w * self.pixels_per_cell / 2**20

    def frame_mb(self, h: int, w: int) -> float:
        """One full-resolution float32 RGB frame of the grid (the group's buffers)."""
        return 3 * h * w * self.pixels_per_cell * 4 / 2**20


@dataclass(frozen=True)
class RolePlan:
    """How one role runs: ``tile`` (rows, cols) latent cells ((h, w): one piece), ``overlap``
    cells, ``grid`` tiles (down, across), caches ``spill``ed to disk between groups or not."""

    role: str
    tile: tuple[int, int]
    overlap: int
    grid: tuple[int, int]
    spill: bool
    held_mb: float  # between chunks: caches kept in memory, and in one piece both graphs' working sets
    peak_mb: float  # while a chunk runs: held + a tile's cache copies + the group's buffers
    first_mb: float = 0.0  # while the first chunk runs alone (lean plans): its graph's smaller working set

    @property
    def tiled(self) -> bool:
        return self.grid != (1, 1)

    def to_dict(self, factor: int) -> dict:
        """The JSON event's entry; sizes in pixels of the role's full-resolution side (x ``factor``)."""
        return {
            "tiled": self.tiled, "tile": [self.tile[1] * factor, self.tile[0] * factor],
            "overlap": self.overlap * factor if self.tiled else 0, "grid": list(self.grid),
            "spill": self.spill, "planned_mb": round(self.peak_mb),
        }


@dataclass(frozen=True)
class VaePlan:
    encoder: RolePlan
    decoder: RolePlan
    budget_mb: float
    estimate_mb: float  # the process's planned peak
    fits: bool
    lean: bool = False  # the first-chunk graphs are loaded only for their chunk

    def describe(self) -> str:
        def one(p: RolePlan, f: int) -> str:
            if not p.tiled:
                return "one piece"
            return f"{p.grid[0]}x{p.grid[1]} tiles of {p.tile[1] * f}x{p.tile[0] * f} px, overlap {p.overlap * f} px" + (", caches on disk" if p.spill else "")

        lean = ", first-chunk graphs loaded for their chunk only" if self.lean else ""
        return f"VAE encode {one(self.encoder, 8)}, decode {one(self.decoder, 8)}{lean}; planned peak {self.estimate_mb:.0f} MiB of {self.budget_mb:.0f} MiB"


def _side(length: int, pieces: int, overlap: int) -> int:
    return min(length, math.ceil((length + (pieces - 1) * overlap) / pieces))


def role_options(cost: RoleCost, h: int, w: int, overlap: int = DEFAULT_OVERLAP, lean: bool = False) -> list[RolePlan]:
    """Every way to run one role on an h x w latent grid, from fastest to leanest: one piece, then
    tile grids from fewest tiles up, caches in memory, then the same grids with caches spilled.
    ``lean``: the first-chunk graph is dropped after its chunk, and its working set with it."""
    from gvrcli.inference.tiling import window_starts

    grids = []  # square-ish tiles, from 2 pieces down the longer side up to tiles of MIN_TILE cells
    for n in range(2, max(h, w) // MIN_TILE + 2):
        ny, nx = (n, max(1, round(n * w / h))) if h >= w else (max(1, round(n * h / w)), n)
        th, tw = _side(h, ny, overlap), _side(w, nx, overlap)
        if min(th if ny > 1 else MIN_TILE, tw if nx > 1 else MIN_TILE) < MIN_TILE:
            break
        grid = (len(window_starts(h, th, overlap)), len(window_starts(w, tw, overlap)))
        if grid != (1, 1) and all(g[0] != (th, tw) for g in grids):
            grids.append(((th, tw), grid))
    work = (1 + (0 if lean else FIRST_SHARE)) * cost.work_mb(h, w)
    # A lean plan's first chunk runs alone, before any step graph has a working set: its own, smaller one.
    first = cost.cache_mb(h, w) + FIRST_SHARE * cost.work_mb(h, w)
    one = RolePlan(cost.role, (h, w), 0, (1, 1), False, cost.cache_mb(h, w) + work, 2 * cost.cache_mb(h, w) + work, first)
    options = [one]
    for spill in (False, True):
        for (th, tw), grid in grids:
            tile_cache = cost.cache_mb(th, tw)
            held = 0.0 if spill else grid[0] * grid[1] * tile_cache  # working sets are released after each group
            # Running one tile: its working set, its caches in and out (in memory: out only); spilled: the group's frames too.
            buffers = (GROUP * cost.frames + 1) * cost.frame_mb(h, w) if spill else 0.0
            peak = held + cost.work_mb(th, tw) + (2 * tile_cache if spill else tile_cache) + buffers
            first = peak - (1 - FIRST_SHARE) * cost.work_mb(th, tw)
            options.append(RolePlan(cost.role, (th, tw), overlap, grid, spill, held, peak, first))
    return options


def plan_vae(
    encoder: RoleCost, decoder: RoleCost, lr_cells: tuple[int, int], hr_cells: tuple[int, int],
    *, budget_mb: float, baseline_mb: float, others_mb: float = 0.0, overlap: int = DEFAULT_OVERLAP,
) -> VaePlan:
    """The fastest pair of role plans whose peak stays within ``budget_mb``: the process holds
    ``baseline_mb`` (runtimes and every graph's weights, as loaded), ``others_mb`` (the denoiser's
    working set, kept by its runtime too) and both roles' ``held_mb``; one role runs at a time.
    Lean pairs hold the first-chunk graphs' weights only while their role's first chunk runs (the
    decoder's is loaded again for it: the encoder's first chunk comes long before)."""
    pairs = []
    for lean in (False, True) if encoder.first_weights_mb + decoder.first_weights_mb > 0 else (False,):
        enc_opts, dec_opts = role_options(encoder, *lr_cells, overlap, lean), role_options(decoder, *hr_cells, overlap, lean)
        pairs += [(e, d, lean) for e in enc_opts for d in dec_opts]

    def peak(e: RolePlan, d: RolePlan, lean: bool) -> float:
        if not lean:
            return baseline_mb + others_mb + max(e.peak_mb + d.held_mb, d.peak_mb + e.held_mb)
        # Four phases: each role's first chunk (its first-chunk graph loaded, the step graph's working
        # set not yet allocated), then its step chunks (the first-chunk graph dropped).
        steps_only = baseline_mb - WEIGHTS_FREED * (encoder.first_weights_mb + decoder.first_weights_mb)
        first_e, first_d = (WEIGHTS_LOADED * c.first_weights_mb for c in (encoder, decoder))
        phases = (e.first_mb + first_e + d.held_mb, e.peak_mb + d.held_mb, d.first_mb + first_d + e.held_mb, d.peak_mb + e.held_mb)
        return steps_only + others_mb + max(phases)

    def slowness(e: RolePlan, d: RolePlan, lean: bool) -> tuple:
        # spilling costs most, then each tile (its overlap is computed twice), then reloading the
        # first-chunk graphs (seconds a file); the decoder is the bigger stage
        return (e.spill + d.spill, d.grid[0] * d.grid[1] + e.grid[0] * e.grid[1], lean)

    fitting = [p for p in pairs if peak(*p) <= budget_mb]
    fits = bool(fitting)
    e, d, lean = min(fitting, key=lambda p: slowness(*p)) if fits else min(pairs, key=lambda p: peak(*p))
    return VaePlan(e, d, budget_mb, peak(e, d, lean), fits, lean)


def lean_baseline_mb(plan: VaePlan, encoder: RoleCost, decoder: RoleCost, baseline_mb: float) -> float:
    """What the process holds between chunks once a lean plan has dropped the first-chunk graphs."""
    return baseline_mb - WEIGHTS_FREED * (encoder.first_weights_mb + decoder.first_weights_mb) if plan.lean else baseline_mb
