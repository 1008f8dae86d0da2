"""What ``gvr eval`` reads from an output's ``--sidecar`` record (``OUTPUT.gvr.json``): where the
chunks started and how far they blended, the shot starts, and how the output was made (model,
options, gvr version) for the report.

The sidecar sits beside a file the user named, but it is still untrusted input: it is opened
without blocking or following a link, read up to ``MAX_SIDECAR_BYTES``, and every field is checked;
anything off leaves the file scored without it and one warning saying why.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from gvrcli.farm.sidecar import sidecar_path

MAX_SIDECAR_BYTES = 4 << 20  # a day of 24 fps video has ~17k chunk starts: well under this
MAX_FRAMES = 1 << 31
# Shown in the report as "made by": plain facts, never the sidecar's other fields.
MADE_BY = ("gvr_version", "model", "weights_sha256", "backend", "device", "precision", "steps", "noise_aug",
           "seed", "scale", "size", "cfg", "codec", "color_fix", "memory")


@dataclass
class Sidecar:
    scenes: list[int] = field(default_factory=list)
    chunks: tuple[list[int], int] | None = None
    tiles: tuple[list[int], list[int], tuple[int, int]] | None = None  # (rows, cols, overlap (y, x)), output pixels
    made_by: dict = field(default_factory=dict)


def read_sidecar(output: Path) -> tuple[Sidecar | None, str]:
    """(the checked sidecar of ``output`` or None, a warning or ""); no sidecar is no warning."""
    path = sidecar_path(Path(output))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None, ""
    except OSError as e:
        return None, f"sidecar {path} ignored: {e.strerror or e}"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, f"sidecar {path} ignored: not a regular file"
        data = os.read(fd, MAX_SIDECAR_BYTES + 1)
    except OSError as e:
        return None, f"sidecar {path} ignored: {e.strerror or e}"
    finally:
        os.close(fd)
    if len(data) > MAX_SIDECAR_BYTES:
        return None, f"sidecar {path} ignored: over {MAX_SIDECAR_BYTES >> 20} MiB"
    try:
        return _parse(json.loads(data)), ""
    except (ValueError, RecursionError, TypeError) as e:
        return None, f"sidecar {path} ignored: {str(e)[:200]}"


def _frames(value, what: str) -> list[int]:
    if not isinstance(value, list) or not all(type(v) is int and 0 <= v < MAX_FRAMES for v in value):
        raise ValueError(f"{what} is not a list of frame numbers")
    return sorted(set(value))


def _parse(body) -> Sidecar:
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    out = Sidecar()
    if "scenes" in body:
        out.scenes = _frames(body["scenes"], "scenes")
    chunks = body.get("chunks")
    if chunks is not None:
        if not isinstance(chunks, dict) or type(chunks.get("overlap")) is not int or not 0 <= chunks["overlap"] < MAX_FRAMES:
            raise ValueError("chunks is not {starts, overlap}")
        out.chunks = (_frames(chunks.get("starts"), "chunks.starts"), chunks["overlap"])
    tiles = body.get("tiles")
    if tiles is not None:
        overlap = tiles.get("overlap") if isinstance(tiles, dict) else None
        if not (isinstance(overlap, list) and len(overlap) == 2 and all(type(v) is int and 0 <= v < MAX_FRAMES for v in overlap)):
            raise ValueError("tiles is not {rows, cols, overlap}")
        out.tiles = (_frames(tiles.get("rows"), "tiles.rows"), _frames(tiles.get("cols"), "tiles.cols"), tuple(overlap))
    for key in MADE_BY:
        value = body.get(key)
        if isinstance(value, (str, int, float, bool)) and not (isinstance(value, str) and len(value) > 500):
            out.made_by[key] = value
        elif isinstance(value, list) and len(value) <= 4 and all(type(v) is int for v in value):
            out.made_by[key] = value
    return out
