"""Fixtures for the runtime tests: a fake exported model and small generated videos (``tests.clips``).

The fake model is hand-built ONNX (a step graph and its condition companion) with the real
model's inputs, outputs and manifest: ``cond = bilinear_up(lr)`` (``lr`` is the clean LR latent,
``2 * pixels - 1``) and ``z_next = z_t + (t_next - t) * (z_t - cond) / t``. Under the Euler
sampler that lands exactly on the bilinear upscale of the input, which is what the untrained
built-in default produces too, so tests can check outputs against a known answer.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from tests.clips import pattern, write_video  # noqa: F401  (re-exported to the tests)
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
