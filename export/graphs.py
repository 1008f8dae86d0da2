"""The graphs an exported model is made of, as modules torch can trace (``models.manifest.graph_io``).

``ConditionGraph`` wraps ``SimpleGVR.condition`` (once per clip), ``StepGraph`` wraps
``SimpleGVR.step`` (network + Euler update, once per sampler step). The exporter traces each of
them into its own file; their input and output names come from the manifest's ``graph_io``.
"""

from __future__ import annotations

from torch import nn

from models.manifest import CONDITION, STEP


class ConditionGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, lr, lr_noise, noise_aug):
        return self.model.condition(lr, lr_noise, noise_aug)


class StepGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z_t, t, t_next, cond, noise_aug, base=None):
        return self.model.step(z_t, t, t_next, cond, noise_aug, base)


def graph_module(model, role: str) -> nn.Module:
    return {CONDITION: ConditionGraph, STEP: StepGraph}[role](model).eval()
