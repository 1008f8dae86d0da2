"""Attention inside interleaving temporal units, four ways.

SimpleGVR (section 4.3) restricts 3D attention to *temporal units* of a few latent frames and
shifts the unit boundaries by half a unit in every other block, Swin-style in time, so information
crosses them (paper Fig. 8: units [5,5,5,5], then 2|5|5|5|3). Inside a unit it uses *sparse local
attention*: the tokens of each latent frame are grouped into fixed 2D units (paper: 12x9 tokens);
each query unit attends to its own unit plus the top-k (paper: k=1) most relevant other units of the
temporal unit, earlier or later frames alike, MoBA-style. Relevance is the dot product of the
unit's mean query with each other unit's mean key (means over real, non-padding tokens), routed
per head as in MoBA.

Modes (all share the temporal units and their shift):
- ``sparse``: routing (topk) -> gather of the chosen units' keys/values -> one batched
  ``scaled_dot_product_attention`` over all query units; the exporter turns it into one fused op.
- ``masked``: the same routing applied as an explicit block mask to dense attention over the whole
  temporal unit. The reference that proves ``sparse`` computes exactly the attention it claims.
- ``swin``: dense attention in 3D windows (unit x window), also shifted by half a window in space in
  shifted blocks: the paper's weaker baseline.
- ``full``: dense attention over the whole temporal unit.

Any T, H, W works: the token grid is zero-padded up to whole units (in front by the shift, behind
to the next multiple) and cropped back. Padding tokens are never attended to (a small key-padding
mask, ``(groups, 1, 1, keys)`` in size, never ``tokens x tokens``) and never chosen by routing, so
results do not depend on how much padding there is. A temporal unit longer than the clip is one
zero-padded unit; a shifted block then splits the clip at half a unit like any other.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MODES = ("sparse", "masked", "swin", "full")

# Added to the logits of padding keys. Finite so a query whose keys are all padding (it is itself
# padding and gets cropped) yields a number, not NaN, and small enough in magnitude for fp16.
MASKED_LOGIT = -30000.0
# Routing scores are fp32; these keep a unit from choosing itself or an all-padding unit.
_NOT_SELF = -1e30
_NOT_EMPTY = -2e30


# --------------------------------------------------------------------------------------------------
# Partition of the token grid into temporal units and 2D units
# --------------------------------------------------------------------------------------------------


def pad(x: torch.Tensor, pads: tuple[int, ...], mode: str = "constant") -> torch.Tensor:
    """``F.pad``, except that a bf16 tensor is padded in fp32 between two Casts: ONNX ``Pad`` has no
    bf16 kernel in ONNX Runtime's CUDA (nor CPU) provider, so a bf16 graph with a bf16 Pad does not
    load on a GPU without CPU fallback (issue 25). bf16 -> fp32 -> bf16 is exact, so the result is
    bit-identical; fp32 and fp16 tensors keep the plain Pad (their graphs are unchanged)."""
    if x.dtype == torch.bfloat16:
        return F.pad(x.float(), pads, mode=mode).to(x.dtype)
    return F.pad(x, pads, mode=mode)


def window_partition(x: torch.Tensor, unit: tuple[int, int, int], front: tuple[int, int, int], mode: str):
    """Pad ``x`` (B, T, H, W, C) to whole units and group its tokens for ``mode``.

    ``unit`` = (frames, rows, cols) of one window; ``front`` = padding before the first token in
    each axis (the shift). Returns ``(groups, grid)`` with groups shaped (G, N, L, C): G independent
    attention problems, N units in each, L tokens per unit. ``grid`` is what ``window_merge`` needs.
    """
    B, T, H, W, C = x.shape
    (u, wh, ww), (ft, fh, fw) = unit, front
    et, eh, ew = (-(T + ft)) % u, (-(H + fh)) % wh, (-(W + fw)) % ww
    x = pad(x, (0, 0, fw, ew, fh, eh, ft, et))
    nt, nh, nw = (T + ft + et) // u, (H + fh + eh) // wh, (W + fw + ew) // ww
    x = x.view(B, nt, u, nh, wh, nw, ww, C)
    if mode in ("sparse", "masked"):  # units = 2D windows of every frame of a temporal unit
        groups = x.permute(0, 1, 2, 3, 5, 4, 6, 7).reshape(B * nt, u * nh * nw, wh * ww, C)
    elif mode == "swin":  # one 3D window per group
        groups = x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(B * nt * nh * nw, 1, u * wh * ww, C)
    else:  # full: the whole temporal unit is one group
        groups = x.reshape(B * nt, 1, u * nh * wh * nw * ww, C)
    return groups, (B, T, H, W, nt, nh, nw, unit, front)


def window_merge(groups: torch.Tensor, grid, mode: str) -> torch.Tensor:
    """Inverse of ``window_partition``: (G, N, L, C) -> (B, T, H, W, C), padding cropped."""
    B, T, H, W, nt, nh, nw, (u, wh, ww), (ft, fh, fw) = grid
    C = groups.shape[-1]
    if mode in ("sparse", "masked"):
        x = groups.reshape(B, nt, u, nh, nw, wh, ww, C).permute(0, 1, 2, 3, 5, 4, 6, 7)
    elif mode == "swin":
        x = groups.reshape(B, nt, nh, nw, u, wh, ww, C).permute(0, 1, 4, 2, 5, 3, 6, 7)
    else:
        x = groups
    x = x.reshape(B, nt * u, nh * wh, nw * ww, C)
    return x[:, ft : ft + T, fh : fh + H, fw : fw + W]


# --------------------------------------------------------------------------------------------------
# Routing and the three attention kernels
# --------------------------------------------------------------------------------------------------


def route_topk(q: torch.Tensor, k: torch.Tensor, valid: torch.Tensor, topk: int) -> torch.Tensor:
    """Pick, per head, the ``topk`` most relevant *other* units for each query unit.

    q, k: (G, N, H, L, d); valid: (G, N, L) in {0, 1}. Returns unit indices (G, N, H, topk).
    Relevance = mean query . mean key over the units' real tokens, in fp32.
    """
    G, N = valid.shape[:2]
    w = valid.float()
    count = w.sum(-1)  # (G, N)
    denom = count.clamp(min=1.0)[:, :, None, None]
    q_mean = torch.einsum("gnhld,gnl->gnhd", q.float(), w) / denom  # (G, N, H, d)
    k_mean = torch.einsum("gnhld,gnl->gnhd", k.float(), w) / denom
    scores = torch.einsum("gnhd,gmhd->ghnm", q_mean, k_mean)  # (G, H, N, N)
    ids = torch.arange(N, device=q.device)
    scores = scores.masked_fill(ids[:, None] == ids[None, :], _NOT_SELF)
    scores = scores.masked_fill((count == 0)[:, None, None, :], _NOT_EMPTY)
    # A clip with fewer than topk + 1 units routes to itself or to padding; both get masked later.
    idx = scores.topk(min(topk, N), dim=-1).indices  # (G, H, N, k)
    return idx.permute(0, 2, 1, 3)  # (G, N, H, k)


def padding_bias(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 for real keys, MASKED_LOGIT for padding: the additive attention mask."""
    return (1.0 - valid.to(dtype)) * MASKED_LOGIT


def sparse_unit_attention(q, k, v, valid, topk: int) -> torch.Tensor:
    """Each query unit attends to its own unit and its routed units: gather, then one batched SDPA.

    q, k, v: (G, N, H, L, d); valid: (G, N, L). Returns (G, N, H, L, d).
    """
    G, N, H, L, d = q.shape
    idx = route_topk(q, k, valid, topk)  # (G, N, H, k)
    n_sel = idx.shape[-1]
    # Flat row of (group, unit, head) in a (G*N*H, L, d) view, so one Gather (index_select) fetches
    # every chosen unit's keys and values.
    g = torch.arange(G, device=q.device)[:, None, None, None]
    h = torch.arange(H, device=q.device)[None, None, :, None]
    unit_row = g * N + idx  # (G, N, H, k) rows of the (G*N, ...) unit axis
    flat = (unit_row * H + h).reshape(-1)
    k_sel = k.reshape(G * N * H, L, d).index_select(0, flat).view(G, N, H, n_sel * L, d)
    v_sel = v.reshape(G * N * H, L, d).index_select(0, flat).view(G, N, H, n_sel * L, d)
    keys = torch.cat([k, k_sel], dim=3).reshape(G * N, H, (1 + n_sel) * L, d)  # (G*N, H, Lk, d)
    values = torch.cat([v, v_sel], dim=3).reshape(G * N, H, (1 + n_sel) * L, d)

    # Key mask: own unit's padding, chosen units' padding, and a unit that routed to itself.
    own = valid[:, :, None, :].expand(G, N, H, L)  # (G, N, H, L)
    not_self = (idx != torch.arange(N, device=q.device)[None, :, None, None]).to(valid.dtype)
    sel = valid.reshape(G * N, L).index_select(0, unit_row.reshape(-1)).view(G, N, H, n_sel, L)
    sel = (sel * not_self[..., None]).reshape(G, N, H, n_sel * L)
    bias = padding_bias(torch.cat([own, sel], dim=3), q.dtype).reshape(G * N, H, 1, (1 + n_sel) * L)

    out = F.scaled_dot_product_attention(q.reshape(G * N, H, L, d), keys, values, attn_mask=bias)
    return out.view(G, N, H, L, d)


def masked_unit_attention(q, k, v, valid, topk: int) -> torch.Tensor:
    """Reference for ``sparse_unit_attention``: same routing, dense attention + explicit block mask."""
    G, N, H, L, d = q.shape
    idx = route_topk(q, k, valid, topk)  # (G, N, H, k)
    allowed = torch.eye(N, dtype=torch.bool, device=q.device).expand(G, H, N, N).clone()
    allowed.scatter_(-1, idx.permute(0, 2, 1, 3), True)  # (G, H, Nq, Nk) unit-level
    allowed = allowed.repeat_interleave(L, dim=2).repeat_interleave(L, dim=3)  # (G, H, N*L, N*L)
    key_ok = valid.reshape(G, 1, 1, N * L).bool()
    bias = padding_bias(allowed & key_ok, q.dtype)
    dense = lambda x: x.permute(0, 2, 1, 3, 4).reshape(G, H, N * L, d)  # noqa: E731
    out = F.scaled_dot_product_attention(dense(q), dense(k), dense(v), attn_mask=bias)
    return out.view(G, H, N, L, d).permute(0, 2, 1, 3, 4)


def dense_group_attention(q, k, v, valid) -> torch.Tensor:
    """Dense attention inside each group (swin windows, or whole temporal units for ``full``)."""
    G, N, H, L, d = q.shape  # N == 1
    bias = padding_bias(valid, q.dtype).reshape(G, 1, 1, N * L)
    flat = lambda x: x.reshape(G, H, N * L, d)  # noqa: E731  (N == 1: no reorder needed)
    return F.scaled_dot_product_attention(flat(q), flat(k), flat(v), attn_mask=bias).view(G, N, H, L, d)


# --------------------------------------------------------------------------------------------------
# Positional encoding and the attention layer
# --------------------------------------------------------------------------------------------------


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Head channels given to (time, rows, cols) rotary frequencies; each part even."""
    hw = 2 * ((head_dim - 2 * (head_dim // 8)) // 4)
    return head_dim - 2 * hw, hw, hw


def rope_3d(T: int, H: int, W: int, head_dim: int, theta: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables (T, H, W, head_dim/2) for 3D rotary embedding. Relative by construction, so
    the network does not depend on absolute clip size (chunks and tiles see the same attention)."""
    parts = []
    for n, dim in zip((T, H, W), rope_split(head_dim)):
        freqs = theta ** (-torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
        parts.append(torch.arange(n, device=device, dtype=torch.float32)[:, None] * freqs)  # (n, dim/2)
    ft, fh, fw = parts
    angles = torch.cat(
        [
            ft[:, None, None, :].expand(T, H, W, -1),
            fh[None, :, None, :].expand(T, H, W, -1),
            fw[None, None, :, :].expand(T, H, W, -1),
        ],
        dim=-1,
    )  # (T, H, W, head_dim/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, T, H, W, heads, d); rotate the (first half, second half) channel pairs."""
    x1, x2 = x.float().chunk(2, dim=-1)
    cos, sin = cos[None, :, :, :, None, :], sin[None, :, :, :, None, :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).to(x.dtype)


class LayerNorm32(nn.LayerNorm):
    """LayerNorm whose statistics are computed in fp32 and cast back (whisper-style dtype-safe
    layer): a half-precision network keeps its norms exact, and the exported graph says so
    explicitly (Cast -> LayerNormalization -> Cast) instead of relying on a runtime's stash type."""

    def forward(self, x):
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


class RMSNorm(nn.Module):
    """RMSNorm computed in fp32 and cast back, so fp16 inference needs no special cases."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # F.rms_norm, not the formula: the ONNX exporter's rewriter fuses the formula into an
        # RMSNormalization node that takes the half-precision x (its Cast dropped) with an fp32
        # scale, a type mismatch ONNX Runtime and OpenVINO reject; aten.rms_norm exports as one
        # node whose inputs are both the fp32 casts.
        return F.rms_norm(x.float(), (x.shape[-1],), self.weight.float(), self.eps).to(x.dtype)


class UnitAttention(nn.Module):
    """Multi-head self-attention in temporal units, with QK-norm and 3D RoPE."""

    def __init__(self, dim: int, heads: int, mode: str, window: tuple[int, int], temporal_unit: int, topk: int):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown attention {mode!r} (choose from {', '.join(MODES)})")
        self.heads, self.head_dim = heads, dim // heads
        self.mode, self.window, self.temporal_unit, self.topk = mode, tuple(window), temporal_unit, topk
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm, self.k_norm = RMSNorm(self.head_dim), RMSNorm(self.head_dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], shifted: bool) -> torch.Tensor:
        B, T, H, W, D = x.shape
        heads, d = self.heads, self.head_dim
        q, k, v = self.qkv(x).view(B, T, H, W, 3, heads, d).unbind(4)  # each (B, T, H, W, heads, d)
        q, k = apply_rope(self.q_norm(q), *rope), apply_rope(self.k_norm(k), *rope)

        u, (wh, ww) = self.temporal_unit, self.window
        if self.mode == "full":
            wh, ww = H, W  # one window covers the frame: the unit is the whole temporal unit
        # Shifted blocks start the first unit half a unit late (in space too for swin).
        ft = (u - u // 2) % u if shifted else 0
        fh, fw = ((wh - wh // 2) % wh, (ww - ww // 2) % ww) if shifted and self.mode == "swin" else (0, 0)
        ones = x.new_ones(B, T, H, W, 1)  # real tokens; padding becomes 0
        packed = torch.cat([q.flatten(4), k.flatten(4), v.flatten(4), ones], dim=-1)  # (B, T, H, W, 3D+1)
        groups, grid = window_partition(packed, (u, wh, ww), (ft, fh, fw), self.mode)  # (G, N, L, 3D+1)
        G, N, L, _ = groups.shape
        q, k, v = (t.view(G, N, L, heads, d).transpose(2, 3) for t in groups[..., :-1].split(D, dim=-1))
        valid = groups[..., -1]  # (G, N, L)

        if self.mode == "sparse":
            out = sparse_unit_attention(q, k, v, valid, self.topk)
        elif self.mode == "masked":
            out = masked_unit_attention(q, k, v, valid, self.topk)
        else:
            out = dense_group_attention(q, k, v, valid)  # (G, N, heads, L, d)
        out = out.transpose(2, 3).reshape(G, N, L, D)
        return self.proj(window_merge(out, grid, self.mode))  # (B, T, H, W, D)


class CrossAttention(nn.Module):
    """Video tokens attend to the prompt's text tokens: QK-norm, no RoPE (text has no position in
    the frame). One attention problem per clip: (B, heads, T*H*W, d) queries against (B, heads, N, d)
    keys, through the same SDPA call (an all-zero key mask, (B, 1, 1, N)) that the exporter turns
    into one fused node."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.q_norm, self.k_norm = RMSNorm(self.head_dim), RMSNorm(self.head_dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:  # x (B, T, H, W, D), text (B, N, D)
        B, T, H, W, D = x.shape
        N, heads, d = text.shape[1], self.heads, self.head_dim
        q = self.q_norm(self.q(x).view(B, T * H * W, heads, d)).transpose(1, 2)  # (B, heads, THW, d)
        k, v = self.kv(text).view(B, N, 2, heads, d).unbind(2)  # each (B, N, heads, d)
        k, v = self.k_norm(k).transpose(1, 2), v.transpose(1, 2)  # (B, heads, N, d)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=q.new_zeros(B, 1, 1, N))
        return self.proj(out.transpose(1, 2).reshape(B, T, H, W, D))
