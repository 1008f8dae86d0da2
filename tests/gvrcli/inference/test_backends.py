"""Backends and model checks: ONNX Runtime and OpenVINO agree; bad models are refused with exit 2."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import build_fake_onnx, fake_manifest

from gvrcli.inference.backends import OpenVinoBackend, OrtBackend, make_backend
from gvrcli.errors import EXIT_RETRY, EXIT_USAGE, ModelError, RetryableError, UsageError
from gvrcli.inference.modelfile import read_manifest
from models.manifest import MANIFEST_KEY


def inputs(seed=0, T=3, h=6, w=8, s=2):
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    return f(1, 3, T, h * s, w * s), np.array([0.7], np.float32), f(1, 3, T, h, w), f(1, 3, T, h, w), np.array([0.1], np.float32)


@pytest.fixture(scope="module")
def openvino_ir(tmp_path_factory, fake_model):
    import openvino as ov

    model = ov.convert_model(str(fake_model))
    model.set_rt_info(json.dumps(fake_manifest()), MANIFEST_KEY)
    xml = tmp_path_factory.mktemp("ir") / "fake.xml"
    ov.save_model(model, str(xml))
    return xml


def test_onnx_runtime_cpu_runs_the_model(fake_model):
    den = OrtBackend(fake_model, provider="cpu").load()
    assert den.description == "onnxruntime CPUExecutionProvider"
    assert den.manifest.scale == 2
    assert den(*inputs()).shape == (1, 3, 3, 12, 16)


def test_openvino_agrees_with_onnx_runtime(fake_model, openvino_ir):
    ort_out = OrtBackend(fake_model, provider="cpu").load()(*inputs())
    ov_den = OpenVinoBackend(openvino_ir, device="CPU").load()
    assert ov_den.manifest == read_manifest(fake_model)
    np.testing.assert_allclose(ov_den(*inputs()), ort_out, rtol=1e-5, atol=1e-5)
    # Dynamic shapes: another size through the same compiled model.
    assert ov_den(*inputs(T=2, h=5, w=7)).shape == (1, 3, 2, 10, 14)


def test_auto_picks_the_backend_by_file_type(fake_model, openvino_ir):
    assert isinstance(make_backend(fake_model), OrtBackend)
    assert isinstance(make_backend(openvino_ir), OpenVinoBackend)
    assert make_backend(fake_model, device="CPU").provider == "cpu"
    with pytest.raises(UsageError):
        make_backend(openvino_ir, "ort-cpu")


def test_a_missing_gpu_is_a_retryable_fault(fake_model):
    with pytest.raises(RetryableError) as e:
        OpenVinoBackend(fake_model, device="GPU.7").load()
    assert e.value.exit_code == EXIT_RETRY


def test_truncated_or_foreign_files_are_refused(tmp_path, fake_model):
    data = fake_model.read_bytes()
    cases = {
        "truncated.onnx": data[: len(data) // 2],
        "text.onnx": b"hello world\n" * 10,
        "empty.onnx": b"",
        "model.pt": data,
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ModelError, match=name) as e:
            read_manifest(tmp_path / name)
        assert e.value.exit_code == EXIT_USAGE and "\n" not in str(e.value)
    with pytest.raises(ModelError, match="no such file"):
        read_manifest(tmp_path / "absent.onnx")


def test_manifest_missing_or_inconsistent_is_refused(tmp_path):
    with pytest.raises(ModelError, match="no gvr manifest"):
        read_manifest(build_fake_onnx(tmp_path / "bare.onnx", with_manifest=False))
    with pytest.raises(ModelError, match="scale"):
        read_manifest(build_fake_onnx(tmp_path / "s3.onnx", manifest=fake_manifest(scale=3)))
    bad = fake_manifest()
    bad["config"] = {"scale": 4}
    with pytest.raises(ModelError, match="disagrees"):
        read_manifest(build_fake_onnx(tmp_path / "mismatch.onnx", manifest=bad))


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    model = onnx.load(str(build_fake_onnx(tmp_path / "m.onnx")))
    scales = next(t for t in model.graph.initializer if t.name == "scales")
    scales.data_location = onnx.TensorProto.EXTERNAL
    scales.ClearField("float_data")
    entry = scales.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    (tmp_path / "sub").mkdir()
    onnx.save(model, str(tmp_path / "sub" / "evil.onnx"))
    with pytest.raises(ModelError, match="outside the model's folder"):
        read_manifest(tmp_path / "sub" / "evil.onnx")


def test_openvino_ir_upscales_a_video_like_onnx_runtime(tmp_path, fake_model, openvino_ir):
    from conftest import read_video, write_video

    from gvrcli.batch import UpscaleOptions, upscale

    src = write_video(tmp_path / "in" / "a.mkv", frames=4, codec="ffv1", pix_fmt="yuv444p")
    lossless = dict(codec="ffv1", pix_fmt="bgr0")
    ov_report = upscale([src], UpscaleOptions(output_dir=tmp_path / "ov", model=openvino_ir, **lossless))
    ort_report = upscale([src], UpscaleOptions(output_dir=tmp_path / "ort", model=fake_model, **lossless))
    assert ov_report.backend.startswith("openvino") and ort_report.backend.startswith("onnxruntime")
    a, b = read_video(tmp_path / "ov" / "a.mkv")["rgb"], read_video(tmp_path / "ort" / "a.mkv")["rgb"]
    assert np.abs(np.stack(a) - np.stack(b)).max() <= 1 / 255 + 1e-6


def test_a_graph_that_disagrees_with_its_manifest_is_refused_before_any_video(tmp_path):
    from gvrcli.inference.backends import check_denoiser

    liar = build_fake_onnx(tmp_path / "liar.onnx", scale=4, manifest=fake_manifest(scale=2))  # graph x4, manifest x2
    with pytest.raises(ModelError, match="does not match its manifest|expected"):
        check_denoiser(OrtBackend(liar, provider="cpu").load(), liar)


def test_garbage_named_xml_is_not_handed_to_openvino(tmp_path):
    (tmp_path / "m.xml").write_text("this is not IR\n")
    (tmp_path / "m.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ModelError, match="not OpenVINO IR"):
        read_manifest(tmp_path / "m.xml")
