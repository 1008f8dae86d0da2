"""A SimpleGVR network computing in half precision: what stays fp32 is declared once on the model
(``FP32_MODULES``), the norms are dtype-safe, and ``step`` takes and returns fp32."""

from __future__ import annotations

import pytest
import torch

import models
from models.attention import LayerNorm32, RMSNorm
from models.checkpoint import init_random_

# The paper's full block: 3D, spatial and text cross-attention.
SMALL = dict(depth=2, dim=32, heads=2, window=(3, 4), temporal_unit=3, spatial_attention=True, text_dim=32, text_tokens=8)


@pytest.fixture(scope="module")
def pair():
    fp32 = init_random_(models.build_model("tiny", scale=2, **SMALL), seed=4)
    import copy

    return fp32, copy.deepcopy(fp32).to_compute_dtype(torch.float16)


def test_to_compute_dtype_keeps_the_declared_modules_fp32_and_bit_exact(pair):
    fp32, half = pair
    assert half.compute_dtype == torch.float16 and fp32.compute_dtype == torch.float32
    for name, child in half.named_children():
        kept = name in half.FP32_MODULES
        assert all(p.dtype == (torch.float32 if kept else torch.float16) for p in child.parameters()), name
    # Never rounded through half and back.
    for name in half.FP32_MODULES:
        for a, b in zip(getattr(fp32, name).parameters(), getattr(half, name).parameters()):
            assert torch.equal(a, b)


def test_a_half_step_takes_and_returns_fp32_within_the_fp16_tolerance(pair):
    fp32, half = pair
    g = torch.Generator().manual_seed(0)
    z, cond, base = (torch.randn(1, 3, 4, 48, 64, generator=g) for _ in range(3))
    t, t_next, aug = torch.tensor([0.8]), torch.tensor([0.6]), torch.tensor([0.4])
    with torch.no_grad():
        want = fp32.step(z, t, t_next, cond, aug, base) - z
        got = half.step(z, t, t_next, cond, aug, base)
    assert got.dtype == torch.float32
    rel = ((got - z - want).norm() / want.norm()).item()
    assert 1e-6 < rel < 2e-2, rel


@pytest.mark.parametrize("norm", [LayerNorm32(16, elementwise_affine=False, eps=1e-6), RMSNorm(16)])
def test_norms_compute_their_statistics_in_fp32_whatever_the_input_dtype(norm):
    # Values whose squares overflow fp16 (max 65504): fp32 statistics stay finite and exact.
    x = torch.linspace(-400, 400, 16).reshape(1, 16)
    out = norm(x.half())
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    assert torch.allclose(out.float(), norm(x), atol=2e-3)
