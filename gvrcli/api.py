"""gvr as a Python library at the file level, for engines that call Python rather than a command
line (Ray, Dask, a notebook): the same work and contracts as ``gvr upscale`` / ``plan`` / ``join``.

* ``upscale_file(input, output, ...)`` upscales one file, or one frame range of a plan, into
  ``output`` (a file): atomic output, a finished output is skipped, claims shared with CLI workers.
  A file that fails comes back as a result with ``status == "failed"`` and its one-line ``reason``;
  what stops every file (bad options or model: ``GvrError`` with ``exit_code`` 2; GPU missing or
  out of memory: ``exit_code`` 75, retry elsewhere) is raised.
* ``Session()`` keeps the loaded (and compiled) model between calls: one per process or actor,
  used by one call at a time.
* ``plan_file`` and ``join_segments`` are ``gvr plan`` and ``gvr join``.

Options are ``gvrcli.batch.options.UpscaleOptions``' fields, by keyword (``steps=4``, ``seed=1``,
``codec="ffv1"``, ``tile=256`` or ``tile=(96, 108)`` as ``--tile 96x108``...).
"""

from __future__ import annotations

import threading
from pathlib import Path

from gvrcli.errors import InputError, RetryableError

__all__ = ["Session", "upscale_file", "plan_file", "join_segments"]


class Session:
    """A model kept loaded from one ``upscale_file`` call to the next (same model and runtime
    options); not for two calls at once."""

    def __init__(self):
        self.held: dict = {}
        self._busy = threading.Lock()

    def close(self) -> None:
        self.held.clear()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def upscale_file(input, output, *, model=None, plan=None, frame_range: tuple[int, int] | None = None,
                 range_index: int | None = None, session: Session | None = None, events=None, cancel=None, **options):
    """Upscale ``input`` into the file ``output`` (or, with ``plan`` and ``frame_range``/``range_index``,
    that range into its segment beside ``output``); returns the file's ``gvrcli.report.FileResult``."""
    from gvrcli.batch.options import UpscaleOptions
    from gvrcli.batch.upscale import upscale

    opts = UpscaleOptions(
        output_dir=Path(output), model=Path(model) if model else None, plan=Path(plan) if plan else None,
        frame_range=tuple(frame_range) if frame_range else None, range_index=range_index, **options,
    )
    lock = session._busy if session is not None else threading.Lock()
    if not lock.acquire(blocking=False):
        raise RuntimeError("gvrcli.api.Session: one upscale_file call at a time per session")
    try:
        report = upscale([Path(input)], opts, events=events, cancel=cancel, session=session.held if session is not None else None)
    finally:
        lock.release()
    if report.fatal:
        raise RetryableError(report.fatal)
    if not report.files:
        raise InputError(f"{input}: not upscaled (stopped before it started)")
    return report.files[0]


def plan_file(input, plan, *, segments: int | None = None, segment_frames: int | None = None, model=None, events=None, **options):
    """``gvr plan``: write ``plan`` for ``input``; returns the ``gvrcli.farm.ranges.Plan``."""
    from gvrcli.batch.options import UpscaleOptions
    from gvrcli.farm.range_task import make_plan
    from gvrcli.progress import SilentEvents

    opts = UpscaleOptions(output_dir=Path(plan).parent, model=Path(model) if model else None, **options)
    return make_plan(Path(input), Path(plan), opts, segments, segment_frames, events or SilentEvents())


def join_segments(plan, output, *, codec: str = "h264", crf: int | None = None, pix_fmt: str | None = None, overwrite: bool = False):
    """``gvr join``: the plan's segments into ``output``; returns a ``gvrcli.media.join.JoinResult``."""
    from gvrcli.media.join import join

    return join(Path(plan), Path(output), codec=codec, crf=crf, pix_fmt=pix_fmt, overwrite=overwrite)
