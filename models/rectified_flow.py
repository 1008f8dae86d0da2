"""Rectified-flow sampling (SimpleGVR section 3; Liu et al. 2022).

Forward process ``z_t = (1 - t) * z0 + t * eps`` for t in [0, 1]; the network predicts the velocity
``v = eps - z0``; sampling integrates dz/dt = v from t = 1 (pure noise) to t = 0 with Euler steps.
Only arithmetic on the arrays, so numpy (runtime) and torch (reference model) share this code.
"""

from __future__ import annotations

from typing import Callable


def timesteps(steps: int) -> list[float]:
    """``steps + 1`` times from 1 down to 0, uniformly spaced (the paper's 50-step schedule at 50)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return [1.0 - i / steps for i in range(steps + 1)]


def euler_sample(denoise: Callable, noise, steps: int):
    """Integrate from ``noise`` (t = 1) to t = 0. ``denoise(z, t)`` returns the velocity at (z, t)."""
    ts = timesteps(steps)
    z = noise
    for t, t_next in zip(ts[:-1], ts[1:]):
        z = z + (t_next - t) * denoise(z, t)
    return z
