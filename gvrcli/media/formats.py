"""Output codecs and the containers that hold them: the output naming rule.

An output keeps its input's relative path and stem. It keeps the input's extension when that
container can hold the chosen codec, otherwise it becomes ``.mkv`` (Matroska holds every codec
here), except ProRes, which goes to ``.mov``. The rule depends only on the input name and the
codec, so a rerun (or another worker) computes the same output name without probing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gvrcli.errors import UsageError


@dataclass(frozen=True)
class OutputCodec:
    name: str  # what users type
    encoder: str  # FFmpeg encoder
    pix_fmt_8bit: str
    pix_fmt_10bit: str
    crf_option: str | None  # encoder option taking the quality level, None when lossless/profile-based
    default_crf: int | None
    options: tuple[tuple[str, str], ...] = ()  # further encoder options, always set


CODECS = {
    c.name: c
    for c in (
        # CRF 18 is x264's "visually lossless" point (20 for x265): an upscaler should not add visible loss.
        OutputCodec("h264", "libx264", "yuv420p", "yuv420p10le", "crf", 18, (("preset", "medium"),)),
        OutputCodec("hevc", "libx265", "yuv420p", "yuv420p10le", "crf", 20, (("preset", "medium"), ("x265-params", "log-level=error"))),
        OutputCodec("av1", "libsvtav1", "yuv420p", "yuv420p10le", "crf", 30),
        OutputCodec("vp9", "libvpx-vp9", "yuv420p", "yuv420p10le", "crf", 24, (("b", "0"),)),  # b=0: CRF alone
        OutputCodec("ffv1", "ffv1", "yuv420p", "yuv420p10le", None, None),
        OutputCodec("prores", "prores_ks", "yuv422p10le", "yuv422p10le", None, None, (("profile", "3"),)),  # 3 = HQ
    )
}

# Which codecs each container extension can hold (lower-case, with the dot).
_CONTAINER_CODECS = {
    ".mp4": {"h264", "hevc", "av1", "vp9"},
    ".m4v": {"h264", "hevc"},
    ".mov": {"h264", "hevc", "prores", "av1"},
    ".mkv": set(CODECS),
    ".webm": {"av1", "vp9"},
    ".avi": {"h264", "ffv1"},
    ".mxf": {"h264", "prores"},
    ".ts": {"h264", "hevc"},
}
_FALLBACK = {"prores": ".mov"}

# Extensions a directory walk treats as "meant to be a video": if such a file fails probing it
# is reported as a failed input; any other file that fails probing is silently ignored.
VIDEO_EXTENSIONS = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mxf", ".ts", ".mts", ".m2ts",
    ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv", ".y4m", ".dv", ".vob",
}


def get_codec(name: str) -> OutputCodec:
    try:
        return CODECS[name]
    except KeyError:
        raise UsageError(f"unknown codec {name!r} (choose from {', '.join(CODECS)})") from None


def output_relative_path(relative: Path, codec: OutputCodec) -> Path:
    """The output's path relative to OUTPUT_DIR, for an input at ``relative`` under its root."""
    ext = relative.suffix.lower()
    if codec.name in _CONTAINER_CODECS.get(ext, ()):
        return relative
    return relative.with_name(relative.stem + _FALLBACK.get(codec.name, ".mkv"))


def check_output_container(name: str, codec: OutputCodec) -> None:
    """File to file: OUTPUT's extension picks its container, as an input's does in a batch; refuse
    (exit 2) a container gvr does not write or one that cannot hold ``codec``."""
    ext = Path(name).suffix.lower()
    if ext not in _CONTAINER_CODECS:
        raise UsageError(f"OUTPUT {name!r}: gvr writes {' '.join(_CONTAINER_CODECS)} files; name the output with one of those")
    if codec.name not in _CONTAINER_CODECS[ext]:
        fits = [c for c in CODECS if c in _CONTAINER_CODECS[ext]]
        others = [e for e, held in _CONTAINER_CODECS.items() if codec.name in held]
        raise UsageError(
            f"OUTPUT {name!r}: a {ext} file cannot hold {codec.name}; use --codec {'|'.join(fits)}, or a name ending in {' '.join(others)}"
        )
