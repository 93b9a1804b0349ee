"""Exponential moving average of a network's weights (the BigGAN "G EMA").

The averaged copy gives visibly cleaner GAN samples than the raw generator, above all
with small batches. The decay ramps up over the first steps ((1 + n) / (10 + n), capped)
so early averages do not remember the random initialisation. Buffers (batch-norm
statistics, spectral-norm vectors) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        averaged = dict(self.model.named_parameters())
        for name, param in model.named_parameters():
            averaged[name].lerp_(param.detach(), 1.0 - decay)
        averaged_buffers = dict(self.model.named_buffers())
        for name, buffer in model.named_buffers():
            averaged_buffers[name].copy_(buffer)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = state["updates"]
        self.model.load_state_dict(state["model"])
