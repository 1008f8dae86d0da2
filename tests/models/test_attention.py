"""Sparse local attention computes exactly the attention it claims; temporal units interleave."""

import pytest
import torch

from models.attention import UnitAttention, route_topk, window_merge, window_partition
from models.checkpoint import init_random_
from models.simplegvr import build_model
from tests.tolerances import SIGMAS, fp32_reassociation_atol


def _layer(mode, window=(3, 4), unit=5, seed=0):
    torch.manual_seed(seed)
    layer = UnitAttention(dim=32, heads=2, mode=mode, window=window, temporal_unit=unit, topk=1)
    return layer.eval()


def _rope(T, H, W, head_dim=16):
    from models.attention import rope_3d

    return rope_3d(T, H, W, head_dim, 10000.0)


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("thw", [(5, 6, 8), (7, 7, 10), (3, 5, 9), (1, 2, 3)])
def test_sparse_equals_block_masked_full_attention(shifted, thw):
    # Sizes include ones that are not multiples of the (3, 4) window or the 5-frame unit.
    T, H, W = thw
    sparse = _layer("sparse")
    masked = _layer("masked")
    masked.load_state_dict(sparse.state_dict())
    x = torch.randn(2, T, H, W, 32)
    with torch.no_grad():
        a = sparse(x, _rope(T, H, W), shifted)
        b = masked(x, _rope(T, H, W), shifted)
    diff = (a - b).abs().max().item()
    print(f"T,H,W={thw} shifted={shifted}: max |sparse - masked| = {diff:.2e}")
    assert a.shape == x.shape
    # The masked layer sums over all T*H*W <= 490 tokens (zeros where masked), the sparse one over its
    # windows: five reductions (qkv, q.k, softmax, attn.v, proj) of length <= 490 on values up to SIGMAS.
    assert diff < fp32_reassociation_atol(k=490, layers=5, magnitude=SIGMAS)


def test_whole_network_sparse_equals_masked_on_random_weights():
    sparse = init_random_(build_model(window=(2, 3)), seed=3)
    masked = build_model(window=(2, 3), attention="masked")
    masked.load_state_dict(sparse.state_dict())
    z, lr = torch.randn(1, 3, 7, 50, 66), torch.randn(1, 3, 7, 25, 33)
    args = (z, torch.tensor([0.6]), lr, torch.randn_like(lr), torch.tensor([0.4]))
    with torch.no_grad():
        diff = (sparse(*args) - masked(*args)).abs().max().item()
    print(f"whole network: max |sparse - masked| = {diff:.2e}")
    # The tiny network: about 26 reductions (4 blocks of 6, embedding, head) of length <= 512
    # (441 tokens of full attention here, the MLP's 256, the patch embedding's 384) on values up to SIGMAS.
    assert diff < fp32_reassociation_atol(k=512, layers=26, magnitude=SIGMAS)


def test_routing_picks_another_unit_and_is_not_full_attention():
    torch.manual_seed(0)
    G, N, H, L, d = 2, 6, 2, 4, 8
    q, k = torch.randn(G, N, H, L, d), torch.randn(G, N, H, L, d)
    valid = torch.ones(G, N, L)
    valid[:, -1] = 0  # an all-padding unit is never chosen
    idx = route_topk(q, k, valid, topk=1)
    assert idx.shape == (G, N, H, 1)
    assert not (idx[..., 0] == torch.arange(N)[None, :, None]).any(), "a unit never routes to itself"
    assert not (idx == N - 1).any(), "padding units are never chosen"
    # Routing follows relevance: make unit 2's keys align with unit 0's mean query.
    k2 = k.clone()
    k2[:, 2] = q[:, 0].mean(2, keepdim=True) * 10
    assert (route_topk(q, k2, valid, topk=1)[:, 0, :, 0] == 2).all()

    sparse, full = _layer("sparse"), _layer("full")
    full.load_state_dict(sparse.state_dict())
    x = torch.randn(1, 5, 6, 8, 32)
    with torch.no_grad():
        assert (sparse(x, _rope(5, 6, 8), False) - full(x, _rope(5, 6, 8), False)).abs().max() > 1e-3


@pytest.mark.parametrize("mode", ["sparse", "swin", "full"])
def test_partition_merge_round_trip(mode):
    x = torch.randn(2, 7, 5, 9, 3)
    for front in [(0, 0, 0), (3, 1, 2)]:
        groups, grid = window_partition(x, (5, 3, 4), front, mode)
        assert torch.equal(window_merge(groups, grid, mode), x)


def _last_frame_change(depth, shifts):
    model = init_random_(build_model(depth=depth, window=(2, 2)), seed=1)
    for block, shifted in zip(model.blocks, shifts):
        block.shifted = shifted
    T = 7  # units [0-4][5-6] unshifted, [0-1][2-6] shifted; the upsampler's convs reach 2 frames
    lr = torch.rand(1, 3, T, 12, 12)
    bumped = lr.clone()
    bumped[:, :, 0] += 0.5
    z = torch.randn(1, 3, T, 24, 24)
    run = lambda x: model(z, torch.tensor([0.5]), x, torch.zeros_like(x), torch.tensor([0.0]))  # noqa: E731
    with torch.no_grad():
        return (run(bumped) - run(lr))[:, :, -1].abs().max().item()


def test_information_crosses_temporal_units_only_through_shifted_blocks():
    assert _last_frame_change(1, [False]) == 0.0
    assert _last_frame_change(2, [False, False]) == 0.0
    assert _last_frame_change(2, [False, True]) > 1e-4
    assert [b.shifted for b in build_model(depth=4).blocks] == [False, True, False, True]
