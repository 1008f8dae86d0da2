"""Fixtures for the runtime tests: a fake exported model and small generated videos.

The fake model is a hand-built ONNX graph with the real denoiser's inputs, outputs and manifest:
``velocity = (z_t - bilinear_up(lr)) / t`` (``lr`` is the clean LR latent, ``2 * pixels - 1``).
Under the Euler sampler that velocity lands exactly on the bilinear upscale of the input, which is what the untrained built-in default
produces too, so tests can check outputs against a known answer.
"""

from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.fake_model import build_fake_onnx, fake_manifest  # noqa: F401  (re-exported to the tests)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fake_model(tmp_path_factory) -> Path:
    return build_fake_onnx(tmp_path_factory.mktemp("model") / "fake-x2.onnx")


@pytest.fixture(scope="session")
def fake_model_x4(tmp_path_factory) -> Path:
    return build_fake_onnx(tmp_path_factory.mktemp("model4") / "fake-x4.onnx", scale=4, manifest=fake_manifest(scale=4))


def bilinear_up(frames: np.ndarray, scale: int) -> np.ndarray:
    """(T, h, w, C) -> (T, s*h, s*w, C): half-pixel bilinear with edge clamp (ONNX Resize 'linear')."""
    T, h, w, C = frames.shape

    def axis(n):
        x = (np.arange(n * scale) + 0.5) / scale - 0.5
        x = np.clip(x, 0, n - 1)
        i0 = np.floor(x).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, (x - i0).astype(np.float32)

    y0, y1, fy = axis(h)
    x0, x1, fx = axis(w)
    rows = frames[:, y0] * (1 - fy)[None, :, None, None] + frames[:, y1] * fy[None, :, None, None]
    return rows[:, :, x0] * (1 - fx)[None, None, :, None] + rows[:, :, x1] * fx[None, None, :, None]


def pattern(index: int, height: int, width: int) -> np.ndarray:
    """A smooth moving RGB pattern (smooth so lossy coding and bilinear checks stay meaningful)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 0.5 + 0.4 * np.sin(x / 7.0 + index * 0.3)
    g = 0.5 + 0.4 * np.cos(y / 5.0 - index * 0.2)
    b = 0.5 + 0.4 * np.sin((x + y) / 9.0 + index * 0.1)
    return np.stack([r, g, b], axis=-1)


def write_video(
    path: Path,
    frames: int = 8,
    size: tuple[int, int] = (64, 48),
    fps: int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    audio: bool = False,
    colour: dict | None = None,
    rotation: int = 0,
    content=pattern,
) -> Path:
    """Encode a small test video with PyAV. ``pts``/``time_base`` give explicit (e.g. VFR) timestamps;
    ``content(index, height, width)`` draws frame ``index`` as (h, w, 3) floats in [0, 1]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    deep = av.VideoFormat(pix_fmt).components[0].bits > 8
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.codec_context.options = {"crf": "10", "preset": "ultrafast"}
        tb = time_base or Fraction(1, fps)
        stream.codec_context.time_base = tb
        for key, value in (colour or {}).items():
            setattr(stream.codec_context, key, value)
        if rotation:
            stream.set_display_rotation(rotation)
        astream = None
        if audio:
            astream = out.add_stream("aac", rate=48000)
            astream.layout = "stereo"
        out.start_encoding()
        for i in range(frames):
            rgb = content(i, height, width)
            if deep:
                vf = av.VideoFrame.from_ndarray((rgb * 65535).astype(np.uint16), format="rgb48le")
            else:
                vf = av.VideoFrame.from_ndarray((rgb * 255).astype(np.uint8), format="rgb24")
            cs = (colour or {}).get("colorspace")
            vf = vf.reformat(format=pix_fmt, dst_colorspace=cs if cs not in (None, 2) else None)
            vf.pts = pts[i] if pts else i
            vf.time_base = tb
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if astream is not None:
            seconds = (pts[-1] * tb if pts else Fraction(frames, fps)) + Fraction(1, fps)
            samples = int(seconds * 48000)
            n = 0
            while n < samples:
                k = min(1024, samples - n)
                t = (np.arange(n, n + k) / 48000.0).astype(np.float32)
                tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                af.sample_rate, af.pts = 48000, n
                for packet in astream.encode(af):
                    out.mux(packet)
                n += k
            for packet in astream.encode(None):
                out.mux(packet)
    return path


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


@pytest.fixture
def gvr_cmd():
    """The CLI as a subprocess argv prefix (``python -m gvrcli``), run from the repository."""
    return [sys.executable, "-m", "gvrcli"]


@pytest.fixture
def cli_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("SLURM_ARRAY_TASK_ID", None)
    env.pop("AWS_BATCH_JOB_ARRAY_INDEX", None)
    return env
