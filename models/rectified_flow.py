"""Rectified-flow sampling (SimpleGVR section 3; Liu et al. 2022).

Forward process ``z_t = (1 - t) * z0 + t * eps`` for t in [0, 1]; the network predicts the velocity
``v = eps - z0``; sampling integrates dz/dt = v from t = 1 (pure noise) to t = 0 with Euler steps.
Only arithmetic on the arrays, so numpy (runtime) and torch (reference model) share this code.

The step times may be *shifted* (SD3, Esser et al. 2024: ``t' = shift t / (1 + (shift - 1) t)``),
as most rectified-flow video models sample: shift > 1 spends more steps at high noise. It is a
property of how a checkpoint was trained, so it travels in the config and the manifest; 1 (the
default) is the uniform schedule.
"""

from __future__ import annotations

from typing import Callable


def shift_time(t: float, shift: float = 1.0) -> float:
    """SD3's timestep shift; the identity at ``shift == 1``, and 0 and 1 stay fixed."""
    return shift * t / (1.0 + (shift - 1.0) * t)


def timesteps(steps: int, shift: float = 1.0) -> list[float]:
    """``steps + 1`` times from 1 down to 0: uniformly spaced (the paper's 50-step schedule at 50),
    then shifted (``shift_time``)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not shift > 0:
        raise ValueError(f"shift must be > 0, got {shift}")
    uniform = [1.0 - i / steps for i in range(steps + 1)]
    return uniform if shift == 1.0 else [shift_time(t, shift) for t in uniform]


def guided(v_null, v_cond, scale: float):
    """Classifier-free guidance: ``v_null + scale * (v_cond - v_null)`` (``scale`` 1 = ``v_cond``).

    Affine in the velocity, so the same combination of two Euler updates ``z + dt * v`` is the
    Euler update of the guided velocity: the runtime combines step-graph outputs with it."""
    return v_null + scale * (v_cond - v_null)


def euler_sample(denoise: Callable, noise, steps: int, shift: float = 1.0):
    """Integrate from ``noise`` (t = 1) to t = 0. ``denoise(z, t)`` returns the velocity at (z, t)."""
    ts = timesteps(steps, shift)
    z = noise
    for t, t_next in zip(ts[:-1], ts[1:]):
        z = z + (t_next - t) * denoise(z, t)
    return z
