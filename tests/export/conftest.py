"""Shared exports for the export tests: one small random-weight network, exported once per session.

The network is ``tiny`` cut down (2 blocks: one plain, one with shifted temporal units) with small
windows (3x4 tokens) and 3-frame temporal units, so test clips span several units and windows and
a dense tokens x tokens matrix would be visibly larger than anything the sparse path makes. It has
text cross-attention (8 tokens of 32-wide prompt embeddings), so every export test covers it too;
the 2D spatial sub-layer, which would double the dynamic traces' time, has its own static export
(``test_verify.py``); the shipped default (``test_assets``) and ``gvr export --config``
(``test_roundtrip``) cover the plain block.
"""

from __future__ import annotations

import pytest

SMALL = dict(depth=2, dim=32, heads=2, window=(3, 4), temporal_unit=3, text_dim=32, text_tokens=8)


@pytest.fixture(scope="session")
def small_model():
    import models
    from models.checkpoint import init_random_

    return init_random_(models.build_model("tiny", scale=2, **SMALL), seed=1)


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="session")
def dynamic_onnx(small_model, exports):
    """Dynamic T, H, W, fused attention: the export everything ships (the slow one, ~1 min)."""
    from export import export_model

    return export_model("onnx", exports / "dynamic.onnx", model=small_model)


@pytest.fixture(scope="session")
def openvino_ir(small_model, exports):
    from export import export_model

    return export_model("openvino", exports / "ir", model=small_model)


@pytest.fixture(scope="session")
def static_unfused_onnx(small_model, exports):
    from export import export_model

    return export_model("onnx", exports / "static-unfused.onnx", model=small_model, dynamic=False, static_shape=(6, 18, 26), attention="unfused")


@pytest.fixture(scope="session")
def openvino_ir_from_onnx(small_model, exports):
    """``--ov-source onnx``: OpenVINO IR converted from our dynamic ONNX graph (a second ONNX trace)."""
    from export import export_model

    return export_model("openvino", exports / "ir-from-onnx", model=small_model, source="onnx")


@pytest.fixture(scope="session")
def half_model():
    """``small_model`` with one block: a dynamic trace costs time per block, and what half
    precision changes (dtypes, casts, the attention form) is the same in every block."""
    import models
    from models.checkpoint import init_random_

    return init_random_(models.build_model("tiny", scale=2, **{**SMALL, "depth": 1}), seed=1)


@pytest.fixture(scope="session")
def fp16_onnx(half_model, exports):
    """``gvr export --precision fp16``: a true half-precision graph (aligned attention by default),
    dynamic as the runtime requires."""
    from export import export_model

    return export_model("onnx", exports / "fp16.onnx", model=half_model, precision="fp16")


@pytest.fixture(scope="session")
def bf16_onnx(half_model, exports):
    """``gvr export --precision bf16``, dynamic: the GPU artefact whose every node must have a CUDA kernel."""
    from export import export_model

    return export_model("onnx", exports / "bf16.dynamic.onnx", model=half_model, precision="bf16")
