"""The options of a batch and their checks: what ``gvr upscale`` and ``gvr degrade`` take besides
their inputs, and the refusals (exit 2) that come before anything is created.

Apart from the run so that every caller (the CLI, ``gvrcli.api``, a plan's range task, ``gvr
warmup``) builds and checks options the same way without loading a model or walking a folder.
``check_batch`` is the gate every batch passes first: values in range, OUTPUT a folder or (one
input) a file, the output folder not inside an input.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

import av

from gvrcli.errors import UsageError
from gvrcli.farm.discovery import check_output_dir
from gvrcli.farm.shard import Shard
from gvrcli.inference.colorfix import DEFAULT_COLOR_FIX
from gvrcli.inference.settings import DEFAULT_MEMORY_BUDGET_MB, DEFAULT_TILE_OVERLAP
from gvrcli.media.formats import VIDEO_EXTENSIONS, check_output_container, get_codec
from gvrcli.media.probe import DEFAULT_MAX_PIXELS
from gvrcli.stages import DEFAULT_STALL_TIMEOUT

# Seeds feed numpy's SeedSequence (non-negative integers); keep them to what a JSON log round-trips.
MAX_SEED = 2**63 - 1
MAX_SCALE = 16.0  # --scale; and 10x that for --cfg
MAX_SIDE = 16384  # --size sides
# --stall-timeout: 30 days. Beyond a few hundred days the deadlines it sets overflow the clock's
# timeouts (threading's TIMEOUT_MAX), and every file would fail with an OverflowError.
MAX_STALL_TIMEOUT = 30 * 86400


@dataclass
class BatchOptions:
    """What every batch command (``upscale``, ``degrade``) takes besides its inputs: which files,
    where they go, rerun and farm behaviour. Defaults are the CLI's."""

    output_dir: Path
    recursive: bool = True
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False
    codec: str = "h264"  # the output codec: with the input's name, it fixes the output's name
    overwrite: bool = False
    shard: Shard | None = None
    jobs: int = 1
    dry_run: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    stall_timeout: float = DEFAULT_STALL_TIMEOUT
    output_name: str | None = None  # file to file: the one output's name in output_dir (set by check_batch)
    # Extensions of input kinds this run reads besides videos (set by the library, not an option:
    # ``upscale`` with a latent-cascade bundle reads latent files); see ``planning.meant_as_input``.
    input_suffixes: tuple[str, ...] = ()


@dataclass
class UpscaleOptions(BatchOptions):
    """Everything ``gvr upscale`` takes besides the inputs; defaults are the CLI's."""

    model: Path | None = None  # None = the built-in default for ``scale``
    backend: str = "auto"
    device: str = "AUTO"
    precision: str | None = None  # fp32 | bf16 | fp16 | int8; None = the model's (fp32 for every fp32 export)
    scale: float | None = None  # output / input per side, any ratio; None = the model's (the default model: 2)
    size: tuple[int, int] | None = None  # (width, height) of every output; exclusive with scale
    cfg: float = 1.0  # classifier-free guidance scale (a model with a text path); 1 = none
    steps: int | None = None
    noise_aug: float | None = None
    seed: int = 0
    crf: int | None = None
    pix_fmt: str | None = None
    threads: int = 0
    trt_cache: Path | None = None  # TensorRT engine cache folder; None = ort_backend.default_trt_cache()
    tile: int | tuple[int, int] = 0  # LR tile: N (N x N) or (width, height) as --tile WxH; 0 = planned
    tile_overlap: int = DEFAULT_TILE_OVERLAP
    chunk_frames: int | None = None
    chunk_overlap: int | None = None
    memory_budget_mb: int = DEFAULT_MEMORY_BUDGET_MB
    color_fix: str = DEFAULT_COLOR_FIX  # gvrcli.inference.colorfix.METHODS
    scene_cuts: bool = True  # start a temporal chunk at each hard cut (gvrcli.media.scenes)
    sidecar: bool = False  # OUTPUT.gvr.json beside each output (gvrcli.farm.sidecar)
    save_latents: bool = False  # OUTPUT.latents.safetensors beside each output (a VAE bundle's HR latents)
    plan: Path | None = None  # a plan from ``gvr plan``: run one of its frame ranges (gvrcli.farm.range_task)
    frame_range: tuple[int, int] | None = None  # frames [A, B) of the plan
    range_index: int | None = None  # or the plan's K-th range


def check_batch(inputs: list[Path], options: BatchOptions) -> BatchOptions:
    """Refuse a batch that cannot run (UsageError), before anything is touched; the options to run
    it with (``file_to_file``)."""
    if not inputs:
        raise UsageError("no inputs given")
    validate_options(options)
    options = file_to_file(inputs, options)
    # File to file writes beside its input if asked (a named file is the only input, and the
    # Territory check still refuses replacing it); a batch never writes into an input's folder.
    check_output_dir([] if options.output_name else inputs, options.output_dir)
    return options


def validate_options(options: BatchOptions) -> None:
    """Refuse bad option values (types and ranges) before anything is created: exit 2. The batch
    options of every command, and ``gvr upscale``'s own."""

    def finite(name: str, value, low: float, high: float = math.inf, low_open: bool = False) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok:
            ok = (value > low if low_open else value >= low) and value <= high
        if not ok:
            bound = f"> {low}" if low_open else f">= {low}"
            raise UsageError(f"{name} must be a finite number {bound}" + (f" and <= {high}" if high != math.inf else "") + f" (got {value})")

    def integer(name: str, value, low: int, high: int | None = None) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            raise UsageError(f"{name} must be an integer >= {low}" + (f" and <= {high}" if high is not None else "") + f" (got {value})")

    for flag, globs in (("--include", options.include), ("--exclude", options.exclude)):
        for g in globs:
            if not isinstance(g, str) or not g.strip() or "\0" in g or g.startswith("/"):
                raise UsageError(f"{flag} {g!r}: a glob must be a non-empty relative pattern, e.g. '*.mp4'")
            try:
                PurePosixPath("x").match(g)
            except ValueError as e:
                raise UsageError(f"{flag} {g!r}: not a valid glob ({e})") from None
    integer("--jobs", options.jobs, 1, 1024)
    integer("--max-pixels", options.max_pixels, 1)
    finite("--stall-timeout", options.stall_timeout, 0, MAX_STALL_TIMEOUT, low_open=True)
    get_codec(options.codec)
    if hasattr(options, "seed"):  # every command that draws noise: upscale, degrade
        integer("--seed", options.seed, 0, MAX_SEED)
    if not isinstance(options, UpscaleOptions):
        return
    integer("--threads", options.threads, 0, 4096)
    if isinstance(options.tile, (tuple, list)):
        if len(options.tile) != 2:
            raise UsageError(f"--tile {options.tile!r}: give N or (width, height)")
        integer("--tile width", options.tile[0], 1)
        integer("--tile height", options.tile[1], 1)
    else:
        integer("--tile", options.tile, 0)
    integer("--memory-budget", options.memory_budget_mb, 0)
    if options.steps is not None:
        integer("--steps", options.steps, 1, 100000)
    if options.noise_aug is not None:
        finite("--noise-aug", options.noise_aug, 0, 1)
    if options.scale is not None:
        finite("--scale", options.scale, 0, MAX_SCALE, low_open=True)
    if options.size is not None:
        if options.scale is not None:
            raise UsageError("give --size or --scale, not both")
        integer("--size width", options.size[0], 1, MAX_SIDE)
        integer("--size height", options.size[1], 1, MAX_SIDE)
        mw, mh = size_multiple(options.codec, options.pix_fmt)
        if options.size[0] % mw or options.size[1] % mh:
            raise UsageError(
                f"--size {options.size[0]}x{options.size[1]}: the output pixel format subsamples chroma, so the size must be a "
                f"multiple of {mw}x{mh}; pick such a size, or a 4:4:4 format (--pix-fmt yuv444p)"
            )
    finite("--cfg", options.cfg, -MAX_SCALE * 10, MAX_SCALE * 10)
    if options.crf is not None:
        integer("--crf", options.crf, 0, 63)


def size_multiple(codec: str, pix_fmt: str | None) -> tuple[int, int]:
    """(width, height) every output side must be a multiple of: the chroma subsampling of the
    output pixel format (2 x 2 for 4:2:0, 2 x 1 for 4:2:2), over both of the codec's defaults
    (8- and 10-bit input) unless --pix-fmt names one."""
    chosen = get_codec(codec)
    formats = [pix_fmt] if pix_fmt else [chosen.pix_fmt_8bit, chosen.pix_fmt_10bit]
    mw = mh = 1
    for name in formats:
        try:
            chroma = av.VideoFormat(name, 4, 4).components[1:2]
        except ValueError:
            continue  # an unknown --pix-fmt is refused by name later
        if chroma:
            mw, mh = max(mw, 4 // chroma[0].width), max(mh, 4 // chroma[0].height)
    return mw, mh


def file_to_file(inputs: list[Path], options: BatchOptions) -> BatchOptions:
    """``options`` for OUTPUT naming a file: the batch writes into its folder under its name (one
    input file only; exit 2 otherwise, or when its container cannot hold the codec)."""
    output = options.output_dir
    if not names_a_file(output):
        return options
    if len(inputs) != 1 or inputs[0].is_dir():
        what = "a folder input" if len(inputs) == 1 else f"{len(inputs)} inputs"
        exists = " (it exists and is not a directory)" if os.path.lexists(output) else ""
        raise UsageError(f"OUTPUT {str(output)!r} names a file{exists}; give a folder as OUTPUT for {what}")
    check_output_container(output.name, get_codec(options.codec))
    return replace(options, output_dir=output.parent, output_name=output.name)


def names_a_file(output: Path) -> bool:
    """OUTPUT names a file (file to file) when it is one, or when nothing is there yet and its name
    ends in a video extension, as ``ffmpeg -i in.mp4 out.mp4``; anything else is a folder."""
    if output.is_dir():
        return False
    return os.path.lexists(output) or output.suffix.lower() in VIDEO_EXTENSIONS
