"""The runtime's own ONNX reader (no ``onnx`` import) sees what ``onnx.load`` sees, and no forged
file hides an external-data tensor from the model-folder check."""

from __future__ import annotations

import onnx
import pytest
from tests.fake_model import build_fake_onnx
from onnx import TensorProto, helper

from gvrcli.errors import ModelError
from gvrcli.inference.modelfile import ASSETS_DIR, read_manifest
from gvrcli.inference.onnx_wire import WireError, read_onnx_summary


def _tensors(graph):
    """Every TensorProto of a graph at any depth, per onnx's own API (the reference)."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                yield from _tensors(g)


@pytest.mark.parametrize("name", ["gvr-tiny-x2.onnx", "gvr-tiny-x2.condition.onnx"])
def test_the_summary_matches_onnx_load_on_the_shipped_graphs(name):
    path = ASSETS_DIR / name
    proto = onnx.load(str(path), load_external_data=False)
    summary = read_onnx_summary(path)
    assert summary.metadata == {p.key: p.value for p in proto.metadata_props}
    assert summary.inputs == [i.name for i in proto.graph.input]
    assert summary.outputs == [o.name for o in proto.graph.output]
    assert summary.nodes == len(proto.graph.node) > 0
    assert [t.name for t in summary.tensors] == [t.name for t in _tensors(proto.graph)]


def _external(name: str, location: str) -> TensorProto:
    tensor = helper.make_tensor(name, TensorProto.FLOAT, [1], [0.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return tensor


def test_external_data_hidden_in_a_subgraph_constant_is_refused(tmp_path):
    """A Constant inside an If branch, two graphs deep, reading ../../etc/passwd."""
    model = onnx.load(str(build_fake_onnx(tmp_path / "m.onnx")))
    inner = helper.make_graph([helper.make_node("Constant", [], ["c"], value=_external("evil", "../../etc/passwd"))], "inner", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])])
    outer = helper.make_graph([helper.make_node("If", ["cond_flag"], ["c"], then_branch=inner, else_branch=inner)], "outer", [], [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])])
    model.graph.node.append(helper.make_node("If", ["cond_flag"], ["unused"], then_branch=outer, else_branch=outer))
    (tmp_path / "sub").mkdir()
    onnx.save(model, str(tmp_path / "sub" / "evil.onnx"))
    assert any(t.external for t in read_onnx_summary(tmp_path / "sub" / "evil.onnx").tensors)
    with pytest.raises(ModelError, match="outside the model's folder"):
        read_manifest(tmp_path / "sub" / "evil.onnx")


def test_a_second_copy_of_the_graph_field_is_walked_too(tmp_path):
    """Protobuf merges a repeated message field: ONNX Runtime would see this initializer."""
    path = build_fake_onnx(tmp_path / "m.onnx")
    extra = onnx.ModelProto()
    extra.graph.initializer.append(_external("evil", "/etc/passwd"))
    forged = tmp_path / "forged.onnx"
    forged.write_bytes(path.read_bytes() + extra.SerializeToString())
    assert [t.name for t in onnx.load(str(forged), load_external_data=False).graph.initializer][-1] == "evil"
    with pytest.raises(ModelError, match="outside the model's folder"):
        read_manifest(forged)


def test_malformed_bytes_are_a_wire_error_not_a_crash(tmp_path):
    good = build_fake_onnx(tmp_path / "m.onnx").read_bytes()
    cases = {
        "cut.onnx": good[:-7],  # a length past the end
        "varint.onnx": b"\x08" + b"\xff" * 11,  # a varint that never ends
        "group.onnx": b"\x0b",  # wire type 3 (groups): not in ONNX
        "deep.onnx": _nested_if(80),  # subgraphs past MAX_DEPTH
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(WireError):
            read_onnx_summary(tmp_path / name)
        with pytest.raises(ModelError, match=name):
            read_manifest(tmp_path / name)


def _nested_if(depth: int) -> bytes:
    """A ModelProto whose graph nests ``depth`` If subgraphs, serialised by hand (protobuf's own
    encoder refuses to nest this deep; a forger's bytes need not)."""

    def field(number: int, payload: bytes) -> bytes:
        tag, size = number << 3 | 2, len(payload)
        length = b""
        while True:
            length += bytes([size & 0x7F | (0x80 if size > 0x7F else 0)])
            size >>= 7
            if not size:
                break
        return bytes([tag]) + length + payload

    graph = field(1, b"")  # a graph with one empty node
    for _ in range(depth):  # graph { node { attribute { g: graph } } }
        graph = field(1, field(5, field(6, graph)))
    return field(7, graph)
