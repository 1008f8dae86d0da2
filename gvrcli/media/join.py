"""``gvr join``: a plan's segments, in order, into the final output, as a single run writes it.

Every segment is checked before anything is written (``range_task.read_segment``: missing,
foreign or incomplete is exit 2, one line). The frames are then fed to the same ``VideoEncoder``
a single run uses, already quantised (``write_rgb``: the segment holds the 8- or 16-bit values the
single run's encoder would have computed), with the source's own timestamps (from each segment's
record), the source's first frame's colour tags, time base and rate, and the source's audio and
subtitles copied by the encoder as it interleaves them. So with the same codec the output's
frames, timestamps, audio packets and tags are the single run's. The output is a partial until
the last frame is in, then renamed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from gvrbase import atomic
from gvrcli.errors import Cancelled, UsageError
from gvrcli.farm import ranges
from gvrcli.farm.range_task import check_input, read_segment
from gvrcli.media.decode import VideoDecoder
from gvrcli.media.encode import EncodeSettings, VideoEncoder
from gvrcli.media.formats import check_output_container, get_codec
from gvrcli.media.probe import probe_video


@dataclass
class JoinResult:
    output: Path
    frames: int = 0
    skipped: bool = False
    warnings: tuple[str, ...] = ()


def join(plan_path: Path, output: Path, codec: str = "h264", crf: int | None = None, pix_fmt: str | None = None,
         overwrite: bool = False, cancel=None, on_frames=lambda n: None) -> JoinResult:
    """Assemble ``plan_path``'s segments (beside ``output``) into ``output``. UsageError (exit 2)
    when a segment is missing, foreign or incomplete, or the input is not the plan's; nothing is
    written then."""
    plan = ranges.read_plan(plan_path)
    encode = EncodeSettings(get_codec(codec), crf, pix_fmt)
    check_output_container(output.name, encode.codec)
    if output.is_dir():
        raise UsageError(f"OUTPUT {output} is a directory; give the final output file")
    if output.exists() and not overwrite:
        return JoinResult(output, skipped=True)
    source = Path(plan.input["path"])
    check_input(plan, source)
    records = [(ranges.segment_path(output, a, b), read_segment(ranges.segment_path(output, a, b), plan, a, b)) for a, b in plan.ranges]
    info = probe_video(source)
    deep = av.VideoFormat(encode.pix_fmt_for(info.high_bit_depth)).components[0].bits > 8
    warnings = []
    if any(r["deep"] != deep for _, r in records):
        warnings.append("the segments hold another bit depth than this codec's pixel format: converted, not bit-identical to a single run")
    backends = sorted({(r["backend"], r["precision"]) for _, r in records})
    if len(backends) > 1:
        warnings.append(f"segments made on different backends ({'; '.join(f'{b} {p}' for b, p in backends)}): frames may differ at the seams")
    decoder = VideoDecoder(info)  # the time base and the first frame's colour tags, as the single run takes them
    try:
        next(decoder.frames(0, 1), None)
        time_base, tags = decoder.time_base, decoder.tags
    finally:
        decoder.close()
    partial = atomic.partial_path(output, os.urandom(8).hex())
    encoder = None
    try:
        for segment, record in records:
            frames = 0
            for rgb in _segment_frames(segment, record["deep"], deep):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                if frames >= len(record["pts"]):
                    raise UsageError(f"segment {segment}: incomplete (more frames than its record lists)")
                if encoder is None:
                    encoder = VideoEncoder(partial, source, rgb.shape[1], rgb.shape[0], time_base, info.rate, tags, encode, high_bit_depth=info.high_bit_depth)
                encoder.write_rgb(rgb, record["pts"][frames])
                frames += 1
                on_frames(1)
            if frames != len(record["pts"]):
                raise UsageError(f"segment {segment}: incomplete ({frames} frames decoded of {len(record['pts'])})")
        encoder.close()
        atomic.publish(partial, output)
        return JoinResult(output, frames=plan.frames, warnings=(*warnings, *encoder.warnings))
    except BaseException:
        if encoder is not None:
            encoder.abort()
        raise
    finally:
        partial.unlink(missing_ok=True)


def _segment_frames(segment: Path, stored_deep: bool, deep: bool):
    """A segment's frames as the quantised RGB the final encoder takes; a decoding failure is the
    segment's incompleteness (exit 2)."""
    try:
        with av.open(str(segment)) as container:
            for frame in container.decode(container.streams.video[0]):
                rgb = frame.to_ndarray(format="rgb48le" if stored_deep else "rgb24")
                if stored_deep != deep:  # 8 <-> 16 bits, rounded as the encoder's quantiser rounds
                    rgb = (rgb.astype(np.uint16) * 257) if deep else ((rgb.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
                yield rgb
    except (av.FFmpegError, IndexError) as e:
        raise UsageError(f"segment {segment}: incomplete (cannot decode: {e})") from None

