"""Exponential moving average of the inference networks (what gets exported and sampled).

GAN generators oscillate; the EMA of their weights gives visibly cleaner, more stable outputs at no
training cost. The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (timm's
``ModelEmaV3``), so early EMA weights are not dominated by the random initialisation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class EMA:
    """Shadow copies of some networks, updated after every optimisation step.

    Args:
        networks: The live (unwrapped) networks to follow, by name.
        decay: Target decay, e.g. 0.999; each update moves the shadow ``1 - decay`` of the way.
        warmup: Use the ``(1 + n) / (10 + n)`` warmup of the decay.
    """

    def __init__(self, networks: Mapping[str, nn.Module], decay: float, *, warmup: bool = True) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.networks: dict[str, nn.Module] = {
            name: copy.deepcopy(network).eval().requires_grad_(False) for name, network in networks.items()
        }

    def decay_at(self, updates: int) -> float:
        """The decay used for the update after ``updates`` earlier updates."""
        return min(self.decay, (1 + updates) / (10 + updates)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, networks: Mapping[str, nn.Module]) -> None:
        """Move every shadow towards the live network; floating buffers are copied, not averaged."""
        weight = 1.0 - self.decay_at(self.updates)
        for name, shadow in self.networks.items():
            live = networks[name]
            targets, sources = [], []
            for (key, target), source in zip(shadow.named_parameters(), live.parameters(), strict=True):
                if target.shape != source.shape:
                    raise RuntimeError(f"EMA of {name!r}: parameter {key} changed shape")
                targets.append(target.data)
                sources.append(source.detach())
            if targets:
                torch._foreach_lerp_(targets, sources, weight)
            for shadow_buffer, live_buffer in zip(shadow.buffers(), live.buffers(), strict=True):
                shadow_buffer.copy_(live_buffer)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        """``{"updates", "decay", "networks": {name: module state dict}}``."""
        return {
            "updates": self.updates,
            "decay": self.decay,
            "networks": {name: network.state_dict() for name, network in self.networks.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output (the decay given at construction is kept)."""
        self.updates = int(state["updates"])
        for name, network in self.networks.items():
            network.load_state_dict(state["networks"][name])
