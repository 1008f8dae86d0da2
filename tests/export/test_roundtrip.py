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


# ---- the paper's conditioning: prompt sidecars, guidance, any output size ------------------------


def _frames(path: Path) -> list:
    import numpy as np

    with av.open(str(path)) as c:
        return [np.asarray(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def prompted_runs(dynamic_onnx, tmp_path_factory):
    """The shared export (text path: 8 tokens of 32-wide embeddings) over one folder, three times,
    lossless, at ``--size 200x134`` from 96x64: guidance 1, guidance 3, guidance 3 again. The folder
    holds a clip without a sidecar, the same clip with one, and a clip whose sidecar is too narrow."""
    import numpy as np
    from safetensors.numpy import save_file

    from gvrcli.batch.options import UpscaleOptions
    from gvrcli.batch.upscale import upscale

    root = tmp_path_factory.mktemp("prompted")
    src = root / "in"
    for name in ("plain", "prompted", "broken"):
        write_video(src / f"{name}.mp4", frames=3, size=(96, 64))
    rng = np.random.default_rng(0)
    save_file({"prompt_embeds": rng.standard_normal((5, 32)).astype(np.float32)}, str(src / "prompted.text.safetensors"))
    save_file({"prompt_embeds": rng.standard_normal((5, 31)).astype(np.float32)}, str(src / "broken.text.safetensors"))
    runs = {}
    for key, cfg in (("cfg1", 1.0), ("cfg3", 3.0), ("cfg3-again", 3.0)):
        opts = UpscaleOptions(output_dir=root / key, model=dynamic_onnx.path, codec="ffv1", size=(200, 134), cfg=cfg, threads=2)
        runs[key] = upscale([src], opts)
    return root, runs


def test_a_bad_sidecar_fails_its_video_in_one_line_and_the_batch_goes_on(prompted_runs):
    root, runs = prompted_runs
    for report in runs.values():
        by_name = {f.source.name: f for f in report.files}
        assert sorted(by_name) == ["broken.mp4", "plain.mp4", "prompted.mp4"], "a sidecar is never an input"
        assert by_name["plain.mp4"].status == by_name["prompted.mp4"].status == "done"
        failed = by_name["broken.mp4"]
        assert failed.status == "failed" and "\n" not in failed.reason
        assert "broken.text.safetensors" in failed.reason and "(5, 31)" in failed.reason and "32" in failed.reason
        assert not (report.files[0].output.parent / "broken.mkv").exists()
        assert by_name["prompted.mp4"].extra["prompt"].endswith("prompted.text.safetensors")


def test_every_output_frame_is_exactly_the_size_asked_for(prompted_runs):
    root, _ = prompted_runs
    for out in sorted(root.glob("cfg*/*.mkv")):
        frames = _frames(out)
        assert len(frames) == 3 and all(f.shape == (134, 200, 3) for f in frames), out


def test_the_prompt_and_the_guidance_scale_change_the_output_and_a_rerun_does_not(prompted_runs):
    import numpy as np

    root, _ = prompted_runs
    out = {(run, name): _frames(root / run / f"{name}.mkv") for run in ("cfg1", "cfg3", "cfg3-again") for name in ("plain", "prompted")}
    differ = lambda a, b: any(not np.array_equal(x, y) for x, y in zip(out[a], out[b]))  # noqa: E731
    assert differ(("cfg1", "plain"), ("cfg1", "prompted")), "a sidecar changes the output"
    assert differ(("cfg1", "prompted"), ("cfg3", "prompted")), "--cfg 3 differs from --cfg 1"
    assert not differ(("cfg3", "prompted"), ("cfg3-again", "prompted")), "a rerun is bit-identical"
    assert not differ(("cfg1", "plain"), ("cfg3", "plain")), "without a prompt, guidance has nothing to do"
