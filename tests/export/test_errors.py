"""Bad input: one clear line, exit code 2, nothing written (and nothing half-written)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from gvrcli.export_command import export_command

app = typer.Typer()
app.command()(export_command)


def run(*args):
    result = CliRunner().invoke(app, list(map(str, args)))
    return result


def assert_refused(result, *words):
    assert result.exit_code == 2, result.output
    lines = [l for l in result.output.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("gvr: error:"), result.output
    for word in words:
        assert word in lines[0], lines[0]


def leftovers(folder):
    return [p.name for p in folder.iterdir() if ".part" in p.name or p.name.endswith(".old")]


def test_unknown_config(tmp_path):
    assert_refused(run("--target", "onnx", "--config", "huge", "--out", tmp_path / "m.onnx"), "unknown config", "huge")
    assert list(tmp_path.iterdir()) == []


def test_bad_json_config(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"dim": 64, "wings": 2}')
    assert_refused(run("--target", "onnx", "--config", cfg, "--out", tmp_path / "m.onnx"), "wings")


def test_checkpoint_of_another_architecture(tmp_path):
    from safetensors.numpy import save_file
    import numpy as np

    ckpt = tmp_path / "resnet.safetensors"
    save_file({"conv1.weight": np.zeros((8, 3, 3, 3), np.float32)}, str(ckpt), metadata={"format": "pt"})
    assert_refused(run("--target", "onnx", "--weights", ckpt, "--out", tmp_path / "m.onnx"), "not a SimpleGVR checkpoint")
    assert not (tmp_path / "m.onnx").exists()


def test_checkpoint_disagreeing_with_config(tmp_path):
    import models

    ckpt = tmp_path / "tiny.safetensors"
    models.save_model(models.build_model("tiny", depth=2), ckpt)
    assert_refused(run("--target", "onnx", "--weights", ckpt, "--config", "tiny", "--out", tmp_path / "m.onnx"), "different architecture", "depth")
    assert_refused(run("--target", "onnx", "--weights", ckpt, "--scale", "4", "--out", tmp_path / "m.onnx"), "scale")


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert_refused(run("--target", "onnx", "--out", blocker / "m.onnx"), "cannot write")
    assert_refused(run("--target", "openvino", "--out", blocker / "ir"), "cannot write")


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"precious")
    assert_refused(run("--target", "onnx", "--out", out), "already exists", "--force")
    assert out.read_bytes() == b"precious" and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "args, words",
    [
        (("--target", "tflite"), ("unknown target",)),
        (("--target", "onnx", "--ov-source", "torch"), ("does not take", "--ov-source")),
        (("--target", "onnx", "--opset", "17"), ("opset 17",)),
        (("--target", "onnx", "--precision", "int4"), ("precision",)),
        (("--target", "onnx", "--attention", "sparse"), ("attention",)),
        (("--target", "onnx", "--static"), ("--shape",)),
        (("--target", "onnx", "--scale", "3"), ("scale",)),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, args, words):
    assert_refused(run(*args, "--out", tmp_path / "m.onnx"), *words)
    assert list(tmp_path.iterdir()) == []


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    import export.targets as targets
    from export.errors import ExportError

    def boom(*a, **k):
        (a[1]).write_bytes(b"half")  # the target had started writing its staging file
        raise ExportError("simulated converter failure")

    monkeypatch.setitem(targets.TARGETS, "onnx", targets.Target("onnx", ".onnx", False, frozenset({"opset", "attention"}), boom))
    assert_refused(run("--target", "onnx", "--out", tmp_path / "m.onnx"), "simulated")
    assert list(tmp_path.iterdir()) == []


def test_command_module_imports_without_torch():
    import subprocess
    import sys

    code = "import sys, gvrcli.export_command; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
