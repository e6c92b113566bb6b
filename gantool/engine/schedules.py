"""Learning-rate schedules as ``LambdaLR`` multipliers, so their position is checkpointed with them.

``constant`` keeps the base rate; ``linear`` keeps it until ``decay_start`` of the steps, then decays
linearly to 0 at the last step (the CycleGAN/pix2pix schedule); ``cosine`` anneals from the base rate
to 0 over the steps after warmup. Any schedule can start with ``warmup_steps`` of linear warmup.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class LrMultiplier:
    """The factor applied to the base learning rate after ``step`` completed steps.

    A frozen dataclass (not a lambda) so it is picklable and comparable; ``LambdaLR.state_dict`` stores
    only the step counter and base rates, and the multiplier is rebuilt from options on resume.
    """

    schedule: str
    total_steps: int
    warmup_steps: int = 0
    decay_start: float = 0.5

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown lr schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be positive, got {self.total_steps}")

    def __call__(self, step: int) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return 1.0
        if self.schedule == "linear":
            start = max(self.warmup_steps, int(self.decay_start * self.total_steps))
            span = max(self.total_steps - start, 1)
            return max(0.0, 1.0 - max(0, step - start) / span)
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min(max(step - self.warmup_steps, 0) / span, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def lr_multiplier(schedule: str, total_steps: int, *, warmup_steps: int = 0,
                  decay_start: float = 0.5) -> Callable[[int], float]:
    """The multiplier function of a named schedule (see the module docstring)."""
    return LrMultiplier(schedule, total_steps, warmup_steps, decay_start)


def build_scheduler(optimizer: Optimizer, schedule: str, total_steps: int, *, warmup_steps: int = 0,
                    decay_start: float = 0.5) -> LambdaLR:
    """A ``LambdaLR`` for ``optimizer``; call ``scheduler.step()`` once per training step."""
    return LambdaLR(optimizer, lr_multiplier(schedule, total_steps, warmup_steps=warmup_steps,
                                             decay_start=decay_start))
