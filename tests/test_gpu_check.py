"""``benchmarks/gpu_check.py``: the preparation here and the device command's fallback without a GPU.

``--prepare`` exports the graphs and splits the wheel into call folders under the per-call limit;
``--device`` joins the parts (checking the wheel's sha256), installs the wheel, refills the
stripped graphs, and exits 75 where no GPU answers, having measured nothing. Here the wheel is a
small stand-in (a real installable wheel, so pip's install step runs), split at 1 MiB so that the
join is exercised over several calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def stand_in_wheel(folder: Path) -> Path:
    """An installable wheel of ~2.5 MB (incompressible payload, stored): three 1 MiB parts."""
    path = folder / "gvr_probe-0.0.1-py3-none-any.whl"
    payload = os.urandom(2_500_000)
    files = {
        "gvr_probe/__init__.py": b"",
        "gvr_probe/payload.bin": payload,
        "gvr_probe-0.0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: gvr-probe\nVersion: 0.0.1\n",
        "gvr_probe-0.0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + "gvr_probe-0.0.1.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in {**files, "gvr_probe-0.0.1.dist-info/RECORD": record.encode()}.items():
            z.writestr(name, data)
    return path


def test_prepare_fits_each_call_and_the_device_command_exits_75_without_a_gpu(tmp_path):
    from gvrbase.devices import gpu_present

    if gpu_present():
        pytest.skip("a GPU is present: run the check itself")
    wheel = stand_in_wheel(tmp_path)
    out = tmp_path / "prep"
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", "--prepare", str(out), "--presets", "tiny:1", "--wheel", str(wheel), "--part-mib", "1"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    calls = sorted(p for p in out.iterdir() if p.name.startswith("call-"))
    sizes = [sum(f.stat().st_size for f in c.rglob("*") if f.is_file()) for c in calls]
    assert len(calls) >= 4 and max(sizes) <= 2**20, sizes  # graphs, then one part per call
    assert f"{len(calls)} calls" in done.stdout and (out / "calls.txt").read_text().count("carry") == len(calls)
    # The device side: every call's folder copied into one work folder, as the calls do there.
    work = tmp_path / "work"
    for c in calls:
        subprocess.run(["cp", "-r", f"{c}/.", str(work)], check=True) if work.exists() else subprocess.run(["cp", "-r", str(c), str(work)], check=True)
    plan = json.loads((work / "plan.json").read_text())
    assert plan["wheel"]["sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert set(plan["graphs"]) == {"tiny fp16", "tiny bf16"}
    device = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--device", str(work), "--out", str(tmp_path / "report")],
                            capture_output=True, text=True, cwd=REPO, timeout=300)
    assert device.returncode == 75, device.stdout + device.stderr[-2000:]
    assert "wheel installed" in device.stdout and "gpu_check: no GPU:" in device.stdout and "nothing was measured" in device.stdout
    assert (work / "site" / "gvr_probe" / "payload.bin").stat().st_size == 2_500_000
    assert "Traceback" not in device.stderr and not (tmp_path / "report").exists()


def test_the_device_command_refuses_a_wheel_with_a_missing_part(tmp_path):
    work = tmp_path / "work"
    (work / "wheel").mkdir(parents=True)
    (work / "wheel" / "w.whl.part00").write_bytes(b"x" * 10)
    (work / "plan.json").write_text(json.dumps({"wheel": {"name": "w.whl", "sha256": "0" * 64, "bytes": 20}, "stripped": {}, "graphs": {}, "base_depth": 1}))
    done = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--device", str(work)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode != 0 and "do not join" in done.stderr and "Traceback" not in done.stderr


def test_stripped_weights_are_refilled_with_the_recorded_shapes_and_dtypes(tmp_path):
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_check

    w = numpy_helper.from_array(np.ones((64, 32), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 32])], [w])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10), str(path))
    stripped = gpu_check.strip_weights(path)
    assert stripped == {"w": [[64, 32], TensorProto.FLOAT]} and path.stat().st_size < 1000
    filled = gpu_check.refill(path, stripped, tmp_path / "f.onnx")
    y = ort.InferenceSession(str(filled), providers=["CPUExecutionProvider"]).run(None, {"x": np.ones((2, 64), np.float32)})[0]
    assert y.shape == (2, 32) and np.isfinite(y).all() and y.std() > 0
