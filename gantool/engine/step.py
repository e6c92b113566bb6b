"""``TrainStep``: what a task's ``training_step`` gets to run one GAN iteration device-agnostically.

The task decides the order of the updates; the step object owns everything that must be done the same
way for every task: mixed precision, loss scaling, gradient clipping and DDP. Following PyTorch's AMP
notes, each loss is scaled and each optimizer stepped here, backward runs outside autocast, and the
trainer calls ``scaler.update()`` exactly once per iteration after ``training_step`` returns.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gantool.errors import TrainingError

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from gantool.engine.runtime import Runtime


class TrainStep:
    """The engine side of one training iteration, handed to ``Task.training_step``.

    Attributes:
        networks: Networks to run forward passes with, by name; DDP-wrapped (and compiled) where
            enabled, so a backward through them synchronises gradients.
        index: Global step number, 0-based: how many iterations completed before this one.
        device: Where the batch and networks live.
    """

    def __init__(
        self,
        *,
        runtime: Runtime,
        networks: Mapping[str, nn.Module],
        raw_networks: Mapping[str, nn.Module],
        optimizers: Mapping[str, Optimizer],
        scaler: torch.amp.GradScaler,
        grad_clip: float | None = None,
        frozen_networks: Mapping[str, nn.Module] | None = None,
    ) -> None:
        self.runtime = runtime
        self.networks = dict(networks)
        self.raw_networks = dict(raw_networks)
        self.optimizers = dict(optimizers)
        self.scaler = scaler
        self.grad_clip = grad_clip
        self._frozen_networks = dict(frozen_networks or raw_networks)
        self.index = 0
        self.updated: list[str] = []

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for forward passes and loss computation (no-op in fp32)."""
        return self.runtime.autocast()

    def update(self, name: str, loss: Tensor) -> None:
        """Step the optimizer ``name`` on ``loss``: zero its grads, scaled backward, optional clip, step.

        ``name`` is an optimizer name, a key of ``Task.build_optimizers()``: by default one per network and
        named like it, but a task may group networks under one optimizer (CycleGAN's ``"generators"``).
        Gradients are zeroed just before the backward, so gradients that leaked into these networks from
        another loss (a missing ``detach()``) never reach this optimizer.
        """
        optimizer = self.optimizers.get(name)
        if optimizer is None:
            raise KeyError(f"update({name!r}): no optimizer named {name!r}; have {sorted(self.optimizers)}")
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.grad_clip:
            self.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            parameters = [p for group in optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(parameters, self.grad_clip)
        self.scaler.step(optimizer)
        self.updated.append(name)

    @contextlib.contextmanager
    def frozen(self, name: str) -> Iterator[nn.Module]:
        """Network ``name`` with ``requires_grad`` off, for passing gradients through it (a critic).

        Yields the unwrapped module (no DDP), so its forward adds no DDP bookkeeping and needs no backward
        of its own; parameters that were trainable are switched back on afterwards.
        """
        module = self.raw_networks[name]
        switched = [p for p in module.parameters() if p.requires_grad]
        for parameter in switched:
            parameter.requires_grad_(False)
        try:
            yield self._frozen_networks[name]
        finally:
            for parameter in switched:
                parameter.requires_grad_(True)


def reduce_scalars(
    losses: Mapping[str, Tensor | float], flags: list[float], runtime: Runtime
) -> tuple[dict[str, float], list[float]]:
    """Average losses over processes and sum ``flags``, with one collective and one device sync.

    Every process gets the same answer, so a NaN on one rank, or a stop request seen by one rank,
    stops them all at the same step instead of deadlocking the next all-reduce.
    """
    names = list(losses)
    values = []
    for name in names:
        value = losses[name]
        if isinstance(value, Tensor):
            if value.numel() != 1:
                raise TrainingError(f"training_step returned loss {name!r} with shape {tuple(value.shape)}; "
                                    "losses to log must be scalars")
            values.append(value.detach().float().reshape(()).to(runtime.device))
        else:
            values.append(torch.tensor(float(value), device=runtime.device))
    values.extend(torch.tensor(float(flag), device=runtime.device) for flag in flags)
    if not values:
        return {}, []
    packed = runtime.all_reduce_sum(torch.stack(values))
    result = packed.cpu().tolist()
    size = max(runtime.world_size, 1)
    means = {name: result[i] / size for i, name in enumerate(names)}
    return means, result[len(names):]


def check_finite(losses: Mapping[str, float], index: int, *, last_checkpoint: str | None = None) -> None:
    """Raise ``TrainingError`` naming the first non-finite loss and the 1-based step it appeared at."""
    for name, value in losses.items():
        if not math.isfinite(value):
            where = f"; the last good checkpoint is '{last_checkpoint}'" if last_checkpoint else ""
            raise TrainingError(
                f"loss {name!r} became {value} at step {index + 1}; training stopped{where}. "
                "Try a lower learning rate, --grad-clip, or --precision fp32, then --resume auto")
