"""Fixtures for the reliability tests: the fake model, generated inputs, an unprivileged user.

The helpers live in ``media_cases`` (what to feed gvr) and ``gvr_harness`` (how to run it and
judge the result), which ``benchmarks/reliability_report.py`` imports too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # media_cases, gvr_harness (no package: like tests/gvrcli)

import media_cases  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: part of the full matrix (benchmarks/reliability_report.py); deselect with -m 'not slow'")


@pytest.fixture(scope="session")
def fake_model(tmp_path_factory) -> Path:
    return media_cases.build_fake_onnx(tmp_path_factory.mktemp("model") / "fake-x2.onnx")


@pytest.fixture(scope="session")
def mode_bits_bind():
    """Skip unless gvr can be run so that mode bits stop it (root without CAP_DAC_OVERRIDE)."""
    if not media_cases.can_drop_dac_override():
        pytest.skip("cannot make mode bits bind for this user (root without CAP_SETPCAP?)")
