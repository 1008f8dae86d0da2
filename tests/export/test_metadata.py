"""The manifest travels inside every artefact and the runtime's reader accepts it."""

from __future__ import annotations

from gvrcli.inference.modelfile import read_manifest
from models.simplegvr import GVRConfig
from models.tensorfile import weights_sha256


def test_onnx_manifest_round_trips(dynamic_onnx, small_model):
    m = read_manifest(dynamic_onnx.path)
    cfg = small_model.config
    assert (m.scale, m.patch, tuple(m.window), m.temporal_unit, m.steps) == (cfg.scale, cfg.patch, cfg.window, cfg.temporal_unit, cfg.steps)
    assert GVRConfig.from_dict(m.config) == cfg and m.weights_sha256 == weights_sha256(small_model)
    assert m.dynamic and m.precision == "fp32" and m.codec == "pixel" and m.input_layout == "NCTHW"
    assert m.gvr_version and m.extra["attention_form"] == "fused" and m.extra["opset"] >= 23


def test_static_manifest_declares_its_shape(static_unfused_onnx):
    m = read_manifest(static_unfused_onnx.path)
    assert not m.dynamic and tuple(m.static_shape) == (6, 18, 26)


def test_openvino_manifest_round_trips(openvino_ir, small_model):
    m = read_manifest(openvino_ir.path / "ir.xml")
    assert m.weights_sha256 == weights_sha256(small_model) and m.extra["target"] == "openvino"


def test_runtime_reader_accepts_exports(dynamic_onnx, openvino_ir):
    assert read_manifest(dynamic_onnx.path).scale == 2
    assert read_manifest(openvino_ir.path / "ir.xml").scale == 2


def test_companion_graphs_are_named_and_hashed(dynamic_onnx, openvino_ir):
    from models.manifest import graph_sha256

    for main in (dynamic_onnx.path, openvino_ir.path / "ir.xml"):
        m = read_manifest(main)
        assert m.format_version == 3 and set(m.graphs) == {"condition", "text"}
        assert (m.text_dim, m.text_tokens, m.shift) == (32, 8, 1.0)
        for role in m.graphs:
            companion = main.with_name(m.graphs[role]["file"])
            assert companion.name == main.stem + f".{role}" + main.suffix
            assert graph_sha256(companion) == m.graphs[role]["sha256"]
    assert {dynamic_onnx.path.with_name(f"dynamic.{role}.onnx") for role in ("condition", "text")} <= set(dynamic_onnx.files)



def test_runtime_runs_the_openvino_ir(openvino_ir):
    """The default OpenVINO route (PyTorch frontend) names its outputs like the ONNX graphs, so
    ``gvr upscale`` can run it (the runtime's load-time test step passes)."""
    from gvrcli.inference.backends import make_backend
    from gvrcli.inference.loaded import check_model

    xml = openvino_ir.path / "ir.xml"
    check_model(make_backend(xml, threads=1).load(read_manifest(xml)), xml)
