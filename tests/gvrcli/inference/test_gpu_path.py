"""The GPU path, as far as a machine without a GPU can check it (issue 11).

Device-resident sampling runs here on ``OrtValue``s on the CPU (the same IOBinding code as on
CUDA, only the device name differs); a requested GPU that is missing is exit 75; a GPU session's
refusal names the nodes that would fall back to the CPU (ORT's placement log, parsed); TensorRT
gets shape profiles that cover the runtime's chunks and tiles, and the engine keeps to them.
"""

from __future__ import annotations


import numpy as np
import pytest
from tests.clips import pattern
from tests.fake_model import bilinear_up

from gvrcli.errors import ModelError, RetryableError
from gvrcli.inference import gpu, ort_backend, placement
from gvrcli.inference.ort_backend import OrtBackend, trt_profiles
from gvrcli.inference.engine import Upscaler
from gvrcli.inference.settings import EngineSettings
from tests.tolerances import fake_model_atol


def video(frames=5, h=12, w=16):
    return np.stack([pattern(i, h, w) for i in range(frames)]).astype(np.float32)


def test_device_resident_sampling_equals_the_host_sampler(fake_model):
    """Latents as OrtValues on the model's device, bound once per clip; t/t_next device scalars."""
    host = OrtBackend(fake_model, provider="cpu").load()
    device = OrtBackend(fake_model, provider="cpu", device_buffers="cpu").load()
    assert host.latent_device is None and device.latent_device == "cpu"
    lr = video()
    settings = EngineSettings.from_manifest(host.manifest, steps=3)
    want = Upscaler(host, settings).upscale_chunk(lr, 0)
    up = Upscaler(device, settings)
    got = up.upscale_chunk(lr, 0)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, bilinear_up(lr, 2), atol=fake_model_atol(steps=3))  # and it is the known answer
    assert len(up.step_seconds) == 3
    held = up._device
    up.upscale_chunk(video(frames=5, h=12, w=16)[::-1].copy(), 7)
    assert up._device is held, "a clip of the same shape reuses the device latents"


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_a_requested_gpu_provider_without_a_gpu_is_retryable(fake_model, monkeypatch, provider):
    monkeypatch.setattr(ort_backend, "gpu_present", lambda: False)
    with pytest.raises(RetryableError, match=f"ort-{provider}.*GPU"):
        OrtBackend(fake_model, provider=provider).load()


def test_auto_without_a_gpu_runs_on_the_cpu_with_host_buffers(fake_model, monkeypatch):
    monkeypatch.setattr(ort_backend, "gpu_present", lambda: False)
    model = OrtBackend(fake_model, provider="auto").load()
    assert model.description == "onnxruntime CPUExecutionProvider" and model.latent_device is None


PLACEMENT_LOG = """\
2026-11-26 [I:onnxruntime:, transformer_memcpy.cc:393 AddCopyNode] Add MemcpyFromHost after Pad_3
2026-11-26 [V:onnxruntime:, session_state.cc:1345 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CUDAExecutionProvider]. Number of nodes: 2
2026-11-26 [V:onnxruntime:, session_state.cc:1347 VerifyEachNodeIsAssignedToAnEp]   MatMul (node_matmul)
2026-11-26 [V:onnxruntime:, session_state.cc:1347 VerifyEachNodeIsAssignedToAnEp]   MemcpyFromHost (Memcpy)
2026-11-26 [V:onnxruntime:, session_state.cc:1345 VerifyEachNodeIsAssignedToAnEp]  Node(s) placed on [CPUExecutionProvider]. Number of nodes: 3
2026-11-26 [V:onnxruntime:, session_state.cc:1347 VerifyEachNodeIsAssignedToAnEp]   Shape (node_shape)
2026-11-26 [V:onnxruntime:, session_state.cc:1347 VerifyEachNodeIsAssignedToAnEp]   Pad (Pad_3)
2026-11-26 [V:onnxruntime:, session_state.cc:1347 VerifyEachNodeIsAssignedToAnEp]   Gelu ()
2026-11-26 [W:onnxruntime:, session_state.cc:1359 VerifyEachNodeIsAssignedToAnEp] Some nodes were not assigned to the preferred execution providers
"""


def test_placement_log_is_parsed_and_cpu_shape_math_told_from_a_fallback():
    placed = placement.parse_placement(PLACEMENT_LOG)
    assert placed["CUDAExecutionProvider"] == [("MatMul", "node_matmul"), ("MemcpyFromHost", "Memcpy")]
    types = {"node_shape": [7], "Pad_3": [1]}  # int64 shape vs a float tensor
    shape, compute = placement.classify(placed["CPUExecutionProvider"], types)
    assert shape == [("Shape", "node_shape")]
    assert compute == [("Pad", "Pad_3"), ("Gelu", "")], "a float node, and one the graph does not name, are fallbacks"
    line = placement.explain_fallback("m.onnx", "CUDAExecutionProvider", compute)
    assert "2 node(s)" in line and "Pad (Pad_3)" in line and "Gelu (unnamed)" in line and "\n" not in line


def test_placement_is_read_from_a_real_onnx_runtime_session_log(fake_model):
    """The capture works on ORT's real log: a CPU session places everything on the CPU provider."""
    import onnxruntime as ort

    backend = OrtBackend(fake_model, provider="cpu")
    with placement.native_stderr() as read:
        backend._session(ort, fake_model, [("CPUExecutionProvider", {})], strict=False, verbose=True)
        log = read()
    assert "CPUExecutionProvider" in placement.parse_placement(log)


def test_a_gpu_session_refused_for_fallback_names_the_nodes_or_allows_shape_math(fake_model, monkeypatch):
    """The strict-then-diagnose flow of ``_gpu_session`` (the ORT calls stood in for: no GPU here)."""
    import onnxruntime as ort

    backend = OrtBackend(fake_model, provider="cuda")
    sessions = []

    def session(ort_, path, providers, strict, verbose=False):
        if strict:
            raise ort_backend.CpuFallback("fallback to CPU EP has been explicitly disabled")
        sessions.append(providers)
        return "session"

    monkeypatch.setattr(backend, "_session", session)
    monkeypatch.setattr(placement, "cpu_nodes", lambda make, path: (make(verbose=True), ([("Shape", "s")], []))[1])
    got, shape_nodes = backend._gpu_session(ort, fake_model, "cuda", None, "step", "fp32")
    assert got == "session" and shape_nodes == 1
    assert all(p == [("CUDAExecutionProvider", {"device_id": 0})] for p in sessions), "never the CPU provider explicitly"
    monkeypatch.setattr(placement, "cpu_nodes", lambda make, path: ([], [("Attention", "attn_0")]))
    with pytest.raises(ModelError, match=r"cannot run 1 node\(s\).*Attention \(attn_0\)"):
        backend._gpu_session(ort, fake_model, "cuda", None, "step", "fp32")


def test_tensorrt_profiles_span_the_load_check_to_a_full_chunk_of_the_largest_tile(fake_model):
    from gvrcli.inference.modelfile import read_manifest

    m = read_manifest(fake_model)
    step = trt_profiles(m, "step", frames=20, lr_max=(540, 960))
    small = (m.patch * m.window[0], m.patch * m.window[1])
    assert step["trt_profile_min_shapes"].startswith(f"z_t:1x3x1x{2 * small[0]}x{2 * small[1]},t:1,")
    assert "z_t:1x3x20x1080x1920" in step["trt_profile_max_shapes"] and "cond:1x3x20x1080x1920" in step["trt_profile_max_shapes"]
    cond = trt_profiles(m, "condition", frames=20, lr_max=(540, 960), lr_opt=(270, 480))
    assert cond["trt_profile_opt_shapes"] == "lr:1x3x20x270x480,lr_noise:1x3x20x270x480,noise_aug:1,hr_grid:1x1x1x540x960"


def test_the_engine_tiles_to_a_tensorrt_profile(fake_model):
    model = OrtBackend(fake_model, provider="cpu").load()
    model.lr_max = (8, 8)
    up = Upscaler(model, EngineSettings.from_manifest(model.manifest, steps=1, tile_overlap=2))
    assert up.tile_size(3, 12, 16) == (8, 8)
    lr = video(3, 12, 16)
    np.testing.assert_allclose(up.upscale_chunk(lr, 0), bilinear_up(lr, 2), atol=fake_model_atol(steps=1))


def test_tensorrt_cache_defaults_to_the_user_cache_and_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("GVR_TRT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert ort_backend.default_trt_cache() == tmp_path / "gvr" / "tensorrt"
    monkeypatch.setenv("GVR_TRT_CACHE", str(tmp_path / "trt"))
    assert ort_backend.default_trt_cache() == tmp_path / "trt"


@pytest.mark.parametrize("precision, fp16, bf16", [("fp32", False, False), ("fp16", True, False), ("bf16", False, True)])
def test_tensorrt_gets_the_half_precision_flag_of_the_artefact(fake_model, tmp_path, precision, fp16, bf16):
    """bf16 artefacts need ``trt_bf16_enable`` (issue 25): TensorRT builds bf16 layers only when asked."""
    from gvrcli.inference.modelfile import read_manifest

    backend = OrtBackend(fake_model, provider="tensorrt", trt_cache=tmp_path / "trt")
    (trt, options), cuda = backend._provider_list("tensorrt", read_manifest(fake_model), "step", precision)
    assert trt == "TensorrtExecutionProvider" and cuda[0] == "CUDAExecutionProvider"
    assert (options["trt_fp16_enable"], options["trt_bf16_enable"]) == (fp16, bf16)


def test_cuda_libraries_are_preloaded_quietly_and_only_where_ort_can(capsys):
    """``onnxruntime.preload_dlls`` prints what it cannot load; gvr keeps stdout clean (``--json``)
    and returns it for the exit-75 message. An ORT without it is left alone."""

    class Ort:
        def preload_dlls(self, **kw):
            assert kw == {"cuda": True, "cudnn": True, "msvc": True}
            print("Failed to load libcublasLt.so.13: cannot open shared object file")

    said = gpu.preload_cuda_libraries(Ort())
    assert said.startswith("Failed to load libcublasLt.so.13") and capsys.readouterr().out == ""
    assert gpu.preload_cuda_libraries(object()) == ""


def test_cuda_provider_that_did_not_load_says_what_preload_could_not_find(fake_model, monkeypatch):
    import onnxruntime as ort

    monkeypatch.setattr(ort_backend, "gpu_present", lambda: True)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort_backend, "preload_cuda_libraries", lambda _: "Failed to load libcublasLt.so.13: missing")
    backend = OrtBackend(fake_model, provider="cuda")
    monkeypatch.setattr(OrtBackend, "_gpu_session", lambda self, ort_, path, *a: (ort_.InferenceSession(str(path), providers=["CPUExecutionProvider"]), 0))
    with pytest.raises(RetryableError, match="did not load.*libcublasLt.so.13.*gvr\\[cuda\\]"):
        backend.load()
