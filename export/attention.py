"""How each attention call of the network becomes ONE fused node in the exported graph.

The model calls ``F.scaled_dot_product_attention(q, k, v, attn_mask=bias)`` with q (groups, heads,
L, d), k/v (groups, heads, Lk, d) and a small additive key mask (groups, heads, 1, Lk): the 3D and
2D self-attentions (windows, routing) and the text cross-attention (one group per clip, the
prompt's tokens as keys, an all-zero mask) alike. During
export we route that call through an opaque custom op, ``gvr::attention``, so that:

- torch.export keeps it as one node whatever SDPA kernel eager would pick (tracing the CPU flash
  kernel's output strides and then decomposing to the math path breaks a later ``view``), and
- we decide its ONNX form here, in one place:

  * ``fused``: ONNX ``Attention`` (opset 23) with no mask input: the additive key mask rides in one
    extra q/k channel (q' = [q, 1], k' = [k, mask * sqrt(d)], explicit scale 1/sqrt(d)), which gives
    the same logits. Why not the mask input: ONNX Runtime's CPU kernel insists the mask has Lq rows,
    so the (.., 1, Lk) key mask would have to be expanded to (.., Lq, Lk) per unit and head; at
    960x540 that is 150 MB per attention call and made the fused node *slower* than MatMul-Softmax-
    MatMul (490 vs 536 vs 244 ms per output frame for mask / unfused / this form, ORT CPU, tiny).
    OpenVINO's ONNX frontend reads the node as ``ScaledDotProductAttention`` and its CPU plugin
    compiles it into one fused MHA kernel (a snippets ``Subgraph``).
  * ``unfused``: MatMul -> Softmax -> MatMul, the explicit opt-in fallback for a runtime without
    the fused op. Never chosen silently.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from onnxscript.onnx_opset import opset23 as op

ATTENTION_FORMS = ("fused", "unfused")
FUSED_ONNX_OP = "Attention"

_eager_sdpa = F.scaled_dot_product_attention


@torch.library.custom_op("gvr::attention", mutates_args=())
def gvr_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v; exactly the model's SDPA call."""
    return _eager_sdpa(q, k, v, attn_mask=mask)


@gvr_attention.register_fake
def _(q, k, v, mask):
    return q.new_empty((*q.shape[:-1], v.shape[-1]))  # contiguous, like the exported node's output


def _routed_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    if attn_mask is None or dropout_p or is_causal or scale is not None or enable_gqa:
        raise NotImplementedError("export expects SDPA(q, k, v, attn_mask=additive mask) only, as models.attention calls it")
    return gvr_attention(query, key, value, attn_mask.to(query.dtype))


@contextlib.contextmanager
def attention_as_custom_op():
    """While tracing, send every ``F.scaled_dot_product_attention`` call to ``gvr::attention``."""
    F.scaled_dot_product_attention = _routed_sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = _eager_sdpa


def onnx_fused_attention(query, key, value, mask):
    """Fused, without a mask input: the key bias rides in one extra q/k channel.

    q' = [q, 1], k' = [k, bias / s] with s = 1/sqrt(d) the original scale, so s * q'.k' = s * q.k + bias:
    the same logits, and the node runs maskless (no (L x Lk) mask materialised per unit).
    """
    d = query.shape[3]
    scale = 1.0 / float(d) ** 0.5
    ones = op.Expand(op.CastLike(op.Constant(value_float=1.0), query), op.Concat(op.Shape(query, start=0, end=3), op.Constant(value_ints=[1]), axis=0))
    q_ext = op.Concat(query, ones, axis=-1)
    bias = op.Div(op.Transpose(mask, perm=[0, 1, 3, 2]), op.CastLike(op.Constant(value_float=scale), query))  # (G, H|1, Lk, 1)
    if mask.shape[1] != query.shape[1]:  # swin/full share one mask across heads: Concat needs them all
        bias = op.Expand(bias, op.Concat(op.Shape(key, start=0, end=3), op.Constant(value_ints=[1]), axis=0))
    k_ext = op.Concat(key, bias, axis=-1)
    out, _, _, _ = op.Attention(q_ext, k_ext, value, scale=scale)
    return out


def onnx_unfused_attention(query, key, value, mask):
    scale = op.Div(op.CastLike(op.Constant(value_float=1.0), query), op.Sqrt(op.CastLike(op.Shape(query, start=3, end=4), query)))
    logits = op.Add(op.Mul(op.MatMul(query, op.Transpose(key, perm=[0, 1, 3, 2])), scale), mask)
    return op.MatMul(op.Softmax(logits, axis=-1), value)


def translation_table(form: str) -> dict:
    """``custom_translation_table`` for ``torch.onnx.export``."""
    impl = {"fused": onnx_fused_attention, "unfused": onnx_unfused_attention}[form]
    return {torch.ops.gvr.attention.default: impl}


def attention_calls(config) -> int:
    """Attention calls in one denoiser step: per DiT block, the 3D attention, plus the 2D spatial
    attention and the text cross-attention where the config has them."""
    return int(config.depth) * (1 + bool(config.spatial_attention) + bool(config.text_dim))


__all__ = ["ATTENTION_FORMS", "FUSED_ONNX_OP", "attention_as_custom_op", "translation_table", "attention_calls"]
