"""What ``gvr export`` writes, ``gvr upscale`` runs: every target and OpenVINO source, through the
real CLI on a small clip. And ``gvr export`` without the export extra says what to install.

The ONNX and OpenVINO artefacts are the session's shared exports (``conftest.py``: the library
behind ``gvr export``, dynamic shapes as the runtime requires); one more test runs the literal
new-user workflow, ``gvr export --target openvino`` with default options, then ``gvr upscale``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest

from tests.reliability.media_cases import REPO, write_video

SMALL_JSON = {"depth": 2, "dim": 32, "heads": 2, "window": [3, 4], "temporal_unit": 3}


def _gvr(*args, timeout=600, prefix=None) -> subprocess.CompletedProcess:
    argv = [*(prefix or [sys.executable, "-m", "gvrcli"]), *map(str, args)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _upscales(model: Path, tmp_path: Path) -> None:
    clip = write_video(tmp_path / "in" / "clip.mp4", frames=3, size=(40, 24))
    out = tmp_path / "out"
    run = _gvr("upscale", clip.parent, out, "--model", model, "--json")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["event"] == "summary" and summary["done"] == 1, summary
    with av.open(str(out / "clip.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (80, 48)


def test_the_onnx_export_upscales(dynamic_onnx, tmp_path):
    _upscales(dynamic_onnx.path, tmp_path)


def test_the_openvino_export_from_torch_upscales(openvino_ir, tmp_path):
    _upscales(openvino_ir.main_file, tmp_path)


@pytest.mark.slow
def test_the_openvino_export_from_onnx_upscales(openvino_ir_from_onnx, tmp_path):
    _upscales(openvino_ir_from_onnx.main_file, tmp_path)


def test_gvr_export_openvino_with_default_options_then_gvr_upscale(tmp_path):
    """The README's workflow, command for command (a smaller network, to keep it quick)."""
    config = tmp_path / "small.json"
    config.write_text(json.dumps(SMALL_JSON))
    run = _gvr("export", "--target", "openvino", "--config", config, "--out", tmp_path / "ir")
    assert run.returncode == 0, run.stderr
    (xml,) = (p for p in (tmp_path / "ir").glob("*.xml") if ".condition." not in p.name)
    _upscales(xml, tmp_path)


def test_gvr_export_without_the_export_extra_says_what_to_install(tmp_path):
    # A runtime-only install: torch cannot be imported (the README's first command installs no extra).
    no_torch = [sys.executable, "-c", "import sys; sys.modules['torch'] = None\nfrom gvrcli.cli import main\nsys.argv[0] = 'gvr'\nmain()"]
    run = _gvr("export", "--target", "onnx", "--out", tmp_path / "m.onnx", prefix=no_torch, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gvr: error:") and "pip install" in lines[0] and "torch" in lines[0], lines
    assert not (tmp_path / "m.onnx").exists()
