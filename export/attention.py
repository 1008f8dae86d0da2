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
  * ``aligned``: the same node with q, k and v all of one head size, a multiple of 8 (the bias
    channel plus zero channels, v zero-padded, the output sliced back): no mask input and equal
    head sizes are what ONNX Runtime CUDA's fast kernels require. Its Attention (opset 23/24)
    dispatch is Flash -> memory-efficient (CUTLASS) -> unfused; Flash needs fp16/bf16, sm80/sm90,
    head size % 8 == 0 and <= 256, head_size == v_head_size and no attn_mask; memory-efficient
    needs both head sizes % 8 == 0 (fp32 too). ``fused`` (q/k d+1, v d) gets neither: the unfused
    cuBLAS + softmax path. A key-padding form the kernels take instead does not exist for us:
    opset 24's ``nonpad_kv_seqlen`` is one count of trailing padding per batch row, while our
    padding keys sit inside the own and routed units and differ per head. The cost: (d+8)/d of
    the attention FLOPs (40/32 for tiny, 72/64 for base), so CPU exports keep ``fused``; half
    precision exports (GPU artefacts) default to ``aligned``.
  * ``unfused``: MatMul -> Softmax -> MatMul, the explicit opt-in fallback for a runtime without
    the fused op. Never chosen silently.

The bias channel is split so that it stays finite in fp16: q' carries sqrt(d), k' the bias itself
(-30000 at most; bias * sqrt(d) would overflow fp16's 65504 and turn padding logits into -inf).
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from onnxscript.onnx_opset import opset23 as op

ATTENTION_FORMS = ("fused", "aligned", "unfused")
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


def _bias_channel(query, key, mask):
    """(q', k') = ([q, sqrt(d)], [k, bias]): with scale 1/sqrt(d), scale * q'.k' = scale * q.k + bias,
    the same logits as SDPA with the additive key mask, and no (L x Lk) mask materialised."""
    d = query.shape[3]
    root = op.Add(_zero_channels_of(query, 1), op.CastLike(op.Constant(value_float=float(d) ** 0.5), query))
    q_ext = op.Concat(query, root, axis=-1)
    bias = op.CastLike(op.Transpose(mask, perm=[0, 1, 3, 2]), query)  # (G, H|1, Lk, 1)
    if mask.shape[1] != query.shape[1]:  # swin/full share one mask across heads: Concat needs them all
        bias = op.Expand(bias, op.Concat(op.Shape(key, start=0, end=3), op.Constant(value_ints=[1]), axis=0))
    return q_ext, op.Concat(key, bias, axis=-1)


def _zero_channels_of(x, n: int):
    """n zero channels shaped like x's first n: 0 * x[..., :n]. Computed from x, not Expand of a
    constant, which a static export would constant-fold into a weight the size of q; Slice and Mul
    run in every dtype on every provider (Pad has no bf16 kernel everywhere). x is finite (normed,
    rotated q/k; v), so 0 * x is 0."""
    if n > x.shape[3]:
        raise NotImplementedError(f"head size {x.shape[3]} < {n} padding channels")
    first = op.Slice(x, op.Constant(value_ints=[0]), op.Constant(value_ints=[n]), op.Constant(value_ints=[3]))
    return op.Mul(first, op.CastLike(op.Constant(value_float=0.0), x))


def _zero_channels(x, n: int, like=None):
    """x with n zero channels appended on the last axis (made from ``like``, x's source tensor, whose
    head size the exporter knows)."""
    return op.Concat(x, _zero_channels_of(x if like is None else like, n), axis=-1)


def aligned_head_size(d: int) -> int:
    """Head size of the ``aligned`` form: d + the bias channel, rounded up to a multiple of 8."""
    return -(-(d + 1) // 8) * 8


def onnx_fused_attention(query, key, value, mask):
    """Fused, without a mask input: the key bias rides in one extra q/k channel (``_bias_channel``)."""
    q_ext, k_ext = _bias_channel(query, key, mask)
    out, _, _, _ = op.Attention(q_ext, k_ext, value, scale=1.0 / float(query.shape[3]) ** 0.5)
    return out


def onnx_aligned_attention(query, key, value, mask):
    """Fused with q, k, v of one head size (a multiple of 8): the bias channel, zero channels after
    it, v zero-padded to match and the output sliced back to d. Zero channels add nothing to q.k,
    and v's zero channels only make output channels that are dropped."""
    d = query.shape[3]
    pad = aligned_head_size(d)
    q_ext, k_ext = _bias_channel(query, key, mask)
    if pad > d + 1:
        q_ext, k_ext = _zero_channels(q_ext, pad - d - 1, query), _zero_channels(k_ext, pad - d - 1, key)
    out, _, _, _ = op.Attention(q_ext, k_ext, _zero_channels(value, pad - d), scale=1.0 / float(d) ** 0.5)
    return op.Slice(out, op.Constant(value_ints=[0]), op.Constant(value_ints=[d]), op.Constant(value_ints=[3]))


def onnx_unfused_attention(query, key, value, mask):
    scale = op.Div(op.CastLike(op.Constant(value_float=1.0), query), op.Sqrt(op.CastLike(op.Shape(query, start=3, end=4), query)))
    logits = op.Add(op.Mul(op.MatMul(query, op.Transpose(key, perm=[0, 1, 3, 2])), scale), mask)
    return op.MatMul(op.Softmax(logits, axis=-1), value)


def translation_table(form: str) -> dict:
    """``custom_translation_table`` for ``torch.onnx.export``."""
    impl = {"fused": onnx_fused_attention, "aligned": onnx_aligned_attention, "unfused": onnx_unfused_attention}[form]
    return {torch.ops.gvr.attention.default: impl}


def default_form(precision: str) -> str:
    """``aligned`` for half-precision exports (GPU artefacts: Flash needs it), else ``fused``."""
    return "aligned" if precision in ("fp16", "bf16") else "fused"


def attention_calls(config) -> int:
    """Attention calls in one denoiser step: per DiT block, the 3D attention, plus the 2D spatial
    attention and the text cross-attention where the config has them."""
    return int(config.depth) * (1 + bool(config.spatial_attention) + bool(config.text_dim))


__all__ = ["ATTENTION_FORMS", "FUSED_ONNX_OP", "aligned_head_size", "attention_as_custom_op", "attention_calls", "default_form", "translation_table"]
