"""Tolerances for comparing two fp32 computations, derived from the arithmetic, not from one machine.

Two evaluations of the same fp32 expression differ when the runtime sums in another order: SIMD
width (AVX2, AVX-512, AMX), blocking of oneDNN/MLAS/OpenVINO kernels, thread count, tile and chunk
sizes. Every comparison in the suite of numbers computed by different code paths takes its
tolerance from one of the two functions here, with the growth factors written at the call, so the
suite holds on any CPU without being looser than rounding explains (docs/testing.md).

u = 2^-24 is the unit roundoff of fp32: one rounding to nearest moves a value ``x`` by at most
``u * |x|``.
"""

from __future__ import annotations

import math

UNIT_ROUNDOFF = 2.0**-24  # fp32, round to nearest: |fl(x) - x| <= u |x|

# The largest of N independent normal deviates stays below sqrt(2 ln N) standard deviations;
# 6 covers N up to 1e8 elements (sqrt(2 ln 1e8) = 6.07), far more than any tensor the tests compare.
SIGMAS = 6.0


def fp32_chain_atol(roundings: int, magnitude: float = 1.0) -> float:
    """Worst case, any order: a result reached through at most ``roundings`` fp32 roundings of
    values no larger than ``magnitude`` is off by at most ``roundings * u * magnitude`` (Higham,
    *Accuracy and Stability of Numerical Algorithms*, 2nd ed., Lemma 3.1: gamma_n = n u / (1 - n u)).
    Two such results differ by at most twice that. For short computations (a few taps, a few
    sampler steps, a blend), where the worst case is still small."""
    gamma = roundings * UNIT_ROUNDOFF / (1 - roundings * UNIT_ROUNDOFF)
    return 2 * gamma * magnitude


def fp32_reassociation_atol(k: int, layers: int = 1, magnitude: float = 1.0) -> float:
    """Deep networks, where the worst case is hopeless: the gap between two summation orders of
    ``layers`` stacked layers whose outputs are length-``k`` dot products (k = kernel volume x
    input channels) of size up to ``magnitude``.

    Each of a sum's k - 1 roundings moves it by at most u * magnitude with a sign that does not
    depend on the others, so one order's error is a random walk with standard deviation at most
    sqrt(k) u magnitude (Higham and Mary, *A New Approach to Probabilistic Rounding Error
    Analysis*, SIAM J. Sci. Comput. 41(5), 2019); the gap between two orders is sqrt(2) times that.
    Later layers pass an earlier layer's error on at a gain about 1 (normalised activations), and
    the layers' errors are independent, so they add in quadrature: sqrt(layers). SIGMAS bounds the
    largest element's deviation."""
    return SIGMAS * math.sqrt(2 * k * layers) * UNIT_ROUNDOFF * magnitude


# The suite's small random-weight VAE (``build_vae("wan2.1", base_dim=16, num_res_blocks=1)``):
# causal 3x3x3 convolutions over at most 64 channels (k = 27 * 64 = 1728), 23 convolutions on the
# encoder's path and 30 on the decoder's, conv outputs below 2.5 in absolute value (2.30 at seed 0).
# tests/models/test_vae.py::test_small_vae_has_the_shape_its_tolerances_assume checks all three.
SMALL_VAE_K, SMALL_VAE_ENCODER_LAYERS, SMALL_VAE_DECODER_LAYERS, SMALL_VAE_MAGNITUDE = 1728, 23, 30, 2.5
SMALL_VAE_ENCODE_ATOL = fp32_reassociation_atol(SMALL_VAE_K, SMALL_VAE_ENCODER_LAYERS, SMALL_VAE_MAGNITUDE)  # 2.5e-4
SMALL_VAE_DECODE_ATOL = fp32_reassociation_atol(SMALL_VAE_K, SMALL_VAE_DECODER_LAYERS, SMALL_VAE_MAGNITUDE)  # 2.9e-4


def fp32_reassociation_rel_l2(k: int, layers: int = 1, gain: float = 1.0) -> float:
    """The relative L2 gap (||a - b|| / ||b||) of two summation orders, the aggregate that
    ``export.spec.rel_l2`` and ``--verify`` report: the root mean square of the per-element gaps of
    ``fp32_reassociation_atol`` without the SIGMAS tail (an average over many elements does not
    reach its extremes). ``gain``: how much larger the layers' partial sums are than the output."""
    return math.sqrt(2 * k * layers) * UNIT_ROUNDOFF * gain


# The fake model (tests/fake_model.py, its numpy twin in tests/gvrcli/inference/test_engine.py):
# the condition is a 4-tap bilinear (about 7 roundings of values in [0, 1]), each Euler step about
# 5 roundings of values up to SIGMAS (standard-normal starting noise) and contracting towards the
# condition (gain <= 1, so errors add, they do not grow); a chunk or tile blend about 4 more.
def fake_model_atol(steps: int, blends: int = 1, magnitude: float = SIGMAS) -> float:
    return fp32_chain_atol(7 + 5 * steps + 4 * blends, magnitude)
