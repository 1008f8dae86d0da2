"""Backends and model checks: ONNX Runtime and OpenVINO agree; bad models are refused with exit 2."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from tests.fake_model import build_fake_onnx, fake_manifest

from gvrcli.inference.backends import make_backend
from gvrcli.inference.openvino_backend import OpenVinoBackend
from gvrcli.inference.ort_backend import OrtBackend
from gvrcli.inference.loaded import run_graph
from gvrcli.errors import EXIT_RETRY, EXIT_USAGE, ModelError, RetryableError, UsageError
from gvrcli.inference.modelfile import read_manifest
from models.manifest import MANIFEST_KEY, graph_sha256
from tests.tolerances import fake_model_atol


def inputs(seed=0, T=3, h=6, w=8, s=2):
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    lr = {"lr": f(1, 3, T, h, w), "lr_noise": f(1, 3, T, h, w), "noise_aug": np.array([0.1], np.float32)}
    step = {"z_t": f(1, 3, T, h * s, w * s), "t": np.array([0.7], np.float32), "t_next": np.array([0.45], np.float32)}
    return lr, step


def upscale_step(model, seed=0, **shape):
    """The condition graph, then one step on it: (cond, z_next)."""
    lr, step = inputs(seed, **shape)
    hr = step["z_t"].shape
    cond = run_graph(model, "condition", {**lr, "hr_grid": np.zeros((1, 1, 1, *hr[-2:]), np.float32)}, {"cond": hr})["cond"]
    return cond, run_graph(model, "step", {**step, "cond": cond, "noise_aug": lr["noise_aug"]}, {"z_next": hr})["z_next"]


@pytest.fixture(scope="module")
def openvino_ir(tmp_path_factory, fake_model):
    """The fake model as OpenVINO IR: both graphs converted, the manifest naming the IR companion."""
    import openvino as ov

    folder = tmp_path_factory.mktemp("ir")
    condition = folder / "fake.condition.xml"
    ov.save_model(ov.convert_model(str(fake_model.with_name("fake-x2.condition.onnx"))), str(condition))
    model = ov.convert_model(str(fake_model))
    graphs = {"condition": {"file": condition.name, "sha256": graph_sha256(condition)}}
    model.set_rt_info(json.dumps(fake_manifest(graphs=graphs)), MANIFEST_KEY)
    xml = folder / "fake.xml"
    ov.save_model(model, str(xml))
    return xml


def test_onnx_runtime_cpu_runs_both_graphs(fake_model):
    model = OrtBackend(fake_model, provider="cpu").load()
    assert model.description == "onnxruntime CPUExecutionProvider" and model.precision == "fp32"
    assert model.manifest.scale == 2 and set(model.sessions) == {"condition", "step"}
    cond, z_next = upscale_step(model)
    assert cond.shape == z_next.shape == (1, 3, 3, 12, 16)


def test_openvino_agrees_with_onnx_runtime(fake_model, openvino_ir):
    """At fp32 on any CPU: OpenVINO gets INFERENCE_PRECISION_HINT f32 explicitly (its CPU plugin
    would otherwise compute in bf16 on AMX / AVX-512 BF16 machines)."""
    ort_out = upscale_step(OrtBackend(fake_model, provider="cpu").load())
    for path in (openvino_ir, fake_model):  # IR, and ONNX read by OpenVINO
        ov_model = OpenVinoBackend(path, device="CPU").load()
        assert ov_model.precision == "fp32"
        assert all(str(c.get_property("INFERENCE_PRECISION_HINT")) in ("f32", "<Type: 'float32'>") for c in ov_model.compiled.values())
        assert ov_model.manifest.scale == read_manifest(fake_model).scale
        for got, want in zip(upscale_step(ov_model), ort_out):
            np.testing.assert_allclose(got, want, rtol=0, atol=fake_model_atol(steps=1, blends=0))
        # Dynamic shapes: another size through the same compiled model.
        assert upscale_step(ov_model, T=2, h=5, w=7)[1].shape == (1, 3, 2, 10, 14)


def test_openvino_loads_its_compiled_graphs_from_the_cache_with_the_same_results(fake_model, tmp_path, monkeypatch):
    """The load-time compiles are cached (one blob per graph) and a cached load computes the same;
    GVR_OV_CACHE=off keeps none; a cache folder that cannot be made, or damaged blobs, cost only
    the cache."""
    cache = tmp_path / "ov"
    monkeypatch.setenv("GVR_OV_CACHE", str(cache))
    first = upscale_step(OpenVinoBackend(fake_model, device="CPU").load())
    blobs = sorted(cache.glob("*.blob"))
    assert len(blobs) == 2  # the condition and step graphs, not per-shape copies
    for got, want in zip(upscale_step(OpenVinoBackend(fake_model, device="CPU").load()), first):
        np.testing.assert_array_equal(got, want)
    for blob in blobs:  # damaged: recompiled, same numbers
        blob.chmod(0o644)
        blob.write_bytes(b"\0garbage" * 100)
    for got, want in zip(upscale_step(OpenVinoBackend(fake_model, device="CPU").load()), first):
        np.testing.assert_array_equal(got, want)

    monkeypatch.setenv("GVR_OV_CACHE", "off")
    assert OpenVinoBackend(fake_model, device="CPU").cache is None
    (tmp_path / "file").write_text("not a folder")
    model = OpenVinoBackend(fake_model, device="CPU", cache=tmp_path / "file" / "ov").load()
    np.testing.assert_array_equal(upscale_step(model)[1], first[1])


def test_precision_is_explicit_and_refused_where_unsupported(fake_model, monkeypatch):
    from gvrcli.inference import openvino_backend

    assert make_backend(fake_model, "ort-cpu").load().precision == "fp32"
    with pytest.raises(UsageError, match="CPU provider has no bf16 kernels.*--backend openvino --precision bf16"):
        OrtBackend(fake_model, provider="cpu", precision="bf16").load()
    for precision in ("int8", "fp16"):
        with pytest.raises(UsageError, match=f"export one with gvr export --precision {precision}"):
            OrtBackend(fake_model, provider="cpu", precision=precision).load()
    with pytest.raises(UsageError, match="must be one of"):
        make_backend(fake_model, precision="fp8")
    monkeypatch.setattr(openvino_backend, "_capabilities", lambda core, device: ["FP32", "INT8"])
    with pytest.raises(UsageError, match="does not compute in bf16"):
        OpenVinoBackend(fake_model, device="CPU", precision="bf16").load()


def test_bf16_runs_where_the_cpu_has_it(fake_model):
    import openvino as ov

    if "BF16" not in [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]:
        pytest.skip("this CPU has no bf16")
    model = OpenVinoBackend(fake_model, device="CPU", precision="bf16").load()
    assert model.precision == "bf16"
    ref = upscale_step(OrtBackend(fake_model, provider="cpu").load())[1]
    got = upscale_step(model)[1]
    assert np.abs(got - ref).max() < 0.1  # bf16 has ~3 significant digits


def test_auto_picks_the_backend_without_probing(fake_model, openvino_ir, monkeypatch):
    from gvrcli.inference import backends

    monkeypatch.setattr(backends, "gpu_present", lambda: False)
    chosen = make_backend(fake_model)  # no workload known: the shipped speed table's faster CPU backend
    assert isinstance(chosen, OpenVinoBackend if backends._table_choice()[0] == "openvino" else OrtBackend) and "no GPU" in chosen.reason
    for name, kind in (("ort-cpu", OrtBackend), ("openvino", OpenVinoBackend)):  # a workload's choice (gvrcli.inference.speed)
        chosen = make_backend(fake_model, cpu_choice=lambda: (name, "predicted fastest"))
        assert isinstance(chosen, kind) and chosen.reason == "predicted fastest"
    assert isinstance(make_backend(openvino_ir), OpenVinoBackend)
    assert isinstance(make_backend(fake_model, "ort-cpu"), OrtBackend)
    monkeypatch.setattr(backends, "gpu_present", lambda: True)
    chosen = make_backend(fake_model)
    assert isinstance(chosen, OrtBackend) and chosen.provider == "cuda" and "GPU" in chosen.reason
    assert isinstance(make_backend(fake_model, device="CPU", cpu_choice=lambda: ("openvino", "")), OpenVinoBackend)
    with pytest.raises(UsageError):
        make_backend(openvino_ir, "ort-cpu")


def test_companion_graphs_are_checked(tmp_path):
    model = build_fake_onnx(tmp_path / "m" / "g.onnx")
    companion = tmp_path / "m" / "g.condition.onnx"
    data = companion.read_bytes()
    companion.write_bytes(data + b"\0")
    with pytest.raises(ModelError, match="does not match the manifest's SHA-256"):
        OrtBackend(model, provider="cpu").load()
    companion.unlink()
    with pytest.raises(ModelError, match="condition graph file .* is missing"):
        OrtBackend(model, provider="cpu").load()
    (tmp_path / "elsewhere.onnx").write_bytes(data)
    import hashlib

    graphs = {"condition": {"file": "elsewhere.onnx", "sha256": hashlib.sha256(data).hexdigest()}}
    companion.symlink_to(tmp_path / "elsewhere.onnx")
    escaping = build_fake_onnx(tmp_path / "m" / "h.onnx", manifest=fake_manifest(graphs={"condition": {**graphs["condition"], "file": "g.condition.onnx"}}))
    with pytest.raises(ModelError, match="outside the model's folder"):
        OrtBackend(escaping, provider="cpu").load()


def test_old_format_models_are_refused_with_a_re_export_message(tmp_path):
    old = build_fake_onnx(tmp_path / "old.onnx", manifest=fake_manifest(format_version=1))
    with pytest.raises(ModelError, match="re-export"):
        read_manifest(old)


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
    scales = next(t for t in model.graph.initializer if t.name == "t_shape")
    scales.data_location = onnx.TensorProto.EXTERNAL
    scales.ClearField("int64_data")
    entry = scales.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    (tmp_path / "sub").mkdir()
    onnx.save(model, str(tmp_path / "sub" / "evil.onnx"))
    with pytest.raises(ModelError, match="outside the model's folder"):
        read_manifest(tmp_path / "sub" / "evil.onnx")


def test_openvino_ir_upscales_a_video_like_onnx_runtime(tmp_path, fake_model, openvino_ir):
    from tests.clips import read_video, write_video

    from gvrcli.batch.options import UpscaleOptions
    from gvrcli.batch.upscale import upscale

    src = write_video(tmp_path / "in" / "a.mkv", frames=4, codec="ffv1", pix_fmt="yuv444p")
    lossless = dict(codec="ffv1", pix_fmt="bgr0")
    ov_report = upscale([src], UpscaleOptions(output_dir=tmp_path / "ov", model=openvino_ir, **lossless))
    ort_report = upscale([src], UpscaleOptions(output_dir=tmp_path / "ort", model=fake_model, backend="ort-cpu", **lossless))
    assert ov_report.backend.startswith("openvino") and ort_report.backend.startswith("onnxruntime")
    a, b = read_video(tmp_path / "ov" / "a.mkv")["rgb"], read_video(tmp_path / "ort" / "a.mkv")["rgb"]
    assert np.abs(np.stack(a) - np.stack(b)).max() <= 1 / 255 + 1e-6


def test_a_graph_that_disagrees_with_its_manifest_is_refused_before_any_video(tmp_path):
    from gvrcli.inference.loaded import check_model

    # The output size is an input (any ratio), so a graph can no longer lie about its scale; it can
    # about its channels: graphs of 3, manifest of 4.
    liar = build_fake_onnx(tmp_path / "liar.onnx", manifest=fake_manifest(latent_channels=4))
    for backend in (OrtBackend(liar, provider="cpu"), OpenVinoBackend(liar, device="CPU")):
        with pytest.raises(ModelError, match="do not match its manifest"):
            check_model(backend.load(), liar)


def test_garbage_named_xml_is_not_handed_to_openvino(tmp_path):
    (tmp_path / "m.xml").write_text("this is not IR\n")
    (tmp_path / "m.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ModelError, match="not OpenVINO IR"):
        read_manifest(tmp_path / "m.xml")
