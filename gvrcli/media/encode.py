"""Encoding with PyAV: the upscaled frames, the input's timestamps and tags, and stream copies.

* Each output frame keeps its input frame's pts in the input's time base, so variable frame
  rate stays variable and audio stays in sync.
* Audio and subtitle streams are copied packet by packet (no re-encode), interleaved with the
  video by time as we go, so nothing is buffered for the whole file. A stream the output
  container cannot hold is dropped with a warning rather than failing the file.
* Colour range/matrix/primaries/transfer and the display rotation are copied from the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from gvrcli.media.decode import ColourTags
from gvrcli.media.formats import OutputCodec
from gvrcli.media.probe import open_input

_UNSPECIFIED = 2  # FFmpeg's AVCOL_*_UNSPECIFIED


@dataclass(frozen=True)
class EncodeSettings:
    codec: OutputCodec
    crf: int | None = None  # None = the codec's default
    pix_fmt: str | None = None  # None = the codec's 8- or 10-bit default, following the input

    def pix_fmt_for(self, high_bit_depth: bool) -> str:
        if self.pix_fmt:
            return self.pix_fmt
        return self.codec.pix_fmt_10bit if high_bit_depth else self.codec.pix_fmt_8bit


@dataclass
class VideoEncoder:
    """Write ``partial``: the video from ``write(rgb, pts)`` plus audio/subtitles copied from ``source``
    (None: a video alone, as from a latent file)."""

    partial: Path
    source: Path | None
    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None
    tags: ColourTags
    settings: EncodeSettings
    high_bit_depth: bool = False
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.pix_fmt = self.settings.pix_fmt_for(self.high_bit_depth)
        self._deep = av.VideoFormat(self.pix_fmt).components[0].bits > 8
        self._last_pts: int | None = None
        self._src = open_input(self.source) if self.source is not None else None
        copyable = [*self._src.streams.audio, *self._src.streams.subtitles] if self._src is not None else []
        # Try with every stream; if the container refuses the header, retry without subtitles,
        # then without any copies.
        attempts = [copyable, [s for s in copyable if s.type == "audio"], []]
        last_error = None
        for i, streams in enumerate(attempts):
            if i and streams == attempts[i - 1]:
                continue
            self._out = None
            try:
                self._open_output(streams)
                break
            except (av.FFmpegError, ValueError) as e:
                if self._out is not None:
                    self._out.close()
                if not streams:
                    if self._src is not None:
                        self._src.close()
                    raise
                last_error = e
        dropped = len(copyable) - len(self._copy_map)
        if dropped:
            self.warnings.append(
                f"{dropped} audio/subtitle stream(s) dropped: the output container cannot hold them ({last_error})"
            )
        self._packets = self._src.demux(*[self._src.streams[i] for i in self._copy_map]) if self._copy_map else iter(())
        self._next_copy = None

    def _open_output(self, copies) -> None:
        self._out = av.open(str(self.partial), "w")
        stream = self._out.add_stream(self.settings.codec.encoder, rate=self.rate)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, self.pix_fmt
        ctx = stream.codec_context
        ctx.time_base = self.time_base
        ctx.thread_count = 0
        t = self.tags
        ctx.color_range = t.color_range
        ctx.colorspace, ctx.color_primaries, ctx.color_trc = t.colorspace, t.color_primaries, t.color_trc
        codec = self.settings.codec
        options = dict(codec.options)
        crf = self.settings.crf if self.settings.crf is not None else codec.default_crf
        if codec.crf_option and crf is not None:
            options[codec.crf_option] = str(crf)
        ctx.options = options
        if t.rotation:
            stream.set_display_rotation(t.rotation)
        stream.time_base = self.time_base
        self._video = stream
        self._copy_map = {}
        for s in copies:
            self._copy_map[s.index] = self._out.add_stream_from_template(s)
        self._out.start_encoding()

    def write(self, planar: np.ndarray, pts: int | None) -> None:
        """One upscaled frame, planar (3, H, W) float32 in [0, 1]."""
        rgb = planar.transpose(1, 2, 0)  # (H, W, 3): the strided read happens here, in the encoder's thread
        self.write_rgb(_quantise(rgb, 65535, np.uint16) if self._deep else _quantise(rgb, 255, np.uint8), pts)

    def write_rgb(self, rgb: np.ndarray, pts: int | None) -> None:
        """One frame already quantised as ``write`` does: (H, W, 3) uint16 for a deep pixel format,
        else uint8 (``gvr join`` feeds a segment's frames back so, bit for bit)."""
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            # Missing or repeated timestamps: continue one frame duration after the last one.
            step = max(1, round(1 / (self.rate * self.time_base))) if self.rate else 1
            pts = 0 if self._last_pts is None else self._last_pts + step
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if self._deep else "rgb24")
        t = self.tags
        frame = frame.reformat(
            format=self.pix_fmt,
            dst_colorspace=t.colorspace if t.colorspace != _UNSPECIFIED else None,
            dst_color_range=t.color_range or None,
        )
        frame.pts, frame.time_base = pts, self.time_base
        self._mux_video(self._video.encode(frame))

    def close(self) -> None:
        """Flush the encoder, copy the remaining audio/subtitles, write the trailer."""
        self._mux_video(self._video.encode(None))
        self._copy_until(None)
        self._out.close()
        if self._src is not None:
            self._src.close()

    def abort(self) -> None:
        for c in (getattr(self, "_out", None), self._src):
            try:
                if c is not None:
                    c.close()
            except Exception:  # closing after a failure: the partial is deleted anyway
                pass

    def _mux_video(self, packets) -> None:
        for packet in packets:
            if packet.dts is not None and packet.time_base is not None:
                self._copy_until(packet.dts * packet.time_base)
            self._out.mux(packet)

    def _copy_until(self, seconds) -> None:
        """Mux copied packets whose time is <= ``seconds`` (all remaining when None)."""
        while True:
            if self._next_copy is None:
                self._next_copy = next(self._packets, False)
            packet = self._next_copy
            if packet is False:
                return
            if packet.dts is None and packet.pts is None:
                self._next_copy = None  # demuxer flush packet: nothing to write
                continue
            when = (packet.dts if packet.dts is not None else packet.pts) * packet.time_base
            if seconds is not None and when > seconds:
                return
            packet.stream = self._copy_map[packet.stream.index]
            self._out.mux(packet)
            self._next_copy = None


def _quantise(rgb: np.ndarray, peak: int, dtype) -> np.ndarray:
    return np.clip(rgb * peak + 0.5, 0, peak).astype(dtype)
