"""``gvr plan`` and ``gvr upscale --plan``: make a plan of one video's frame ranges, and run one
range of it into a segment beside the final output (``gvrcli.farm.ranges`` says why the frames
are exact; ``gvrcli.media.join`` assembles the segments).

A range run is a file-to-file batch of one input whose output is the range's segment: so the
batch's claims, partials, skip-if-done and sidecar ordering apply unchanged. The segment is
lossless FFV1 holding the frames exactly as the final encoder would get them (the same 8- or
16-bit quantisation), and its sidecar (``SEGMENT.gvr.json``, published before the segment) records
the plan's hash, the range, the hash of the options that decide the pixels, the frames' source
timestamps and the segment's size: what the join checks before it trusts a segment.
"""

from __future__ import annotations

import dataclasses
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av

from gvrcli.errors import InputError, UsageError
from gvrcli.farm import ranges, sidecar
from gvrcli.media.encode import EncodeSettings
from gvrcli.inference.settings import tile_shape
from gvrcli.media.formats import get_codec

RECORD_KIND = "gvr-range-segment"


def output_options(options, model_path: Path, manifest, settings) -> dict:
    """What decides the output's pixels (and so must be the same in the plan and every range):
    the model's weights, the backend, the sampler and chunking, the tile, colour fix and cuts. The
    codec is the join's choice; only the output size's rounding (``size_multiple``) depends on it.
    The memory budget is not among them: the plan fixes the tile it would have decided."""
    shape = tile_shape(settings.tile)
    return {
        "model": model_path.name,
        "weights_sha256": manifest.weights_sha256,
        "backend": options.backend,
        "precision": options.precision or manifest.precision,
        "steps": settings.steps,
        "noise_aug": settings.noise_aug,
        "seed": settings.seed,
        "scale": settings.scale if settings.size is None else None,
        "size": list(settings.size) if settings.size else None,
        "size_multiple": list(settings.size_multiple),
        "cfg": settings.cfg,
        "chunk": [settings.chunk_frames, settings.chunk_overlap],
        "tile": [shape[1], shape[0]] if shape else None,  # LR [width, height], as --tile WxH
        "tile_overlap": settings.tile_overlap,
        "color_fix": options.color_fix,
        "scene_cuts": options.scene_cuts,
    }


def deep_output(options, bit_depth: int) -> bool:
    """The final encoder quantises to 16 bits (else 8): as ``VideoEncoder`` decides."""
    encode = EncodeSettings(get_codec(options.codec), options.crf, options.pix_fmt)
    return av.VideoFormat(encode.pix_fmt_for(bit_depth > 8)).components[0].bits > 8


def segment_encode(deep: bool) -> EncodeSettings:
    return EncodeSettings(get_codec("ffv1"), None, "gbrp16le" if deep else "bgr0")


@dataclass
class RangeTask:
    plan: ranges.Plan
    window: ranges.Window
    options: object  # UpscaleOptions, writing the segment, with the plan's backend and tile
    settings: object  # EngineSettings of those options
    encode: EncodeSettings
    deep: bool

    def record(self, stats, partial: Path, loaded) -> dict:
        """The segment's sidecar content (``stats.extra`` loses its timestamps to it)."""
        pts = stats.extra.pop("pts")
        a, b = self.window.a, self.window.b
        if stats.frames != b - a:
            raise InputError(f"{self.plan.input['path']}: range {a}-{b} gave {stats.frames} frames, expected {b - a}")
        return {
            "kind": RECORD_KIND,
            "plan_sha256": self.plan.sha256,
            "options_sha256": ranges.options_digest(self.plan.options),
            "range": [a, b],
            "context_frames": self.window.context,
            "pts": ranges.encode_pts(pts),
            "deep": self.deep,
            "segment_bytes": partial.stat().st_size,
            "backend": loaded.description,
            "precision": loaded.precision,
            "tile": self.plan.options["tile"],
            "source_sha256": None,
            "source_fingerprint": {k: self.plan.input[k] for k in ("size", "mtime_ns", "sample_sha256")},
        }


def check_input(plan: ranges.Plan, source: Path) -> None:
    """Exit 2 unless ``source`` is the file the plan was made from (size, time, sampled content)."""
    try:
        now = ranges.input_fingerprint(source)
    except OSError as e:
        raise UsageError(f"{source}: cannot read ({e.strerror or e})") from None
    changed = [k for k in ("size", "mtime_ns", "sample_sha256") if now[k] != plan.input[k]]
    if changed:
        raise UsageError(f"{source}: not the input plan {plan.path} was made from ({', '.join(changed)} differ)")


def check_options(plan: ranges.Plan, ours: dict) -> None:
    for key in sorted(set(ours) | set(plan.options)):
        if ours.get(key) != plan.options.get(key):
            raise UsageError(
                f"plan {plan.path}: option {key} is {ours.get(key)!r} here but {plan.options.get(key)!r} in the plan; "
                "give every range the plan's options" + (f" (or no --{key}: the plan's is taken)" if key in ("backend", "tile") else "")
            )


def frozen(plan: ranges.Plan, options):
    """``options`` with the plan's backend and tile where they are left to the machine (``--backend
    auto``, ``--tile 0``): every range runs what the plan froze. One given stays as given (and
    ``check_options`` refuses it if it differs)."""
    taken = {}
    if options.backend == "auto":
        taken["backend"] = plan.options["backend"]
    if not options.tile:
        taken["tile"] = tuple(plan.options["tile"])  # (width, height)
    return dataclasses.replace(options, **taken)


def tile_text(tile) -> str:
    """A plan's tile [width, height] as ``--tile`` takes it."""
    return f"{tile[0]}x{tile[1]}"


def range_task(inputs: list[Path], options, model_path: Path, manifest, events) -> RangeTask:
    """Check a range run against its plan (exit 2: another input, other options, no such range)
    and return how to run it: its window, and the options (the plan's backend and tile) and engine
    settings writing its segment."""
    from gvrcli.batch.model import engine_settings

    plan = ranges.read_plan(options.plan)
    if options.output_name is None:
        raise UsageError("--plan: give the input file and the final output file (gvr upscale IN.mp4 OUT.mp4 --plan PLAN --range A-B)")
    if options.frame_range is not None:
        if options.frame_range not in plan.ranges:
            listed = ", ".join(f"{a}-{b}" for a, b in plan.ranges[:8])
            raise UsageError(f"--range {options.frame_range[0]}-{options.frame_range[1]}: not a range of plan {plan.path} ({listed})")
        a, b = options.frame_range
    elif options.range_index is not None:
        if not 0 <= options.range_index < len(plan.ranges):
            raise UsageError(f"--range-index {options.range_index}: plan {plan.path} has ranges 0 to {len(plan.ranges) - 1}")
        a, b = plan.ranges[options.range_index]
    else:
        raise UsageError("--plan needs --range A-B or --range-index K")
    if manifest.has_vae:
        raise UsageError("--plan: frame ranges of a latent-cascade bundle are not supported")
    check_input(plan, inputs[0])
    given, options = options, frozen(plan, options)
    settings = engine_settings(options, manifest)
    check_options(plan, output_options(options, model_path, manifest, settings))
    if (given.backend, given.tile) != (options.backend, options.tile):
        events.message(f"gvr: plan {plan.path}: --backend {options.backend} --tile {tile_text(plan.options['tile'])}, as the plan froze them")
    deep = deep_output(options, plan.input["bit_depth"])
    final = options.output_dir / options.output_name
    segment = ranges.segment_path(final, a, b)
    overwrite = options.overwrite
    if segment.exists() and not overwrite:
        try:
            read_segment(segment, plan, a, b)
        except UsageError as e:  # another plan's (or a damaged) segment: this run replaces it
            events.message(f"gvr: redoing {segment.name}: {str(e).split(': ', 1)[-1]}")
            overwrite = True
    out = dataclasses.replace(options, output_name=segment.name, overwrite=overwrite)
    return RangeTask(plan, plan.window(a, b), out, settings, segment_encode(deep), deep)


def read_segment(segment: Path, plan: ranges.Plan, a: int, b: int) -> dict:
    """The checked record of range [a, b)'s segment, or UsageError naming what is wrong: missing,
    from another plan or option set (foreign), or not the size it was written at (incomplete)."""
    name = f"segment {segment}"
    if not segment.is_file():
        raise UsageError(f"{name}: missing (run range {a}-{b}: gvr upscale ... --plan {plan.path} --range {a}-{b})")
    try:
        body = json.loads(ranges.read_bounded(sidecar.sidecar_path(segment), ranges.MAX_RECORD_BYTES, "record"))
    except UsageError as e:
        raise UsageError(f"{name}: incomplete ({e})") from None
    except (ValueError, RecursionError) as e:
        raise UsageError(f"{name}: incomplete (its record is not JSON: {str(e)[:100]})") from None
    if not isinstance(body, dict) or body.get("kind") != RECORD_KIND:
        raise UsageError(f"{name}: foreign (not a gvr range segment)")
    if body.get("plan_sha256") != plan.sha256:
        raise UsageError(f"{name}: foreign (made for another plan)")
    if body.get("options_sha256") != ranges.options_digest(plan.options):
        raise UsageError(f"{name}: foreign (made with other options or another model)")
    if body.get("range") != [a, b]:
        raise UsageError(f"{name}: foreign (its record is for range {body.get('range')})")
    if body.get("segment_bytes") != segment.stat().st_size:
        raise UsageError(f"{name}: incomplete (its size is not the size it was written at)")
    try:
        body["pts"] = ranges.decode_pts(body.get("pts"), b - a)
    except (ValueError, TypeError) as e:
        raise UsageError(f"{name}: incomplete ({e})") from None
    if len(body["pts"]) != b - a or type(body.get("deep")) is not bool:
        raise UsageError(f"{name}: incomplete (its record lists {len(body['pts'])} frames of {b - a})")
    return body


def make_plan(source: Path, plan_path: Path, options, segments: int | None, segment_frames: int | None, events) -> ranges.Plan:
    """Read ``source`` once (probe, every frame through the shot detector as ``upscale_file`` runs
    it), freeze the backend and the tile a run on this machine would choose (``--backend auto``,
    ``--tile 0``; given ones as given), fix the chunk grid and write the plan. Exit 2 on a bad
    input or option."""
    from gvrcli.batch.model import Model, engine_settings, find_model, run_choices
    from gvrcli.batch.options import validate_options
    from gvrcli.media.probe import probe_video

    if (segments is None) == (segment_frames is None) or min(segments or 1, segment_frames or 1) < 1:
        raise UsageError("give one of --segments N or --segment-frames F (>= 1)")
    validate_options(options)
    model_path, manifest = find_model(options, events)
    if manifest.has_vae:
        raise UsageError("gvr plan: frame ranges of a latent-cascade bundle are not supported")
    settings = engine_settings(options, manifest)
    with readable(source):
        fingerprint = ranges.input_fingerprint(source)
        info = probe_video(source, options.max_pixels)
    # Before the decode, so that this process holds what a run's holds when it plans its tiles.
    chosen = run_choices(Model(model_path, manifest, None), options, settings, source, info.height, info.width, events)
    options = dataclasses.replace(options, backend=chosen.backend, tile=chosen.tile[::-1])
    settings = engine_settings(options, manifest)
    with readable(source):
        pts, cuts = read_shots(info, options, manifest, events)
    frames, length, overlap = len(pts), settings.chunk_frames, settings.chunk_overlap
    count = segments if segments is not None else math.ceil(frames / segment_frames)
    parts = ranges.split(frames, cuts, length, overlap, max(1, min(count, frames)))
    facts = {**fingerprint, "path": str(source.resolve()), "frames": frames, "width": info.width, "height": info.height, "bit_depth": info.bit_depth}
    seek = ranges.seek_table(pts, (c.start for c in ranges.chunk_grid(frames, cuts, length, overlap)))
    plan = ranges.Plan(facts, output_options(options, model_path, manifest, settings), (length, overlap), cuts, parts, seek=seek)
    plan.extra["cost"] = cost(plan)
    plan.extra["chosen"] = chosen_facts(chosen)
    for warning in chosen.warnings:
        events.warning(f"gvr: {warning}")
    ranges.write_plan(plan_path, plan)
    return plan


def chosen_facts(chosen) -> dict:
    """How the plan came to its backend and tile (``gvr plan --json``, the plan's ``chosen``)."""
    facts = {"backend": f"auto: {chosen.why_backend}" if chosen.why_backend else "given", "tile": "given"}
    if chosen.plan is not None:
        p = chosen.plan
        facts.update(tile=f"planned: {p.describe()}", grid=list(p.grid), peak_mib=round(p.estimate_mb), budget_mib=round(p.budget_mb), fits=p.fits)
    return facts


@contextmanager
def readable(source: Path):
    """The input's read errors as one usage line (exit 2)."""
    try:
        yield
    except OSError as e:
        raise UsageError(f"{source}: cannot read ({e.strerror or e})") from None
    except InputError as e:
        raise UsageError(str(e)) from None


def read_shots(info, options, manifest, events) -> tuple[list[int | None], list[int]]:
    """Every frame's timestamp, and the shot cuts as ``upscale_file``'s detector finds them."""
    from gvrcli.media.decode import VideoDecoder
    from gvrcli.media.scenes import ShotDetector

    shots = ShotDetector(info.rate or 24.0, min_shot=manifest.temporal_unit) if options.scene_cuts else None
    decoder = VideoDecoder(info)
    pts: list[int | None] = []
    try:
        for frame in decoder.frames():
            if shots is not None:
                shots.push(frame.rgb)
            pts.append(frame.pts)
    finally:
        decoder.close()
    if shots is None:
        return pts, []
    shots.finish()
    if shots.failed:
        events.warning(f"gvr: scene-cut detection stopped ({shots.failed}); chunks may span cuts")
    return pts, list(shots.cuts)


def cost(plan: ranges.Plan) -> dict:
    """The ranges' extra work over a single run: context frames decoded, chunk frames computed."""
    grid = ranges.chunk_grid(plan.frames, plan.cuts, *plan.chunk)
    single = sum(c.end - c.start for c in grid)
    model = sum(c.end - c.start for a, b in plan.ranges for c in grid if c.start < b and c.end > a)
    context = sum(plan.window(a, b).context for a, b in plan.ranges)
    return {"context_frames": context, "model_frames": model, "single_model_frames": single, "model_overhead": round(model / single - 1, 4)}

