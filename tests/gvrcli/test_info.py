"""``gvr info``: what this machine can run, said per backend, without probing a GPU."""

from __future__ import annotations

from gvrcli.info import _backends, collect


def test_a_cpu_only_onnx_runtime_build_says_ort_cuda_is_unavailable_and_why():
    backends = _backends(["CPUExecutionProvider"], openvino=True)
    assert backends["ort-cpu"] == "available" and backends["openvino"] == "available"
    assert backends["ort-cuda"].startswith("unavailable") and "onnxruntime-gpu" in backends["ort-cuda"]


def test_a_gpu_build_says_cuda_is_installed_not_that_a_gpu_is_there():
    backends = _backends(["CUDAExecutionProvider", "CPUExecutionProvider"], openvino=False)
    assert backends["ort-cuda"].startswith("installed") and "not probed" in backends["ort-cuda"]
    assert backends["openvino"].startswith("unavailable")


def test_collect_names_the_platform_and_the_installed_onnx_runtime_distribution(fake_model):
    facts = collect(fake_model)
    assert facts["onnxruntime"]["package"] in ("onnxruntime", "onnxruntime-gpu")
    assert set(facts["backends"]) == {"ort-cpu", "ort-cuda", "openvino"}
    assert "Python" in facts["platform"]
