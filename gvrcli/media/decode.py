"""Decoding with PyAV: frames out as float32 RGB in [0, 1], with their timestamps and colour tags.

FFmpeg decodes with its own threads (frame and slice threading); the pipeline runs this in a
thread of its own so decoding overlaps inference. The conversion to RGB uses each frame's own
matrix and range tags, and the encoder converts back with the same tags, so a round trip keeps
the input's colours whichever standard it uses (untagged video is BT.601 both ways, FFmpeg's
default).
"""

from __future__ import annotations

import itertools
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
        self.tags: ColourTags | None = None
        self.decoded = 0  # frames FFmpeg decoded (a seek saves those before it)
        self._open()

    def _open(self) -> None:
        try:
            self.container = open_input(self.info.path)
        except (av.FFmpegError, OSError) as e:
            raise InputError(f"{self.info.path}: cannot open ({e})") from None
        self.stream = next(
            s for s in self.container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)
        )
        self.stream.codec_context.thread_type = "AUTO"  # FFmpeg frame + slice threads

    @property
    def time_base(self) -> Fraction:
        return self.stream.time_base

    def frames(self, first: int = 0, stop: int | None = None, seek_pts: int | None = None) -> Iterator[DecodedFrame]:
        """Frames ``first`` .. ``stop - 1`` (all by default); those before ``first`` are decoded
        but not converted (a frame range: ``gvrcli.farm.ranges``), and decoding ends at ``stop``.
        ``seek_pts``, frame ``first``'s timestamp (a plan records it): decoding starts at the key
        frame before it rather than at the file's start (``_seek``)."""
        path, expected = self.info.path, self.stream.frames
        index, source = 0, None
        if first > 0 and seek_pts is not None:
            source = self._seek(seek_pts)
            index = first if source is not None else 0
        try:
            for frame in source if source is not None else self._decode():
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

    def _decode(self) -> Iterator[av.VideoFrame]:
        for frame in self.container.decode(self.stream):
            self.decoded += 1
            yield frame

    def _seek(self, pts: int) -> Iterator[av.VideoFrame] | None:
        """The stream from the frame whose timestamp is ``pts`` on, decoded from the key frame at or
        before it; None (the input reopened at its start) when decoding from there does not reach
        exactly that timestamp: a demuxer that cannot seek, frames without timestamps, a plan made
        from another encoding. Frames before the target (an open GOP's leading frames among them)
        are dropped, and the target frame is the key frame's GOP's, so every frame handed on
        decodes as it does from the start."""
        try:
            self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
            frames = self._decode()
            for frame in frames:
                if frame.pts is None or frame.pts > pts:
                    break
                if frame.pts == pts:
                    return itertools.chain([frame], frames)
        except av.FFmpegError:
            pass
        self.container.close()
        self._open()
        return None

    def close(self) -> None:
        self.container.close()
