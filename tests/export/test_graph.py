"""The exported graph's shape: one fused attention node per attention call, routing as TopK +
Gather, no MatMul-Softmax-MatMul chain, no tokens x tokens tensor; OpenVINO keeps it fused."""

from __future__ import annotations

import numpy as np

from export.graph_checks import (
    onnx_fused_attention_nodes,
    onnx_op_counts,
    onnx_softmax_chains,
    openvino_attention_kernels,
    openvino_unfused_softmax,
)


def test_one_fused_attention_node_per_attention_call(dynamic_onnx, small_model):
    counts = onnx_op_counts(dynamic_onnx.path)
    print(dict(counts))
    depth = small_model.config.depth  # per block: 3D, text cross-attention
    assert counts["Attention"] == 2 * depth == dynamic_onnx.fused_attention_nodes == dynamic_onnx.attention_calls
    assert counts["TopK"] == depth  # routing, once per self-attention
    assert counts["Gather"] >= depth  # chosen units' keys/values
    assert counts["Softmax"] == 0
    assert onnx_softmax_chains(dynamic_onnx.path) == 0


def test_unfused_fallback_is_explicit_and_really_unfused(static_unfused_onnx, small_model):
    assert onnx_fused_attention_nodes(static_unfused_onnx.path) == 0
    assert onnx_softmax_chains(static_unfused_onnx.path) == static_unfused_onnx.attention_calls == 2 * small_model.config.depth
    assert static_unfused_onnx.manifest.extra["attention_form"] == "unfused"


def test_graph_inputs_are_dynamic_in_time_and_space(dynamic_onnx):
    import onnx

    step = onnx.load(str(dynamic_onnx.path))
    condition = onnx.load(str(dynamic_onnx.path.with_name("dynamic.condition.onnx")))
    text = onnx.load(str(dynamic_onnx.path.with_name("dynamic.text.onnx")))
    for proto, inputs, outputs in (
        (step, ["z_t", "t", "t_next", "cond", "noise_aug", "base", "text"], ["z_next"]),
        (condition, ["lr", "lr_noise", "noise_aug", "hr_grid"], ["cond", "base"]),
        (text, ["prompt"], ["text", "text_null"]),
    ):
        dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
        assert [i.name for i in proto.graph.input] == inputs
        assert [o.name for o in proto.graph.output] == outputs
        for name in set(inputs) - {"t", "t_next", "noise_aug", "text", "prompt"}:
            axes = dims[name][-2:] if name == "hr_grid" else dims[name][2:]  # hr_grid: (1, 1, 1, H, W)
            assert all(isinstance(d, str) for d in axes), dims
    assert isinstance(dims["prompt"][1], str)  # any prompt length; the step's text is padded to text_tokens
    assert [d.dim_value for d in step.graph.input[-1].type.tensor_type.shape.dim] == [1, 8, 32]


def test_the_condition_is_not_in_the_step_graph(dynamic_onnx):
    """The upsampler's convolutions run once per clip (condition graph), never per step."""
    step = onnx_op_counts(dynamic_onnx.path)
    condition = onnx_op_counts(dynamic_onnx.path.with_name("dynamic.condition.onnx"))
    assert condition["Conv"] == 4 and condition["Resize"] == 2  # pre, post of cond and of base
    assert step["Resize"] == 0 and step["Conv"] == 1  # the patch embedding only


def _all_intermediates(path, feed):
    """Run ONNX Runtime with every node output exposed; returns {name: array}."""
    import onnx
    import onnxruntime as ort

    proto = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    typed = {v.name: v for v in list(proto.graph.value_info)}
    known = {o.name for o in proto.graph.output}
    for node in proto.graph.node:
        for name in node.output:
            if name and name not in known and name in typed:
                proto.graph.output.append(typed[name])
                known.add(name)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feed))), proto


def test_no_tensor_is_tokens_by_tokens(dynamic_onnx, small_model):
    from export.spec import DenoiserSpec

    T, h, w = 6, 18, 26
    feed = DenoiserSpec.of(small_model.config).dummy_inputs("step", T, h, w)
    values, proto = _all_intermediates(dynamic_onnx.path, feed)
    cfg = small_model.config
    tokens_h, tokens_w = -(-2 * h // cfg.patch), -(-2 * w // cfg.patch)
    unit_tokens = cfg.temporal_unit * tokens_h * tokens_w  # one temporal unit, what dense attention would square
    big = {k: v.shape for k, v in values.items() if v.ndim >= 2 and min(v.shape[-2:]) >= unit_tokens}
    assert not big, f"tensors as large as tokens x tokens ({unit_tokens}): {big}"
    window, head_dim = cfg.window[0] * cfg.window[1], cfg.dim // cfg.heads
    cross = 0
    for node in (n for n in proto.graph.node if n.op_type == "Attention"):
        assert len([i for i in node.input if i]) == 3, "the fused node takes no mask: the key bias rides in q/k"
        q, k = values[node.input[0]], values[node.input[1]]
        if k.shape[-2] == cfg.text_tokens:  # cross-attention: every token of the clip against the prompt's
            cross += 1
            assert q.shape[-2:] == (T * tokens_h * tokens_w, head_dim + 1), q.shape
            continue
        assert q.shape[-2:] == (window, head_dim + 1) and k.shape[-2:] == ((1 + cfg.topk) * window, head_dim + 1), (q.shape, k.shape)
    assert cross == cfg.depth


def test_openvino_compiled_model_keeps_attention_fused(openvino_ir, dynamic_onnx, small_model):
    import openvino as ov

    core = ov.Core()
    for path in (openvino_ir.path / "ir.xml", dynamic_onnx.path):
        model = core.read_model(str(path))
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        kernels = openvino_attention_kernels(compiled, model)
        print(path.name, kernels)
        assert sum(kernels.values()) == openvino_ir.attention_calls == 2 * small_model.config.depth, kernels
        assert openvino_unfused_softmax(compiled) == 0
    assert openvino_ir.fused_attention_nodes == openvino_ir.attention_calls  # ScaledDotProductAttention ops in the IR


def test_window_of_mask_is_independent_of_clip_size(dynamic_onnx):
    # The graph carries no size-dependent constant as large as a frame: all weights are small.
    import onnx

    proto = onnx.load(str(dynamic_onnx.path))
    largest = max(int(np.prod(t.dims)) for t in proto.graph.initializer)
    assert largest < 200_000
