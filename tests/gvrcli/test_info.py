"""``gvr info``: what this machine can run, said per backend, without probing a GPU."""

from __future__ import annotations

from gvrcli.info import _backends, collect


def test_a_cpu_only_onnx_runtime_build_says_ort_cuda_is_unavailable_and_why():
    backends = _backends(["CPUExecutionProvider"], openvino=True)
    assert backends["ort-cpu"] == "available" and backends["openvino"] == "available"
    assert backends["ort-cuda"].startswith("unavailable") and "onnxruntime-gpu" in backends["ort-cuda"]


def test_a_gpu_build_without_a_gpu_says_so_for_cuda_and_tensorrt(monkeypatch):
    from gvrbase import devices

    monkeypatch.setattr(devices, "gpu_present", lambda: False)
    backends = _backends(["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"], openvino=False)
    for name in ("ort-cuda", "ort-tensorrt"):
        assert backends[name].startswith("unavailable") and "no GPU" in backends[name] and "75" in backends[name]
    assert backends["openvino"].startswith("unavailable")


def test_a_gpu_build_with_a_gpu_lists_what_it_has(monkeypatch):
    from gvrbase import devices

    monkeypatch.setattr(devices, "gpu_present", lambda: True)
    backends = _backends(["CUDAExecutionProvider", "CPUExecutionProvider"], openvino=True)
    assert backends["ort-cuda"] == "available"
    assert backends["ort-tensorrt"].startswith("unavailable") and "TensorrtExecutionProvider" in backends["ort-tensorrt"]


def test_collect_names_the_platform_and_the_installed_onnx_runtime_distribution(fake_model):
    facts = collect(fake_model)
    assert facts["onnxruntime"]["package"] in ("onnxruntime", "onnxruntime-gpu")
    assert set(facts["backends"]) == {"ort-cpu", "ort-cuda", "ort-tensorrt", "openvino"}
    assert "Python" in facts["platform"]


def test_collect_says_where_the_compiled_model_caches_are_and_what_they_hold(fake_model, tmp_path, monkeypatch):
    (tmp_path / "ov").mkdir()
    (tmp_path / "ov" / "1.blob").write_bytes(b"\0" * 2**20)
    monkeypatch.setenv("GVR_OV_CACHE", str(tmp_path / "ov"))
    monkeypatch.setenv("GVR_TRT_CACHE", "off")
    caches = collect(fake_model)["caches"]
    assert caches["openvino"] == {"path": str(tmp_path / "ov"), "env": "GVR_OV_CACHE", "files": 1, "mib": 1.0}
    assert caches["tensorrt"]["path"] is None


def test_gpu_libraries_report_versions_and_nothing_where_absent(monkeypatch):
    """``gvr info``'s GPU libraries (issue 25): package metadata and the loaded library's version
    function, each absent where not found; a CPU machine gets an empty report, not an error."""
    import ctypes

    from gvrcli import info

    assert info._format_version(13000, "cuda") == "13.0" and info._format_version(92400, "cudnn") == "9.24.0"
    assert info._format_version(101400, "tensorrt") == "10.14.0"

    def no_library(name, *a, **kw):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    found = info.gpu_libraries()
    assert all("library" not in v for v in found.values())
    assert set(found) <= set(info._GPU_LIBRARIES)
