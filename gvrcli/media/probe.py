"""Container probing: is this file a video we can upscale, and what are its stream facts.

Files are picked by what FFmpeg finds inside them, not by their extension. Probing reads headers
only (no frame is decoded), with a timeout, and refuses frame sizes over a limit before any
buffer is allocated for them. Every header field that sizes work is read once, here, and
bounded (the frame count by the file's size) before anything is planned from it.
"""

from __future__ import annotations

import errno
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from gvrcli.errors import InputError

# FFmpeg demuxers that read single pictures: a directory walk skips them (a folder of frames is
# not a folder of videos); given explicitly they are refused with a clear message.
_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif", "apng")

# The demuxers an input may be opened with: self-contained media containers, plus single
# pictures and audio-only formats so those are refused with a clear reason. Anything else is
# refused before it is opened, above all demuxers that open other files named inside the input
# (HLS/DASH playlists, concat lists, image sequences by pattern, IMF, VapourSynth/AviSynth
# scripts) or reach the network (SDP, RTSP): an input is one self-contained file.
_VIDEO_DEMUXERS = (
    "mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "mpegvideo", "m4v", "mxf", "flv",
    "ogg", "asf", "nut", "ivf", "obu", "yuv4mpegpipe", "dv", "h264", "hevc", "mjpeg", "gif", "apng",
    "rm", "gxf", "vc1", "wtv", "av1", "vvc",
)
_AUDIO_DEMUXERS = ("mp3", "wav", "w64", "aac", "flac", "aiff", "ac3", "eac3", "amr", "caf")
INPUT_DEMUXERS = tuple(
    sorted(
        {n for name in av.formats_available for n in name.split(",") if n in _VIDEO_DEMUXERS + _AUDIO_DEMUXERS}
        | {name for name in av.formats_available if name.endswith("_pipe") and "," not in name}
    )
)

# 4096 x 4096 LR pixels: 4K DCI input still fits, a hostile header claiming 65535 x 65535 does not.
DEFAULT_MAX_PIXELS = 4096 * 4096

# (open, read) seconds: FFmpeg's interrupt callback aborts I/O that blocks longer than this.
OPEN_TIMEOUT = (30.0, 30.0)


def open_input(path: Path):
    """Open an input for reading, with only the allowed demuxers (``INPUT_DEMUXERS``). Every open of
    an input goes through here: probing, decoding and copying its audio."""
    return av.open(
        str(path), timeout=OPEN_TIMEOUT, container_options={"format_whitelist": ",".join(INPUT_DEMUXERS)}
    )


@dataclass(frozen=True)
class VideoInfo:
    """What the runtime needs to know about an input before decoding it."""

    path: Path
    format_name: str
    width: int
    height: int
    frames: int  # best estimate; 0 when the container does not say
    rate: Fraction | None  # average frame rate, None when unknown
    time_base: Fraction
    pix_fmt: str
    bit_depth: int  # bits per component of the decoded pixels (8, 10, 12, 16)
    has_audio: bool
    has_subtitles: bool

    @property
    def high_bit_depth(self) -> bool:
        return self.bit_depth > 8


def _bit_depth(pix_fmt: str | None) -> int:
    if not pix_fmt:
        return 8
    try:
        fmt = av.VideoFormat(pix_fmt)
        return max(c.bits for c in fmt.components)
    except (ValueError, av.FFmpegError):
        return 8


def probe_video(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoInfo:
    """Read ``path``'s headers; raise InputError (one line naming the cause) unless it is a usable video."""
    path = Path(path)
    try:
        return _probe(path, max_pixels)
    except InputError:
        raise
    except Exception as e:  # a hostile header can trip PyAV in ways no list of cases anticipates
        raise InputError(f"{path}: unreadable media headers ({type(e).__name__}: {str(e)[:120]})") from None


def _probe(path: Path, max_pixels: int) -> VideoInfo:
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable (permission denied)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        container = open_input(path)
    except av.FFmpegError as e:
        if e.errno == errno.EINVAL:  # also what FFmpeg answers for a demuxer outside INPUT_DEMUXERS
            raise InputError(
                f"{path}: not a readable media file, or not one gvr reads as an input "
                f"(playlists and lists of other files are refused) ({_ffmpeg_reason(e)})"
            ) from None
        raise InputError(f"{path}: not a readable media file ({_ffmpeg_reason(e)})") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: cannot open ({e})") from None
    with container:
        format_name = container.format.name
        if any(f in format_name.split(",") for f in _IMAGE_FORMATS):
            raise InputError(f"{path}: a still image ({format_name}), not a video")
        streams = [
            s
            for s in container.streams.video
            if not (s.disposition & av.stream.Disposition.attached_pic)  # cover art is not a video
        ]
        if not streams:
            raise InputError(f"{path}: no video stream")
        stream = streams[0]
        ctx = stream.codec_context
        if ctx is None or not stream.codec_context.codec:
            raise InputError(f"{path}: video codec not supported by this FFmpeg build")
        width, height = ctx.width, ctx.height
        if width <= 0 or height <= 0:
            raise InputError(f"{path}: video stream has no frame size")
        if width * height > max_pixels:
            raise InputError(
                f"{path}: frame size {width}x{height} exceeds the limit of {max_pixels} pixels "
                "(raise it with --max-pixels)"
            )
        rate = stream.average_rate or stream.guessed_rate
        frames = _frame_count(stream, container, rate, path.stat().st_size)
        return VideoInfo(
            path=path,
            format_name=format_name,
            width=width,
            height=height,
            frames=frames,
            rate=Fraction(rate) if rate else None,
            time_base=stream.time_base or Fraction(1, 90000),
            pix_fmt=ctx.pix_fmt or "",
            bit_depth=_bit_depth(ctx.pix_fmt),
            has_audio=bool(container.streams.audio),
            has_subtitles=bool(container.streams.subtitles),
        )


def _frame_count(stream, container, rate, file_bytes: int) -> int:
    """The frame count the headers claim (the stream's, else its or the container's duration x the
    rate), bounded by what the file can hold: every coded frame takes at least one byte of it. A
    header claiming 10^15 frames in a 2 KB file must not size any plan or buffer (the count only
    plans work: a file holding more frames than probed still runs them all)."""
    claimed = stream.frames or 0
    if not claimed and rate:
        seconds = 0.0
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration:
            seconds = container.duration / av.time_base
        claimed = seconds * float(rate)
    if not math.isfinite(claimed) or claimed <= 0:
        return 0
    return int(min(round(claimed), file_bytes))


def _ffmpeg_reason(e: av.FFmpegError) -> str:
    """FFmpeg's message without the file name PyAV appends (we name the file ourselves)."""
    return (e.strerror or str(e)).strip().rstrip(".")
