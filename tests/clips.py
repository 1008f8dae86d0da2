"""The one PyAV clip writer behind every generated video: test inputs, ``samples/`` and benchmarks.

Nothing the tests need is checked in: each test writes the clips it needs, tiny, with exactly the
property it is about (a codec, a pixel format, variable timestamps, colour tags, a rotation, an
alpha channel, an audio track, a picture). One writer, so a fix (say, to how 10-bit frames are
made) reaches every caller, and a caller's clip differs from another's only where it says so.

Not runtime code (``gvr`` itself writes through ``gvrcli.media.encode``); imported as
``tests.clips`` from the repository root, which pytest puts on ``sys.path`` and which the scripts
in ``samples/`` and ``benchmarks/`` add themselves. Needs PyAV and NumPy, not torch.

Pictures are ``content(index, height, width)`` functions (frames made on the fly, so a long
benchmark clip never sits in memory) or a (T, H, W, 3) array: float in [0, 1] (scaled to the pixel
format's depth, truncating) or uint8 (taken as it is, for exact values).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Union

import av
import numpy as np

Content = Union[Callable[[int, int, int], np.ndarray], np.ndarray]

AUDIO_RATE = 48000
AUDIO_FRAME = 1024  # samples per AAC frame


def pattern(index: int, height: int, width: int) -> np.ndarray:
    """A smooth moving RGB pattern in [0, 1] (smooth, so lossy coding and bilinear checks stay meaningful)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(x / 7.0 + index * 0.3)
    g = 0.5 + 0.4 * np.cos(y / 5.0 - index * 0.2)
    b = 0.5 + 0.4 * np.sin((x + y) / 9.0 + index * 0.1)
    return np.stack([r, g, b], axis=-1)


def _a440(t: np.ndarray) -> np.ndarray:
    return 0.2 * np.sin(2 * np.pi * 440 * t)


@dataclass(frozen=True)
class Tone:
    """An AAC track: ``signal(t)`` (t in seconds, float32) on every channel of ``layout``.
    ``seconds`` defaults, beside a video, to the video's span plus one frame; ``bit_rate`` to the
    encoder's own choice."""

    signal: Callable[[np.ndarray], np.ndarray] = _a440
    seconds: float | Fraction | None = None
    layout: str = "stereo"
    bit_rate: int | None = None


def write_video(
    path: Path,
    frames: int = 8,
    size: tuple[int, int] = (64, 48),
    fps: int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    *,
    options: dict | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    colour: dict | None = None,
    rotation: int = 0,
    alpha: bool = False,
    audio: Tone | bool | None = None,
    container_options: dict | None = None,
    content: Content = pattern,
) -> Path:
    """Encode a small video at ``path`` (its folders made) and return ``path``.

    ``size`` is (width, height); with an array ``content`` its own frames and size count instead.
    libx264 encodes at crf 10, preset ultrafast unless ``options`` (the encoder's) say otherwise.
    ``pts``/``time_base`` give explicit (e.g. variable) timestamps; by default frame i is at i/fps.
    ``colour`` sets codec tags (``color_range``, ``colorspace``, ``color_primaries``,
    ``color_trc``, as FFmpeg's numbers) and converts RGB with that colorspace's matrix (BT.601 for
    an unspecified one). ``rotation`` is display-matrix degrees; ``alpha`` adds a horizontal alpha
    ramp (for pixel formats that keep it); ``audio`` a Tone (True: 440 Hz, stereo).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, np.ndarray):
        frames, (height, width) = len(content), content.shape[1:3]
        array, content = content, lambda i, h, w: array[i]
    else:
        width, height = size
    deep = max(c.bits for c in av.VideoFormat(pix_fmt).components) > 8
    colour = colour or {}
    colorspace = colour.get("colorspace")
    tb = time_base or Fraction(1, fps)
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        # Near-lossless and fast: the tests compare outputs with what went in.
        stream.codec_context.options = {**({"crf": "10", "preset": "ultrafast"} if codec == "libx264" else {}), **(options or {})}
        stream.codec_context.time_base = tb
        for key, value in colour.items():
            setattr(stream.codec_context, key, value)
        if rotation:
            stream.set_display_rotation(rotation)
        tone = Tone() if audio is True else audio or None
        sound = _audio_stream(out, tone) if tone else None
        out.start_encoding()
        for i in range(frames):
            vf = _frame(content(i, height, width), deep, alpha)
            # 2 (unspecified) converts like no tag at all: swscale's default BT.601 matrix.
            vf = vf.reformat(format=pix_fmt, dst_colorspace=colorspace if colorspace not in (None, 2) else None)
            vf.pts = pts[i] if pts else i
            vf.time_base = tb
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if sound is not None:
            seconds = tone.seconds if tone.seconds is not None else (pts[-1] * tb if pts else Fraction(frames, fps)) + Fraction(1, fps)
            _encode_tone(out, sound, tone, seconds)
    return path


def write_audio(path: Path, tone: Tone = Tone(seconds=0.5)) -> Path:
    """An audio-only file (no video stream) holding ``tone``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        _encode_tone(out, _audio_stream(out, tone), tone, tone.seconds)
    return path


def write_still(path: Path, size: tuple[int, int] = (64, 48), content: Content = pattern) -> Path:
    """A one-picture file in the format ``path``'s extension names (``.png``: the image2 muxer)."""
    return write_video(path, frames=1, size=size, fps=1, codec="png", pix_fmt="rgb24", content=content)


def _frame(picture: np.ndarray, deep: bool, alpha: bool) -> av.VideoFrame:
    """(h, w, 3) RGB -> a VideoFrame: uint8 as it is; floats in [0, 1] at 8 or 16 bits (truncated)."""
    if picture.dtype == np.uint8:
        return av.VideoFrame.from_ndarray(picture, format="rgb24")
    if alpha:
        height, width = picture.shape[:2]
        a = np.linspace(0.2, 1.0, width, dtype=np.float32)[None, :, None].repeat(height, 0)
        return av.VideoFrame.from_ndarray((np.concatenate([picture, a], axis=-1) * 255).astype(np.uint8), format="rgba")
    if deep:
        return av.VideoFrame.from_ndarray((picture * 65535).astype(np.uint16), format="rgb48le")
    return av.VideoFrame.from_ndarray((picture * 255).astype(np.uint8), format="rgb24")


def _audio_stream(out, tone: Tone):
    sound = out.add_stream("aac", rate=AUDIO_RATE)
    sound.layout = tone.layout
    if tone.bit_rate:
        sound.bit_rate = tone.bit_rate
    return sound


def _encode_tone(out, sound, tone: Tone, seconds) -> None:
    channels = len(av.AudioLayout(tone.layout).channels)
    total, n = int(seconds * AUDIO_RATE), 0
    while n < total:
        k = min(AUDIO_FRAME, total - n)
        t = (np.arange(n, n + k) / float(AUDIO_RATE)).astype(np.float32)
        wave = np.asarray(tone.signal(t), np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave] * channels), format="fltp", layout=tone.layout)
        frame.sample_rate, frame.pts = AUDIO_RATE, n
        for packet in sound.encode(frame):
            out.mux(packet)
        n += k
    for packet in sound.encode(None):
        out.mux(packet)


def read_video(path: Path) -> dict:
    """Facts about an output: size, frame count, times, rate, colour tags, rotation, audio streams."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        return {
            "width": v.codec_context.width,
            "height": v.codec_context.height,
            "frames": len(frames),
            "times": [float(f.time) for f in frames],
            "rate": v.average_rate,
            "pix_fmt": v.codec_context.pix_fmt,
            "colour": (frames[0].color_range, frames[0].colorspace, frames[0].color_primaries, frames[0].color_trc),
            "rotation": frames[0].rotation,
            "audio": [(a.codec_context.name, a.rate, a.frames) for a in c.streams.audio],
            "rgb": [f.to_ndarray(format="rgb24").astype(np.float32) / 255 for f in frames],
        }
