"""PyTorch vs ONNX Runtime vs OpenVINO on the same random weights and inputs, at two shapes."""

from __future__ import annotations

from export import compare, export_model
from export.backends import OpenVINOBackend, OrtBackend, cuda_usable
from export.spec import TOLERANCE, VERIFY_SHAPES


def _show(report):
    print("\n" + "\n".join(report.lines()))


def test_dynamic_onnx_matches_pytorch_on_ort_and_openvino(dynamic_onnx, small_model):
    backends = [OrtBackend(dynamic_onnx.path), OpenVINOBackend(dynamic_onnx.path)]
    if cuda_usable():
        backends.append(OrtBackend(dynamic_onnx.path, "CUDAExecutionProvider"))
    report = compare(small_model, backends, VERIFY_SHAPES, seed=5)
    _show(report)
    assert report.ok and len(report.checks) == len(backends) * 2
    assert all(c.rel_l2 <= TOLERANCE["fp32"] for c in report.checks)


def test_openvino_ir_matches_pytorch(openvino_ir, small_model):
    report = compare(small_model, [OpenVINOBackend(next(openvino_ir.path.glob("*.xml")))], VERIFY_SHAPES, seed=6)
    _show(report)
    assert report.ok


def test_static_unfused_matches_pytorch(static_unfused_onnx, small_model):
    report = compare(small_model, [OrtBackend(static_unfused_onnx.path), OpenVINOBackend(static_unfused_onnx.path)], [(6, 18, 26)])
    _show(report)
    assert report.ok


def test_verify_option_randomises_weights_and_reports(small_model, tmp_path):
    import models

    # The untrained default's head is zero: verify must not be fooled by it, so it randomises a copy.
    default = models.build_model("tiny", scale=2, depth=2, dim=32, heads=2, window=(3, 4), temporal_unit=3)
    report = export_model("openvino", tmp_path / "ir", model=default, verify=True, dynamic=False, static_shape=(4, 10, 14))
    _show(report.verify)
    assert report.verify.ok and report.verify.checks


def test_a_wrong_graph_fails_verification(small_model, dynamic_onnx):
    import copy

    from models.checkpoint import init_random_

    other = init_random_(copy.deepcopy(small_model), seed=99)
    report = compare(other, [OrtBackend(dynamic_onnx.path)], VERIFY_SHAPES[:1])
    assert not report.ok
