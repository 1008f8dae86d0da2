"""``gvr export --precision fp16|bf16``: graphs that compute in half precision (issue 11).

The transformer's MatMul/Gemm/Conv/Attention nodes take fp16 inputs; the condition path, the
norms' statistics and the graph's inputs and outputs stay fp32 (``SimpleGVR.FP32_MODULES``,
``export.targets.network_for``); attention is the ``aligned`` form ONNX Runtime CUDA's Flash
kernel takes; and the graph matches PyTorch fp32 within the fp16 tolerance on ONNX Runtime and
OpenVINO, and runs through ``gvr upscale --precision fp16``.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from export.attention import attention_calls
from export.graph_checks import onnx_half_precision_nodes
from export.spec import TOLERANCE, VERIFY_SHAPES
from export.verify import backends_for, compare, graph_files


def test_fp16_export_computes_its_transformer_in_half_precision(fp16_onnx):
    half, total = onnx_half_precision_nodes(fp16_onnx.main_file)
    assert total >= 8 and half / total >= 0.9, (half, total)
    m = fp16_onnx.manifest
    assert m.precision == "fp16" and m.extra["compute"] == "fp16" and m.extra["attention_form"] == "aligned"
    # The condition path stays fp32 (the model's FP32_MODULES): its convolutions take fp32.
    cond_half, cond_total = onnx_half_precision_nodes(graph_files("onnx", fp16_onnx.main_file)["condition"])
    assert cond_total >= 2 and cond_half == 0
    # fp32 at the graph boundary: the runtime's buffers and the Euler update stay fp32.
    proto = onnx.load(str(fp16_onnx.main_file))
    assert {v.type.tensor_type.elem_type for v in (*proto.graph.input, *proto.graph.output)} == {onnx.TensorProto.FLOAT}


def test_aligned_attention_gives_q_k_v_one_head_size_a_multiple_of_8(fp16_onnx, half_model):
    """What ONNX Runtime CUDA's Flash kernel requires (fp16/bf16, head_size == v_head_size, % 8, no mask)."""
    proto = onnx.shape_inference.infer_shapes(onnx.load(str(fp16_onnx.main_file)))
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in proto.graph.value_info}
    attention = [n for n in proto.graph.node if n.op_type == "Attention"]
    assert len(attention) == attention_calls(half_model.config)  # 3D, spatial and text cross-attention
    d = half_model.config.dim // half_model.config.heads
    for node in attention:
        assert len([i for i in node.input if i]) == 3, "no mask input"
        heads = {dims[i][-1] for i in node.input[:3]}
        assert heads == {-(-(d + 1) // 8) * 8}, heads  # d + the bias channel, rounded up to 8


def test_fp16_export_matches_pytorch_on_onnx_runtime_and_openvino(fp16_onnx, half_model):
    graphs = {role: backends_for("onnx", path, precision="fp16")[0] for role, path in graph_files("onnx", fp16_onnx.main_file).items()}
    report = compare(half_model, graphs, VERIFY_SHAPES[:1], "fp16")
    assert report.ok, report.lines()
    step = [c for c in report.checks if "step" in c.backend]
    assert {c.backend.split()[0] for c in step} == {"onnxruntime-cpu", "openvino-cpu"}
    # It really is half precision: further from fp32 than an fp32 graph (~2e-7), within fp16's bound.
    assert all(1e-5 < c.rel_l2 <= TOLERANCE["fp16"] for c in step), report.lines()


def test_gvr_upscale_runs_the_fp16_export_on_onnx_runtime_and_openvino(fp16_onnx, tmp_path):
    from tests.export.test_roundtrip import _gvr
    from tests.reliability.media_cases import write_video

    clip = write_video(tmp_path / "in" / "clip.mp4", frames=3, size=(40, 24))
    outputs = {}
    for backend in ("ort-cpu", "openvino"):  # ORT's CPU provider runs nodes without an fp16 kernel between Casts it adds
        # Lossless output: H.264 would turn the random network's noise-like picture into codec noise.
        run = _gvr("upscale", clip.parent, tmp_path / backend, "--model", fp16_onnx.main_file, "--precision", "fp16",
                   "--backend", backend, "--codec", "ffv1", "--json")
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout.strip().splitlines()[-1])
        assert summary["done"] == 1 and summary["precision"] == "fp16", summary
        outputs[backend] = tmp_path / backend / "clip.mkv"
    import av

    frames = {}
    for backend, path in outputs.items():
        with av.open(str(path)) as c:
            frames[backend] = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.float32)
    assert frames["ort-cpu"].shape == (3, 48, 80, 3) and frames["ort-cpu"].std() > 10  # a picture, not a flat field
    diff = np.abs(frames["ort-cpu"] - frames["openvino"])
    assert diff.mean() < 0.25 and diff.max() <= 6, (diff.mean(), diff.max())  # the same picture; fp16 roundings tip a few codes


def test_an_fp16_graph_refuses_to_run_as_fp32(fp16_onnx):
    from gvrcli.errors import UsageError
    from gvrcli.inference.ort_backend import OrtBackend

    with pytest.raises(UsageError, match="fp16 artefact"):
        OrtBackend(fp16_onnx.main_file, provider="cpu", precision="fp32").load()


@pytest.mark.slow
def test_bf16_export_verifies_on_openvino_and_says_why_onnx_runtime_cpu_cannot(small_model, exports):
    from export import export_model

    report = export_model("onnx", exports / "bf16.onnx", model=small_model, precision="bf16", dynamic=False, static_shape=VERIFY_SHAPES[0], verify=True)
    assert report.verify.ok, report.verify.lines()
    # The step graph is bf16: OpenVINO only; the condition and text graphs compute in fp32, so
    # ONNX Runtime's CPU provider verifies them too, and the skip names the ops it lacks (issue 25).
    assert {c.backend for c in report.verify.checks if c.backend.startswith("onnxruntime")} == {"onnxruntime-cpu condition", "onnxruntime-cpu text"}
    assert {c.backend for c in report.verify.checks if c.backend.endswith("step")} == {"openvino-cpu step"}
    assert "no bf16 kernels for" in report.verify.skipped["onnxruntime-cpu"] and "MatMul (bfloat16)" in report.verify.skipped["onnxruntime-cpu"]
    half, total = onnx_half_precision_nodes(report.main_file)
    assert half / total >= 0.9
