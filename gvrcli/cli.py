"""The ``gvr`` command line: each command's options, and the library call it makes.

The work is done by the library (``gvrcli.batch.upscale.upscale``, ``gvrcli.info.collect``); this
module only translates. How a command runs and ends (progress output, signals, one-line errors,
exit codes) is ``gvrcli.cli_frame``; option values with rules of their own (``--size``,
``--shard``, ``--range``) are read by ``gvrcli.cli_values``; how ``--help`` reads is
``gvrcli.cli_help``. ``python -m gvrcli`` and the ``gvr`` console script both call ``main()``.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Optional

import typer

from gvrcli.cli_frame import fail, finish, guarded, install_signal_handlers, make_events, run_batch_command
from gvrcli.cli_help import ENCODING, FARM, INPUTS, MODEL, QUALITY, RESOURCES, GvrCommand, GvrGroup
from gvrcli.cli_values import parse_size, parse_tile, pick_frame_range, pick_shard
from gvrcli.errors import EXIT_SOME_FAILED, EXIT_USAGE, Cancelled, GvrError
from gvrcli.inference.colorfix import DEFAULT_COLOR_FIX
from gvrcli.inference.settings import DEFAULT_MEMORY_BUDGET_MB

app = typer.Typer(
    name="gvr",
    cls=GvrGroup,
    help="SimpleGVR video super-resolution: upscale directories of videos with an exported model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",  # help in panels (rich_help_panel); no help text uses [brackets]
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from gvrcli import version

        sys.stdout.write(f"gvr {version()}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    _version: bool = typer.Option(False, "-V", "--version", callback=_show_version, is_eager=True, help="Print gvr's version and exit."),
) -> None:
    pass  # the group's options only (its help is the app's)


# Short options follow ffmpeg (-y), Real-ESRGAN/realesrgan-ncnn-vulkan (-m, -s, -t), make (-j, -n);
# one letter means one thing in every command. The reasons, and those left long: docs/cli-conventions.md.


@app.command(cls=GvrCommand)
def upscale(
    # Plain strings, not typer Paths: Typer would refuse an unreadable input as a usage error for
    # the whole batch; gvr reports it as that one file's failure instead.
    paths: list[str] = typer.Argument(..., metavar="INPUT... OUTPUT", help="Input videos or directories, then the output directory (last); one input file may go to an OUTPUT file (out.mp4)."),
    model: Optional[Path] = typer.Option(None, "-m", "--model", metavar="FILE|DIR", help="Exported model: .onnx, OpenVINO .xml, or the folder gvr export wrote (one model, or a --vae bundle). Default: built-in tiny model (untrained: a bilinear-equivalent upscale).", rich_help_panel=MODEL),
    backend: str = typer.Option("auto", "--backend", metavar="NAME", rich_help_panel=MODEL, help="auto | ort-cuda | ort-tensorrt | ort-cpu | openvino."),
    device: str = typer.Option("AUTO", "--device", metavar="DEVICE", rich_help_panel=MODEL, help="AUTO | CPU | GPU | NPU, numbered like GPU.1 (OpenVINO device; GPU/CPU also pick the ONNX Runtime provider)."),
    precision: Optional[str] = typer.Option(None, "--precision", metavar="TYPE", rich_help_panel=MODEL, help="fp32 | bf16 | fp16 | int8 (default: the model's, fp32 for every fp32 export). fp16/bf16/int8: artefacts exported so (bf16 also OpenVINO on a CPU with bf16)."),
    trt_cache: Optional[Path] = typer.Option(None, "--trt-cache", metavar="DIR", rich_help_panel=MODEL, help="ort-tensorrt: engine cache folder (default: $GVR_TRT_CACHE or ~/.cache/gvr/tensorrt)."),
    scale: Optional[float] = typer.Option(None, "-s", "--scale", metavar="RATIO", rich_help_panel=QUALITY, help="Output / input per side, any ratio, e.g. 2, 1.5, 2.8125 (default: the model's; picks the built-in default x2 or x4)."),
    size: Optional[str] = typer.Option(None, "--size", metavar="WxH", rich_help_panel=QUALITY, help="WxH: every output exactly this size (any ratio; even sides for 4:2:0 output)."),
    cfg: float = typer.Option(1.0, "--cfg", metavar="SCALE", rich_help_panel=QUALITY, help="Classifier-free guidance scale for a model with a text path (prompt from NAME.text.safetensors beside each video); 1 = none."),
    steps: Optional[int] = typer.Option(None, "--steps", metavar="N", rich_help_panel=QUALITY, help="Sampler steps (default: the model's)."),
    noise_aug: Optional[float] = typer.Option(None, "--noise-aug", metavar="LEVEL", rich_help_panel=QUALITY, help="Noise level of the LR condition, 0..1 (default: the model's)."),
    seed: int = typer.Option(0, "--seed", metavar="N", rich_help_panel=QUALITY, help="Noise seed; output is deterministic for a seed."),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", rich_help_panel=INPUTS, help="Walk input directories recursively."),
    include: list[str] = typer.Option([], "--include", metavar="GLOB", rich_help_panel=INPUTS, help="Only files matching this glob (repeatable), e.g. '*.mp4'."),
    exclude: list[str] = typer.Option([], "--exclude", metavar="GLOB", rich_help_panel=INPUTS, help="Skip files matching this glob (repeatable)."),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks", rich_help_panel=INPUTS, help="Follow symbolic links while walking."),
    codec: str = typer.Option("h264", "--codec", metavar="NAME", rich_help_panel=ENCODING, help="h264 | hevc | av1 | vp9 | ffv1 | prores."),
    crf: Optional[int] = typer.Option(None, "--crf", metavar="N", rich_help_panel=ENCODING, help="Quality for h264/hevc/av1/vp9 (default 18/20/30/24)."),
    pix_fmt: Optional[str] = typer.Option(None, "--pix-fmt", metavar="FORMAT", rich_help_panel=ENCODING, help="Output pixel format (default yuv420p, or yuv420p10le for >8-bit input)."),
    overwrite: bool = typer.Option(False, "--overwrite/--skip-existing", "-y", rich_help_panel=INPUTS, help="Redo existing outputs, or skip them (default)."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="I/N", rich_help_panel=FARM, help="Process shard I (0-based) of N. Default: from SLURM_ARRAY_* / AWS_BATCH_JOB_ARRAY_INDEX."),
    jobs: int = typer.Option(1, "-j", "--jobs", metavar="N", rich_help_panel=FARM, help="Files processed at once by this worker."),
    threads: int = typer.Option(0, "--threads", metavar="N", rich_help_panel=RESOURCES, help="CPU inference threads (0 = all cores)."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=FARM, help="One JSON object per line on stdout (events and a summary)."),
    dry_run: bool = typer.Option(False, "-n", "--dry-run", rich_help_panel=INPUTS, help="List what would be done; touch nothing."),
    tile: str = typer.Option("0", "-t", "--tile", metavar="N|WxH", rich_help_panel=RESOURCES, help="LR tile in pixels, N x N or WxH, e.g. 96x108, the same in every chunk (0 = planned: whole frames, or the grid predicted fastest within --memory-budget)."),
    memory_budget: int = typer.Option(DEFAULT_MEMORY_BUDGET_MB, "--memory-budget", metavar="MiB", rich_help_panel=RESOURCES, help="Peak MiB of this process; frames are tiled to fit (0 = auto: the chunk's buffers plus 1 GiB for the model, at most half the RAM)."),
    max_pixels: int = typer.Option(4096 * 4096, "--max-pixels", metavar="PIXELS", rich_help_panel=RESOURCES, help="Refuse inputs with more pixels per frame than this."),
    stall_timeout: float = typer.Option(300.0, "--stall-timeout", metavar="SECONDS", rich_help_panel=RESOURCES, help="Fail a file (or the model load: exit 75) after this many seconds without progress; at most 30 days."),
    color_fix: str = typer.Option(DEFAULT_COLOR_FIX, "--color-fix", metavar="METHOD", rich_help_panel=QUALITY, help="Colour fix to the bilinear-upscaled input: wavelet | adain | lab | none."),
    scene_cuts: bool = typer.Option(True, "--scene-cuts/--no-scene-cuts", rich_help_panel=QUALITY, help="Start a new temporal chunk at each hard cut, so attention never mixes two shots."),
    sidecar: bool = typer.Option(False, "--sidecar", rich_help_panel=INPUTS, help="Write OUTPUT.gvr.json beside each output: source and model hashes, backend, precision, settings, timings."),
    save_latents: bool = typer.Option(False, "--save-latents", rich_help_panel=INPUTS, help="With a latent-cascade bundle: also write the HR latents, OUTPUT.latents.safetensors."),
    progress_interval: float = typer.Option(10.0, "--progress-interval", metavar="SECONDS", rich_help_panel=FARM, help="Heartbeat: a 'Progress:' line (or a JSON progress event) at least this often while work goes on, with the stage and ETA (0 = every 0.1 s)."),
    openjd: bool = typer.Option(False, "--openjd", rich_help_panel=FARM, help="Also print 'openjd_progress: N' lines (Open Job Description)."),
    plan: Optional[Path] = typer.Option(None, "--plan", metavar="PLAN.json", rich_help_panel=FARM, help="A plan from gvr plan: upscale one of its frame ranges (--range or --range-index) of INPUT into a segment beside OUTPUT, for gvr join."),
    frame_range: Optional[str] = typer.Option(None, "--range", metavar="A-B", rich_help_panel=FARM, help="With --plan: the range of frames A to B-1, as the plan lists it."),
    range_index: Optional[int] = typer.Option(None, "--range-index", metavar="K", rich_help_panel=FARM, help="With --plan: the plan's K-th range (0-based), e.g. a farm's task index."),
) -> None:
    """Upscale every video under INPUT... into the OUTPUT folder, mirroring the directory tree (or one file into an OUTPUT file)."""
    from gvrcli.batch.options import UpscaleOptions
    from gvrcli.batch.upscale import upscale as run_batch

    if len(paths) < 2:
        fail("give at least one input and the output (gvr upscale INPUT... OUTPUT)", as_json, EXIT_USAGE)
    *inputs, output_dir = map(Path, paths)
    cancel = threading.Event()
    received = install_signal_handlers(cancel)
    events = make_events(as_json, progress_interval, openjd, "upscale")

    def run():
        chosen_range, index = pick_frame_range(plan, frame_range, range_index, shard, events)
        chosen_shard = pick_shard(shard, events) if plan is None else None  # one range of one file: no file sharding
        options = UpscaleOptions(  # one line per --help panel
            output_dir=output_dir, recursive=recursive, include=tuple(include), exclude=tuple(exclude), follow_symlinks=follow_symlinks,
            overwrite=overwrite, dry_run=dry_run, sidecar=sidecar, save_latents=save_latents,
            model=model, backend=backend, device=device, precision=precision, trt_cache=trt_cache,
            scale=scale, size=parse_size(size), cfg=cfg, steps=steps, noise_aug=noise_aug, seed=seed, color_fix=color_fix, scene_cuts=scene_cuts,
            codec=codec, crf=crf, pix_fmt=pix_fmt,
            threads=threads, tile=parse_tile(tile), memory_budget_mb=memory_budget, max_pixels=max_pixels, stall_timeout=stall_timeout,
            shard=chosen_shard, jobs=jobs, plan=plan, frame_range=chosen_range, range_index=index,
        )
        return run_batch(inputs, options, events=events, cancel=cancel)

    report = guarded(run, events, as_json)
    finish(report, events, received)


@app.command("plan", cls=GvrCommand)
def plan_command(
    source: Path = typer.Argument(..., metavar="INPUT", help="The video to split."),
    plan_path: Path = typer.Argument(..., metavar="PLAN.json", help="The plan to write (atomically)."),
    segments: Optional[int] = typer.Option(None, "--segments", metavar="N", rich_help_panel=FARM, help="About N ranges of equal length."),
    segment_frames: Optional[int] = typer.Option(None, "--segment-frames", metavar="F", rich_help_panel=FARM, help="Ranges of about F frames."),
    model: Optional[Path] = typer.Option(None, "-m", "--model", metavar="FILE|DIR", rich_help_panel=MODEL, help="The model every range will run (as gvr upscale)."),
    precision: Optional[str] = typer.Option(None, "--precision", metavar="TYPE", rich_help_panel=MODEL, help="As gvr upscale."),
    scale: Optional[float] = typer.Option(None, "-s", "--scale", metavar="RATIO", rich_help_panel=QUALITY, help="As gvr upscale."),
    size: Optional[str] = typer.Option(None, "--size", metavar="WxH", rich_help_panel=QUALITY, help="As gvr upscale."),
    cfg: float = typer.Option(1.0, "--cfg", metavar="SCALE", rich_help_panel=QUALITY, help="As gvr upscale."),
    steps: Optional[int] = typer.Option(None, "--steps", metavar="N", rich_help_panel=QUALITY, help="As gvr upscale."),
    noise_aug: Optional[float] = typer.Option(None, "--noise-aug", metavar="LEVEL", rich_help_panel=QUALITY, help="As gvr upscale."),
    seed: int = typer.Option(0, "--seed", metavar="N", rich_help_panel=QUALITY, help="As gvr upscale."),
    color_fix: str = typer.Option(DEFAULT_COLOR_FIX, "--color-fix", metavar="METHOD", rich_help_panel=QUALITY, help="As gvr upscale."),
    scene_cuts: bool = typer.Option(True, "--scene-cuts/--no-scene-cuts", rich_help_panel=QUALITY, help="Detect hard cuts (as gvr upscale); ranges end at cuts where one is near."),
    codec: str = typer.Option("h264", "--codec", metavar="NAME", rich_help_panel=ENCODING, help="The codec the join will write (it rounds the output size)."),
    pix_fmt: Optional[str] = typer.Option(None, "--pix-fmt", metavar="FORMAT", rich_help_panel=ENCODING, help="As gvr upscale."),
    backend: str = typer.Option("auto", "--backend", metavar="NAME", rich_help_panel=MODEL, help="As gvr upscale; auto is resolved here, as a run on this machine would, and every range runs it."),
    tile: str = typer.Option("0", "-t", "--tile", metavar="N|WxH", rich_help_panel=RESOURCES, help="As gvr upscale; 0 is planned here, for a full chunk as a run on this machine would, and every range runs that tile."),
    memory_budget: int = typer.Option(DEFAULT_MEMORY_BUDGET_MB, "--memory-budget", metavar="MiB", rich_help_panel=RESOURCES, help="The budget the tile is planned for (--tile 0), as gvr upscale."),
    max_pixels: int = typer.Option(4096 * 4096, "--max-pixels", metavar="PIXELS", rich_help_panel=RESOURCES, help="Refuse inputs with more pixels per frame than this."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=FARM, help="Print the plan's summary as one JSON object."),
) -> None:
    """Plan one video's frame ranges for a farm: read it once (scene cuts), fix the chunk grid and
    the backend and tile every range runs, write PLAN.json. Then gvr upscale INPUT OUTPUT --plan
    PLAN.json --range-index K per range, and gvr join."""
    from gvrcli.batch.options import UpscaleOptions
    from gvrcli.farm.range_task import make_plan
    from gvrcli.progress import PlainEvents

    try:
        options = UpscaleOptions(
            output_dir=plan_path.parent, model=model, backend=backend, precision=precision, scale=scale, size=parse_size(size), cfg=cfg,
            steps=steps, noise_aug=noise_aug, seed=seed, color_fix=color_fix, scene_cuts=scene_cuts, codec=codec,
            pix_fmt=pix_fmt, tile=parse_tile(tile), memory_budget_mb=memory_budget, max_pixels=max_pixels,
        )
        made = make_plan(source, plan_path, options, segments, segment_frames, PlainEvents(interval=0))
    except GvrError as e:
        fail(str(e), as_json, e.exit_code)
    frozen = {"backend": made.options["backend"], "tile": made.options["tile"], "chosen": made.extra["chosen"]}
    summary = {"plan": str(plan_path), "frames": made.frames, "cuts": made.cuts, "ranges": [list(r) for r in made.ranges], **made.extra["cost"], **frozen}
    if as_json:
        sys.stdout.write(json.dumps({"event": "plan", **summary}) + "\n")
    else:
        from gvrcli.farm.range_task import tile_text

        sys.stdout.write(
            f"gvr: plan {plan_path}: {len(made.ranges)} ranges of {made.frames} frames, {len(made.cuts)} cut(s); "
            f"{summary['context_frames']} context frames, {100 * summary['model_overhead']:.0f}% more model work than one run; "
            f"every range runs --backend {frozen['backend']} --tile {tile_text(frozen['tile'])} (a single run given both gives the same frames)\n"
        )


@app.command("warmup", cls=GvrCommand)
def warmup_command(
    model: Optional[Path] = typer.Option(None, "-m", "--model", metavar="FILE|DIR", rich_help_panel=MODEL, help="The model the tasks will run (as gvr upscale)."),
    backend: str = typer.Option("auto", "--backend", metavar="NAME", rich_help_panel=MODEL, help="As gvr upscale."),
    device: str = typer.Option("AUTO", "--device", metavar="DEVICE", rich_help_panel=MODEL, help="As gvr upscale."),
    precision: Optional[str] = typer.Option(None, "--precision", metavar="TYPE", rich_help_panel=MODEL, help="As gvr upscale."),
    trt_cache: Optional[Path] = typer.Option(None, "--trt-cache", metavar="DIR", rich_help_panel=MODEL, help="As gvr upscale."),
    scale: Optional[float] = typer.Option(None, "-s", "--scale", metavar="RATIO", rich_help_panel=QUALITY, help="As gvr upscale."),
    plan: Optional[Path] = typer.Option(None, "--plan", metavar="PLAN.json", rich_help_panel=FARM, help="Warm up for this plan's input size, backend and tile."),
    input_size: str = typer.Option("960x540", "--input-size", metavar="WxH", rich_help_panel=FARM, help="The tasks' input frame size, without --plan."),
    threads: int = typer.Option(0, "--threads", metavar="N", rich_help_panel=RESOURCES, help="As gvr upscale."),
    tile: str = typer.Option("0", "-t", "--tile", metavar="N|WxH", rich_help_panel=RESOURCES, help="As gvr upscale."),
    memory_budget: int = typer.Option(DEFAULT_MEMORY_BUDGET_MB, "--memory-budget", metavar="MiB", rich_help_panel=RESOURCES, help="As gvr upscale."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=FARM, help="Print the result as one JSON object."),
) -> None:
    """Load and compile the model once for this worker (speed probe, compiled-graph caches), with
    no input: one synthetic chunk at the tasks' frame size. For a farm's per-worker setup."""
    from gvrcli.batch.options import UpscaleOptions
    from gvrcli.farm.warmup import warmup

    try:
        options = UpscaleOptions(
            output_dir=Path("."), model=model, backend=backend, device=device, precision=precision, trt_cache=trt_cache,
            scale=scale, threads=threads, tile=parse_tile(tile), memory_budget_mb=memory_budget,
        )
        if plan is not None:
            from gvrcli.farm.range_task import frozen
            from gvrcli.farm.ranges import read_plan

            planned = read_plan(plan)
            width, height = planned.input["width"], planned.input["height"]
            options = frozen(planned, options)  # the tasks run the plan's backend and tile: warm those
        else:
            width, height = parse_size(input_size)
        done = warmup(options, width, height)
    except GvrError as e:
        fail(str(e), as_json, e.exit_code)
    if as_json:
        sys.stdout.write(json.dumps({"event": "warmup", **done}) + "\n")
    else:
        sys.stdout.write(f"gvr: warm: {done['backend']} ({done['precision']}), a chunk of {done['frames']} frames at {width}x{height}, {done['seconds']} s\n")


@app.command("join", cls=GvrCommand)
def join_command(
    plan_path: Path = typer.Argument(..., metavar="PLAN.json", help="The plan the segments were made from."),
    output: Path = typer.Argument(..., metavar="OUTPUT", help="The final output file (its segments lie beside it)."),
    codec: str = typer.Option("h264", "--codec", metavar="NAME", rich_help_panel=ENCODING, help="h264 | hevc | av1 | vp9 | ffv1 | prores."),
    crf: Optional[int] = typer.Option(None, "--crf", metavar="N", rich_help_panel=ENCODING, help="As gvr upscale."),
    pix_fmt: Optional[str] = typer.Option(None, "--pix-fmt", metavar="FORMAT", rich_help_panel=ENCODING, help="As gvr upscale."),
    overwrite: bool = typer.Option(False, "--overwrite/--skip-existing", "-y", rich_help_panel=INPUTS, help="Redo an existing OUTPUT, or skip it (default)."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=FARM, help="Print the result as one JSON object."),
) -> None:
    """Join a plan's segments into OUTPUT with the source's audio, subtitles, timestamps and colour
    tags; exit 2, nothing written, if a segment is missing, foreign or incomplete."""
    from gvrcli.media.join import join

    cancel = threading.Event()
    received = install_signal_handlers(cancel)
    try:
        result = join(plan_path, output, codec=codec, crf=crf, pix_fmt=pix_fmt, overwrite=overwrite, cancel=cancel)
    except GvrError as e:
        fail(str(e), as_json, e.exit_code)
    except Cancelled:
        fail(f"stopped by {signal.Signals(received['signal'] or signal.SIGINT).name}; nothing written", as_json, 128 + (received["signal"] or 2))
    except Exception as e:  # a fault no check foresaw: still one line
        fail(f"internal error ({type(e).__name__}: {e})", as_json, EXIT_SOME_FAILED)
    for warning in result.warnings:
        sys.stderr.write(f"gvr: warning: {warning}\n")
    what = "skipped (output exists)" if result.skipped else f"{result.frames} frames"
    if as_json:
        sys.stdout.write(json.dumps({"event": "join", "output": str(output), "skipped": result.skipped, "frames": result.frames}) + "\n")
    else:
        sys.stdout.write(f"gvr: joined {output}: {what}\n")


@app.command(cls=GvrCommand)
def degrade(
    paths: list[str] = typer.Argument(..., metavar="HQ... LQ_DIR", help="HQ videos or directories, then the LQ output directory (last)."),
    scale: int = typer.Option(2, "-s", "--scale", metavar="N", rich_help_panel=QUALITY, help="2 or 4: the LQ is 1/scale of the HQ in each direction."),
    seed: int = typer.Option(0, "--seed", metavar="N", rich_help_panel=QUALITY, help="Seed of every random draw; the same seed gives identical LQ."),
    flow: bool = typer.Option(True, "--flow/--no-flow", rich_help_panel=QUALITY, help="Apply the flow-based degradation after the base one."),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", rich_help_panel=INPUTS, help="Walk input directories recursively."),
    include: list[str] = typer.Option([], "--include", metavar="GLOB", rich_help_panel=INPUTS, help="Only files matching this glob (repeatable)."),
    exclude: list[str] = typer.Option([], "--exclude", metavar="GLOB", rich_help_panel=INPUTS, help="Skip files matching this glob (repeatable)."),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks", rich_help_panel=INPUTS, help="Follow symbolic links while walking."),
    overwrite: bool = typer.Option(False, "--overwrite/--skip-existing", "-y", rich_help_panel=INPUTS, help="Redo existing outputs, or skip them (default)."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="I/N", rich_help_panel=FARM, help="Process shard I (0-based) of N. Default: from the job-array environment."),
    jobs: int = typer.Option(1, "-j", "--jobs", metavar="N", rich_help_panel=FARM, help="Files processed at once by this worker."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=FARM, help="One JSON object per line on stdout (events, with each clip's parameters, and a summary)."),
    dry_run: bool = typer.Option(False, "-n", "--dry-run", rich_help_panel=INPUTS, help="List what would be done; touch nothing."),
    max_pixels: int = typer.Option(4096 * 4096, "--max-pixels", metavar="PIXELS", rich_help_panel=RESOURCES, help="Refuse inputs with more pixels per frame than this."),
    stall_timeout: float = typer.Option(300.0, "--stall-timeout", metavar="SECONDS", rich_help_panel=RESOURCES, help="Fail a file after this many seconds without progress; at most 30 days."),
    progress_interval: float = typer.Option(10.0, "--progress-interval", metavar="SECONDS", rich_help_panel=FARM, help="Heartbeat: a 'Progress:' line (or a JSON progress event) at least this often while work goes on, with the stage and ETA (0 = every 0.1 s)."),
    openjd: bool = typer.Option(False, "--openjd", rich_help_panel=FARM, help="Also print 'openjd_progress: N' lines (Open Job Description)."),
) -> None:
    """Make the LQ half of training pairs: the paper's base and flow-based degradations of every HQ video."""
    from gvrcli.quality.pairs import DegradeOptions
    from gvrcli.quality.pairs import degrade as run_degrade

    events = make_events(as_json, progress_interval, openjd, "degrade")

    def run(inputs: list[Path], output_dir: Path, cancel: threading.Event):
        options = DegradeOptions(
            output_dir=output_dir,
            scale=scale,
            seed=seed,
            flow=flow,
            recursive=recursive,
            include=tuple(include),
            exclude=tuple(exclude),
            follow_symlinks=follow_symlinks,
            overwrite=overwrite,
            shard=pick_shard(shard, events),
            jobs=jobs,
            dry_run=dry_run,
            max_pixels=max_pixels,
            stall_timeout=stall_timeout,
        )
        return run_degrade(inputs, options, events=events, cancel=cancel)

    run_batch_command(paths, "gvr degrade HQ... LQ_DIR", as_json, events, run)


@app.command("eval", cls=GvrCommand)
def evaluate(
    paths: list[str] = typer.Argument(..., metavar="PRED... REF_DIR", help="Predicted videos or directories, then the reference directory (last)."),
    lr: Optional[Path] = typer.Option(None, "--lr", metavar="DIR", rich_help_panel=INPUTS, help="LR inputs directory: adds bicubic and bilinear baseline rows, LR consistency, and colour drift against the LR."),
    report_html: Optional[Path] = typer.Option(None, "--report", metavar="FILE.html", rich_help_panel=INPUTS, help="Also write one self-contained HTML report here: per-frame plots, worst frames side by side (needs gvr[report])."),
    chunk_period: Optional[int] = typer.Option(None, "--chunk-period", min=1, metavar="N", rich_help_panel=QUALITY, help="Chunk boundaries every N frames for the boundary jump (default: from each output's --sidecar record)."),
    degrade_seed: Optional[int] = typer.Option(None, "--degrade-seed", metavar="N", rich_help_panel=QUALITY, help="The LR came from gvr degrade --seed N (run on REF_DIR): LR consistency uses each clip's own blur and resize."),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", rich_help_panel=INPUTS, help="Walk prediction directories recursively."),
    include: list[str] = typer.Option([], "--include", metavar="GLOB", rich_help_panel=INPUTS, help="Only files matching this glob (repeatable)."),
    exclude: list[str] = typer.Option([], "--exclude", metavar="GLOB", rich_help_panel=INPUTS, help="Skip files matching this glob (repeatable)."),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks", rich_help_panel=INPUTS, help="Follow symbolic links while walking."),
    as_json: bool = typer.Option(False, "--json", rich_help_panel=FARM, help="One JSON object per line on stdout (a file event with metrics per pair, a summary with the means)."),
    max_pixels: int = typer.Option(4096 * 4096, "--max-pixels", metavar="PIXELS", rich_help_panel=RESOURCES, help="Refuse inputs with more pixels per frame than this."),
    progress_interval: float = typer.Option(10.0, "--progress-interval", metavar="SECONDS", rich_help_panel=FARM, help="Heartbeat: a 'Progress:' line (or a JSON progress event) at least this often while work goes on, with the stage and ETA (0 = every 0.1 s)."),
) -> None:
    """Score predictions against references: PSNR (Y, RGB), SSIM, warping error, LR consistency,
    flicker, chunk-boundary and tile-seam jumps, colour drift; per file and overall."""
    from gvrcli.quality.eval import EvalOptions, render_table
    from gvrcli.quality.eval import evaluate as run_eval

    events = make_events(as_json, progress_interval, False, "evaluate")
    write_report = None
    if report_html is not None:
        try:
            from gvrcli.quality.html_report import check_report_target, write_report
        except ImportError as e:  # plotly is the optional extra gvr[report]
            fail(f"--report needs plotly: pip install 'gvr[report]' ({e})", as_json, EXIT_USAGE)
    views: dict | None = {} if write_report is not None else None

    def run(inputs: list[Path], reference_dir: Path, cancel: threading.Event):
        if write_report is not None:
            check_report_target(report_html)
        options = EvalOptions(
            reference_dir=reference_dir,
            lr_dir=lr,
            recursive=recursive,
            include=tuple(include),
            exclude=tuple(exclude),
            follow_symlinks=follow_symlinks,
            max_pixels=max_pixels,
            chunk_period=chunk_period,
            degrade_seed=degrade_seed,
        )
        report = run_eval(inputs, options, events=events, cancel=cancel, views=views)
        if write_report is not None and not cancel.is_set():
            write_report(report_html, report, views)
        return report

    run_batch_command(paths, "gvr eval PRED... REF_DIR", as_json, events, run, after=None if as_json else lambda r: print(render_table(r)))


@app.command(cls=GvrCommand)
def info(
    model: Optional[Path] = typer.Option(None, "-m", "--model", metavar="FILE|DIR", help="Model whose manifest to show (default: the built-in x2 if present)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show inference providers and devices, and a model's metadata."""
    from gvrcli.info import collect, render

    try:
        facts = collect(model)
    except GvrError as e:
        fail(str(e), as_json, e.exit_code)
    if as_json:
        sys.stdout.write(json.dumps(facts, indent=None, default=str) + "\n")
    else:
        render(facts)


try:  # the export engineer's command; it imports torch lazily, only when run
    from gvrcli.export_command import export_command

    app.command("export", cls=GvrCommand)(export_command)
except ImportError:
    pass
else:
    from gvrcli.trial_command import trial_cascade_command

    app.command("trial-cascade")(trial_cascade_command)


def main() -> None:
    """Run the command. A command-line usage error (an unknown option, a value of the wrong type)
    is one ``gvr: error:`` line and exit 2, and with ``--json`` also a ``summary`` event."""
    try:
        from typer._click import exceptions as click_exc  # typer vendors click since 0.2x
    except ImportError:
        from click import exceptions as click_exc

    try:
        code = app(prog_name="gvr", standalone_mode=False)
    except click_exc.NoArgsIsHelpError as e:
        sys.stdout.write(e.ctx.get_help() + "\n")
        code = EXIT_USAGE
    except click_exc.UsageError as e:
        as_json = "--json" in sys.argv[1:]
        try:
            fail(e.format_message(), as_json, EXIT_USAGE)
        except typer.Exit as done:
            code = done.exit_code
    except typer.Abort:
        code = 130
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
