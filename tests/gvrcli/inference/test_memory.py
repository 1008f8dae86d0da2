"""The memory planner: tiles that keep the whole process within ``--memory-budget``, computing the least."""

from __future__ import annotations

import itertools

import pytest

from gvrcli.inference.memory import AUTO_MODEL_SHARE_MB, MemoryModel, activation_scale, plan_tiles, ram_mb, resident_mb
from gvrcli.inference.tiling import window_starts

MODEL = MemoryModel(scale=2, channels=3, factor=100, fixed_model_mb=100, baseline_mb=300)


def test_a_frame_that_fits_is_one_tile():
    plan = plan_tiles(MODEL, 8, 270, 480, budget_mb=10_000, overlap=16, multiple=8)
    assert plan.grid == (1, 1) and plan.tile == (270, 480) and plan.fits
    assert plan.estimate_mb == pytest.approx(MODEL.peak_mb(8, 270, 480, 270, 480))


@pytest.mark.parametrize("budget", [1000, 1300, 2000])
def test_the_plan_fits_and_computes_no_more_than_any_grid_that_fits(budget):
    plan = plan_tiles(MODEL, 8, 270, 480, budget_mb=budget, overlap=16, multiple=8)
    assert plan.fits and plan.estimate_mb <= budget
    th, tw = plan.tile
    assert th % 8 == 0 or th == 270
    assert tw % 8 == 0 or tw == 480
    computed = plan.grid[0] * plan.grid[1] * th * tw
    for rows, cols in itertools.product(range(24, 271, 8), range(24, 481, 8)):  # every tile size the engine could run
        if MODEL.peak_mb(8, 270, 480, rows, cols) <= budget:
            n = len(window_starts(270, rows, 16)) * len(window_starts(480, cols, 16))
            assert computed <= n * rows * cols


def test_a_budget_below_the_chunk_buffers_does_not_fit_and_gives_the_smallest_tile():
    plan = plan_tiles(MODEL, 8, 270, 480, budget_mb=100, overlap=16, multiple=8)
    assert not plan.fits and plan.tile == (24, 24)  # the smallest tile wider than the overlap
    assert "planned peak" in plan.describe()


def test_files_worked_on_at_once_share_the_budget():
    two = MemoryModel(scale=2, channels=3, factor=100, fixed_model_mb=100, baseline_mb=300, jobs=2)
    one_plan = plan_tiles(MODEL, 8, 270, 480, budget_mb=1500, overlap=16, multiple=8)
    two_plan = plan_tiles(two, 8, 270, 480, budget_mb=1500, overlap=16, multiple=8)
    assert two_plan.tile[0] * two_plan.tile[1] < one_plan.tile[0] * one_plan.tile[1]
    assert two_plan.estimate_mb <= 1500


def test_auto_gives_the_model_one_gib_beyond_the_chunk_at_most_half_the_ram():
    budget = MODEL.auto_budget_mb(8, 270, 480)
    assert budget == pytest.approx(min(300 + MODEL.fixed_mb(8, 270, 480) + AUTO_MODEL_SHARE_MB, ram_mb() / 2))
    assert 0 < resident_mb() < ram_mb()


class _Manifest:
    def __init__(self, channels, **config):
        self.latent_channels, self.config = channels, config


def test_activations_scale_with_the_tokens_an_input_element_feeds():
    """The factors were fitted on the built-in tiny (64 wide, 8x8 patches of 3 channels): the
    latent-space tiny (2x2 patches of 16 channels) has 3x the token width per input element, a
    network twice as wide twice that; narrower networks and unreadable configs plan as the reference."""
    assert activation_scale(_Manifest(3, dim=64, patch=8)) == 1.0
    assert activation_scale(_Manifest(16, dim=64, patch=2)) == pytest.approx(3.0)
    assert activation_scale(_Manifest(16, dim=128, patch=2)) == pytest.approx(6.0)
    assert activation_scale(_Manifest(3, dim=32, patch=16)) == 1.0
    for broken in ({}, {"dim": "64", "patch": 2}, {"dim": 64, "patch": 0}, {"dim": True, "patch": 2}):
        assert activation_scale(_Manifest(16, **broken)) == 1.0
