"""The graphs an exported model is made of, as modules torch can trace (``models.manifest.graph_io``).

``ConditionGraph`` wraps ``SimpleGVR.condition`` (once per clip; the output size comes in as the
shape of ``hr_grid``), ``StepGraph`` wraps ``SimpleGVR.step`` (network + Euler update, once per
sampler step), ``TextGraph`` wraps ``SimpleGVR.text`` (a model with a text path: once per video).
The exporter traces each of them into its own file; their input and output names come from the
manifest's ``graph_io``.
"""

from __future__ import annotations

from torch import nn

from models.manifest import CONDITION, STEP, TEXT


class ConditionGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, lr, lr_noise, noise_aug, hr_grid):
        return self.model.condition(lr, lr_noise, noise_aug, hr_grid.shape[-2:])


class StepGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z_t, t, t_next, cond, noise_aug, base=None, text=None):
        return self.model.step(z_t, t, t_next, cond, noise_aug, base, text)


class TextGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, prompt):
        return self.model.text(prompt)


def graph_module(model, role: str) -> nn.Module:
    return {CONDITION: ConditionGraph, STEP: StepGraph, TEXT: TextGraph}[role](model).eval()
