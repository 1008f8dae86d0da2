"""Option values that come as text or from the environment, turned into what the library takes:
``--size WxH``, ``--tile N|WxH``, ``--shard I/N`` (else a job array's index), ``--plan``'s ``--range`` and
``--range-index``.

Apart from ``gvrcli.cli`` because several commands share them (``upscale``, ``degrade``,
``plan``, ``warmup``) and because their rules (which flags exclude which, where a job array's
index comes from) are more than a declaration.
"""

from __future__ import annotations

from typing import Optional

from gvrcli.errors import UsageError


def parse_size(text: Optional[str]):
    """--size WxH -> (width, height); a malformed value is a usage error."""
    if text is None:
        return None
    w, x, h = text.lower().partition("x")
    if not (x and w.strip().isdigit() and h.strip().isdigit()):
        raise UsageError(f"--size {text!r}: give WIDTHxHEIGHT, e.g. 1920x1080")
    return int(w), int(h)


def parse_tile(text: str):
    """--tile N (an N x N LR tile; 0 = planned) -> N; --tile WxH -> (width, height). Else a usage error."""
    t = text.strip().lower()
    if t.isascii() and t.isdigit():
        return int(t)
    w, x, h = t.partition("x")
    if x and w.isascii() and w.isdigit() and h.isascii() and h.isdigit() and int(w) > 0 and int(h) > 0:
        return int(w), int(h)
    raise UsageError(f"--tile {text!r}: give N (an N x N tile of LR pixels; 0 = planned) or WIDTHxHEIGHT, e.g. 96x108")


def pick_shard(shard: Optional[str], events):
    """--shard I/N, else the job array's environment, else None (all files)."""
    from gvrcli.farm.shard import parse_shard, shard_from_env

    chosen = parse_shard(shard) if shard else shard_from_env()
    if chosen and chosen.source != "--shard":
        events.message(f"gvr: shard {chosen.index}/{chosen.count} from {chosen.source}")
    return chosen


def pick_frame_range(plan, frame_range, range_index, shard, events):
    """(--range as (A, B), --range-index), the index from a job array's environment when --plan
    has neither (Slurm, AWS Batch, a Kubernetes Indexed Job)."""
    from gvrcli.farm.ranges import parse_range
    from gvrcli.farm.shard import task_index_from_env

    if plan is None:
        if frame_range is not None or range_index is not None:
            raise UsageError("--range/--range-index need --plan PLAN.json (from gvr plan)")
        return None, None
    if shard is not None:
        raise UsageError("--shard splits a batch by file; with --plan give --range or --range-index")
    if frame_range is not None and range_index is not None:
        raise UsageError("give one of --range and --range-index")
    if frame_range is None and range_index is None:
        found = task_index_from_env()
        if found is None:
            raise UsageError("--plan needs --range A-B or --range-index K (or a job array's task index)")
        range_index = found[0]
        events.message(f"gvr: range index {range_index} from {found[1]}")
    return (parse_range(frame_range) if frame_range is not None else None), range_index
