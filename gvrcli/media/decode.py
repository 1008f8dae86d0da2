"""Decoding with PyAV: frames out as float32 RGB in [0, 1], with their timestamps and colour tags.

FFmpeg decodes with its own threads (frame and slice threading); the pipeline runs this in a
thread of its own so decoding overlaps inference. The conversion to RGB uses each frame's own
matrix and range tags, and the encoder converts back with the same tags, so a round trip keeps
the input's colours whichever standard it uses (untagged video is BT.601 both ways, FFmpeg's
default).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np

from gvrcli.errors import InputError
from gvrcli.media.probe import VideoInfo, open_input


@dataclass(frozen=True)
class ColourTags:
    """What the encoder copies onto the output (FFmpeg enum values; 2 = unspecified)."""

    color_range: int = 0
    colorspace: int = 2
    color_primaries: int = 2
    color_trc: int = 2
    rotation: int = 0  # display rotation in degrees (metadata only; pixels are not rotated)


@dataclass
class DecodedFrame:
    index: int
    pts: int | None  # in the input stream's time base
    rgb: np.ndarray  # (h, w, 3) float32 in [0, 1]


def colour_tags(frame: av.VideoFrame) -> ColourTags:
    return ColourTags(
        color_range=int(frame.color_range),
        colorspace=int(frame.colorspace),
        color_primaries=int(frame.color_primaries),
        color_trc=int(frame.color_trc),
        rotation=int(round(frame.rotation or 0)),
    )


def to_float_rgb(frame: av.VideoFrame, high_bit_depth: bool) -> np.ndarray:
    """(h, w, 3) float32 in [0, 1]; 16-bit RGB for >8-bit sources so 10-bit detail survives."""
    if high_bit_depth:
        return frame.to_ndarray(format="rgb48le").astype(np.float32) * np.float32(1 / 65535)
    return frame.to_ndarray(format="rgb24").astype(np.float32) * np.float32(1 / 255)


class VideoDecoder:
    """Iterate an input's video frames. ``first`` holds the first frame's colour tags once read."""

    def __init__(self, info: VideoInfo):
        self.info = info
        try:
            self.container = open_input(info.path)
        except (av.FFmpegError, OSError) as e:
            raise InputError(f"{info.path}: cannot open ({e})") from None
        self.stream = next(
            s for s in self.container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)
        )
        self.stream.codec_context.thread_type = "AUTO"  # FFmpeg frame + slice threads
        self.tags: ColourTags | None = None

    @property
    def time_base(self) -> Fraction:
        return self.stream.time_base

    def frames(self, first: int = 0, stop: int | None = None) -> Iterator[DecodedFrame]:
        """Frames ``first`` .. ``stop - 1`` (all by default); those before ``first`` are decoded
        but not converted (a frame range: ``gvrcli.farm.ranges``), and decoding ends at ``stop``."""
        path, expected = self.info.path, self.stream.frames
        index = 0
        try:
            for frame in self.container.decode(self.stream):
                if stop is not None and index >= stop:
                    return
                if (frame.width, frame.height) != (self.info.width, self.info.height):
                    # Checked before the frame is converted or batched: a stream that grows mid-way
                    # (an MPEG-TS switching to 2048x2048) must not get past --max-pixels.
                    raise InputError(
                        f"{path}: frame {index} is {frame.width}x{frame.height}, but the stream's header "
                        f"declares {self.info.width}x{self.info.height} (size changes mid-stream are not supported)"
                    )
                if index < first:
                    index += 1
                    continue
                if self.tags is None:
                    self.tags = colour_tags(frame)
                yield DecodedFrame(index, frame.pts, to_float_rgb(frame, self.info.high_bit_depth))
                index += 1
        except av.FFmpegError as e:
            raise InputError(f"{path}: decoding failed at frame {index} ({(e.strerror or str(e)).strip()})") from None
        if index <= first:
            raise InputError(f"{path}: no decodable video frames" + (f" from frame {first} on" if first else ""))
        # A header that promised more frames than the file holds means the file was cut short.
        if expected and index < expected:
            raise InputError(f"{path}: truncated (decoded {index} of the {expected} frames its header declares)")

    def close(self) -> None:
        self.container.close()
