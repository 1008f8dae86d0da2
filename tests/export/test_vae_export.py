"""VAE export: four static chunk graphs per target with the causal caches as explicit inputs and
outputs, each with its manifest; chained on ONNX Runtime / OpenVINO they equal the PyTorch codec."""

import hashlib

import numpy as np
import onnx
import pytest
import torch

import models
from export import ExportError
from export.backends import OpenVINOBackend, OrtBackend
from export.vae import GRAPHS, export_vae, run_chain, run_graph, verify_vae_export
from models.manifest import MANIFEST_KEY, ManifestError
from models.vae import VaeCodec
from models.vae_manifest import CACHE_OUT_SUFFIX, VaeManifest
from tests.tolerances import SMALL_VAE_DECODE_ATOL, SMALL_VAE_DECODER_LAYERS, SMALL_VAE_ENCODE_ATOL, SMALL_VAE_K, fp32_reassociation_rel_l2

SMALL = dict(base_dim=16, num_res_blocks=1)
ENC, DEC = (16, 24), (24, 40)  # pixels, any multiples of 8 (the graphs are traced at 32x48 and 4x6 cells)


@pytest.fixture(scope="module")
def vae():
    return models.build_vae("wan2.1", **SMALL)


@pytest.fixture(scope="module")
def onnx_export(vae, tmp_path_factory, vae_trace_memo):
    return export_vae(vae, "onnx", tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def openvino_export(vae, tmp_path_factory, vae_trace_memo):
    return export_vae(vae, "openvino", tmp_path_factory.mktemp("bundle_ov"))


def onnx_manifest(path) -> VaeManifest:
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return VaeManifest.from_json(props.get(MANIFEST_KEY), str(path))


def test_writes_four_vae_graphs_with_their_hashes(onnx_export, vae):
    names = sorted(p.name for p in onnx_export.out_dir.iterdir())
    assert names == ["vae_decoder.onnx", "vae_decoder_first.onnx", "vae_encoder.onnx", "vae_encoder_first.onnx"]
    for path, sha in onnx_export.files.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    roles = onnx_export.companions()
    assert set(roles) == {"vae_encoder", "vae_encoder_first", "vae_decoder", "vae_decoder_first"}
    assert roles["vae_decoder"]["file"] == "vae_decoder.onnx"
    assert roles["vae_decoder"]["sha256"] == hashlib.sha256((onnx_export.out_dir / "vae_decoder.onnx").read_bytes()).hexdigest()
    assert onnx_export.weights_sha256 == models.vae.vae_sha256(vae)


def test_each_graph_declares_what_the_runtime_needs(onnx_export, vae):
    for g in onnx_export.graphs:
        m = onnx_manifest(g.path)
        proto = onnx.load(str(g.path), load_external_data=False)
        inputs = [i.name for i in proto.graph.input]
        outputs = [o.name for o in proto.graph.output]
        assert (m.role, m.chunk, m.codec) == (g.role, g.chunk, "wan2.1")
        assert (m.latent_channels, m.spatial_factor, m.temporal_factor) == (16, 8, 4)
        assert list(m.latents_std) == list(vae.config.latents_std) and m.weights_sha256 == onnx_export.weights_sha256
        assert inputs == [m.input, *m.cache_inputs] and outputs == [m.output, *m.cache_outputs]
        shapes = {v.name: [d.dim_value or -1 for d in v.type.tensor_type.shape.dim] for v in [*proto.graph.input, *proto.graph.output]}
        assert shapes[m.input] == list(m.input_shape) and shapes[m.output] == list(m.output_shape)
        for c in m.caches:  # free height and width, fixed channels and frames, the same in and out
            assert shapes[c["name"] + CACHE_OUT_SUFFIX] == [1, c["channels"], c["frames"], -1, -1]
    enc = onnx_manifest(onnx_export.out_dir / "vae_encoder.onnx")
    assert enc.input_shape == (1, 3, 4, -1, -1) and enc.output_shape == (1, 16, 1, -1, -1)
    dec_first = onnx_manifest(onnx_export.out_dir / "vae_decoder_first.onnx")
    assert dec_first.input_shape == (1, 16, 1, -1, -1) and dec_first.output_shape == (1, 3, 1, -1, -1)


def test_a_vae_graph_is_not_a_denoiser(onnx_export):
    from models.manifest import ModelManifest

    with pytest.raises(ManifestError, match="vae_decoder.onnx: gvr manifest lacks"):
        ModelManifest.from_json(onnx_export.graphs[-1].manifest.to_json(), "vae_decoder.onnx")


def chained(export, role, data, backend_cls, **kw):
    first, step = (next(g for g in export.graphs if g.role == role and g.chunk == c) for c in ("first", "step"))
    names = [c["name"] for c in first.manifest.caches]
    fb, sb = backend_cls(first.path, **kw), backend_cls(step.path, **kw)
    out = run_chain({"first": lambda f: run_graph(fb, f), "step": lambda f: run_graph(sb, f), "cache_names": names}, data, first.manifest.input)
    return np.concatenate(out[: len(data)], axis=2)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_chained_graphs_equal_the_pytorch_codec(runtime, onnx_export, openvino_export, vae):
    """9 frames: encoder first chunk (1 frame) + 2 steps (4 frames); decoder 3 latent frames."""
    export, backend = (onnx_export, OrtBackend) if runtime == "onnxruntime" else (openvino_export, OpenVINOBackend)
    codec = VaeCodec(vae)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (1, 3, 9, *ENC)).astype(np.float32)
    lat = chained(export, "vae_encoder", [x[:, :, :1], x[:, :, 1:5], x[:, :, 5:9]], backend)
    expected = codec.encode(torch.from_numpy(x)).numpy()
    assert lat.shape == expected.shape == (1, 16, 3, 2, 3)
    np.testing.assert_allclose(lat, expected, atol=SMALL_VAE_ENCODE_ATOL)  # the runtime's kernels vs PyTorch's
    z = rng.standard_normal((1, 16, 3, DEC[0] // 8, DEC[1] // 8)).astype(np.float32)
    pixels = chained(export, "vae_decoder", [z[:, :, i : i + 1] for i in range(3)], backend)
    expected = codec.decode(torch.from_numpy(z)).numpy()
    assert pixels.shape == expected.shape == (1, 3, 9, *DEC)
    np.testing.assert_allclose(pixels, expected, atol=SMALL_VAE_DECODE_ATOL)


def test_verify_checks_every_role_on_every_backend(vae, onnx_export):
    report = verify_vae_export("onnx", vae, chunks=2, folder=onnx_export.out_dir)
    assert report.ok, report.lines()
    assert {c.backend for c in report.checks} == {"onnxruntime-cpu vae_encoder", "openvino-cpu vae_encoder", "onnxruntime-cpu vae_decoder", "openvino-cpu vae_decoder"}
    # Relative L2 of reassociation through the decoder's 30 layers of k = 1728 (the deeper path).
    assert max(c.rel_l2 for c in report.checks) < fp32_reassociation_rel_l2(SMALL_VAE_K, SMALL_VAE_DECODER_LAYERS)


def test_refusals_come_before_any_work(vae, onnx_export, tmp_path):
    with pytest.raises(ExportError, match="unknown target"):
        export_vae(vae, "tflite", tmp_path)
    with pytest.raises(ExportError, match="vae_encoder_first.onnx already exists"):
        export_vae(vae, "onnx", onnx_export.out_dir)
    assert list(tmp_path.iterdir()) == []


def test_graph_table_covers_both_chunks_of_both_roles():
    assert {(g.role, g.chunk) for g in GRAPHS} == {(r, c) for r in ("vae_encoder", "vae_decoder") for c in ("first", "step")}
    assert all(g.stem.startswith("vae_") for g in GRAPHS)


def test_an_openvino_graph_hash_covers_its_weights(openvino_export):
    roles = openvino_export.companions()
    assert roles["vae_encoder"]["file"] == "vae_encoder.xml" and set(roles["vae_encoder"]["files"]) == {"vae_encoder.xml", "vae_encoder.bin"}
    d = openvino_export.out_dir
    assert roles["vae_encoder"]["sha256"] == hashlib.sha256((d / "vae_encoder.xml").read_bytes() + (d / "vae_encoder.bin").read_bytes()).hexdigest()


def test_a_failed_export_leaves_nothing(vae, tmp_path, monkeypatch):
    import export.vae as ev

    calls = []

    def flaky(module, graph, inputs, stage, manifest, precision, opset):
        calls.append(graph.stem)
        (stage / f"{graph.stem}.onnx").write_bytes(b"partial")
        if len(calls) == 2:
            raise ExportError("ONNX export of vae_encoder failed: boom")

    monkeypatch.setitem(ev.TARGETS, "onnx", ev.VaeTarget("onnx", (".onnx",), flaky))
    with pytest.raises(ExportError, match="boom"):
        export_vae(vae, "onnx", tmp_path / "bundle")
    assert calls == ["vae_encoder_first", "vae_encoder"]
    assert list((tmp_path / "bundle").iterdir()) == []
