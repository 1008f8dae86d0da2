"""What an exported graph is made of: the op counts the tests and the export report check.

The promise (issue 3): every attention call is ONE fused node; no MatMul -> Softmax -> MatMul chain;
no tokens x tokens mask; in OpenVINO, the compiled model keeps the attention fused.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from export.attention import FUSED_ONNX_OP


def onnx_op_counts(path_or_proto) -> Counter:
    import onnx

    proto = onnx.load(str(path_or_proto), load_external_data=False) if isinstance(path_or_proto, (str, Path)) else path_or_proto
    counts = Counter(n.op_type for n in proto.graph.node)
    for fn in proto.functions:  # nodes inside local functions count too
        counts.update(n.op_type for n in fn.node)
    return counts


def onnx_fused_attention_nodes(path_or_proto) -> int:
    return onnx_op_counts(path_or_proto)[FUSED_ONNX_OP]


def onnx_softmax_chains(path_or_proto) -> int:
    """Number of MatMul -> (anything elementwise) -> Softmax -> MatMul chains: an unfused attention."""
    import onnx

    proto = onnx.load(str(path_or_proto), load_external_data=False) if isinstance(path_or_proto, (str, Path)) else path_or_proto
    producer = {o: n for n in proto.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in proto.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    chains = 0
    for n in proto.graph.node:
        if n.op_type != "Softmax":
            continue
        feeds_matmul = any(c.op_type == "MatMul" for c in consumers.get(n.output[0], []))
        src, hops = producer.get(n.input[0]), 0
        while src is not None and src.op_type in ("Add", "Mul", "Div", "Where", "Cast") and hops < 4:
            src, hops = producer.get(src.input[0]), hops + 1
        if feeds_matmul and src is not None and src.op_type == "MatMul":
            chains += 1
    return chains


def openvino_attention_kernels(compiled_model, model) -> dict[str, int]:
    """Fused attention kernels in an OpenVINO compiled model, by the plugin's layer type.

    ``model`` is the ``openvino.Model`` that was compiled: its ScaledDotProductAttention ops are the
    attention calls. The CPU plugin runs each either as its own ``ScaledDotProductAttention`` node
    or, for this shape of problem, inside one snippets ``Subgraph`` (a generated MHA kernel: scale,
    QK^T, softmax, V in one loop nest) whose original layers include that SDPA op. An SDPA the
    plugin decomposed into separate MatMul/Softmax layers counts as nothing.
    """
    sdpa = {op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "ScaledDotProductAttention"}
    found: Counter = Counter()
    for op in compiled_model.get_runtime_model().get_ops():
        info = op.get_rt_info()
        layer = info["layerType"].astype(str)
        names = set(info["originalLayersNames"].astype(str).split(",")) if "originalLayersNames" in info else set()
        if layer == "ScaledDotProductAttention":
            found[layer] += 1
        elif layer == "Subgraph" and names & sdpa:
            found["Subgraph(MHA)"] += len(names & sdpa)
    return dict(found)


def openvino_unfused_softmax(compiled_model) -> int:
    """Softmax layers left on their own in a compiled OpenVINO model (an attention the plugin did not fuse)."""
    return sum(op.get_rt_info()["layerType"].astype(str) == "Softmax" for op in compiled_model.get_runtime_model().get_ops())


# The compute nodes whose input precision says what a graph really computes in.
COMPUTE_OPS = ("MatMul", "Gemm", "Conv", FUSED_ONNX_OP)
_HALF_TYPES = (10, 16)  # onnx.TensorProto.FLOAT16, BFLOAT16


def onnx_half_precision_nodes(path_or_proto) -> tuple[int, int]:
    """(compute nodes whose first input is fp16/bf16, all compute nodes) of a graph: how much of
    it a half-precision export really computes in half (``COMPUTE_OPS``; types by ONNX shape
    inference where the exporter left a value untyped)."""
    import onnx

    proto = onnx.load(str(path_or_proto), load_external_data=False) if isinstance(path_or_proto, (str, Path)) else path_or_proto
    proto = onnx.shape_inference.infer_shapes(proto)
    g = proto.graph
    types = {v.name: v.type.tensor_type.elem_type for v in (*g.input, *g.output, *g.value_info)}
    types.update({i.name: i.data_type for i in g.initializer})
    nodes = [n for n in g.node if n.op_type in COMPUTE_OPS]
    return sum(types.get(n.input[0]) in _HALF_TYPES for n in nodes), len(nodes)
