"""Fixtures for the runtime tests: a fake exported model (``tests.fake_model``; clips: ``tests.clips``).

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

import pytest

from tests.fake_model import build_fake_onnx, fake_manifest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fake_model(tmp_path_factory) -> Path:
    return build_fake_onnx(tmp_path_factory.mktemp("model") / "fake-x2.onnx")


@pytest.fixture(scope="session")
def fake_model_x4(tmp_path_factory) -> Path:
    return build_fake_onnx(tmp_path_factory.mktemp("model4") / "fake-x4.onnx", scale=4, manifest=fake_manifest(scale=4))


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
