"""What ``gvr export --target openvino --out ir/`` writes runs as ``gvr upscale --model ir/``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.clips import read_video, write_video


def test_upscale_takes_the_openvino_folder_the_export_wrote(openvino_ir, tmp_path):
    assert openvino_ir.path.is_dir()
    clip = write_video(tmp_path / "in" / "clip.mp4", frames=3, size=(48, 32))
    done = subprocess.run(
        [sys.executable, "-m", "gvrcli", "upscale", "--model", str(openvino_ir.path), str(clip), str(tmp_path / "out"), "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr
    out = read_video(tmp_path / "out" / "clip.mp4")
    assert (out["width"], out["height"], out["frames"]) == (96, 64, 3)
    assert str(openvino_ir.main_file) in done.stdout  # the summary names the step graph it found
