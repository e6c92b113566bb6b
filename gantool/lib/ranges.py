"""The one mapping between gantool's image range [0, 1] and the [-1, 1] of tanh-output networks.

Images are [0, 1] everywhere in gantool (files, batches, inference); the U-Net and ResNet generators of
pix2pix and CycleGAN end in tanh and were published on [-1, 1]. Tasks convert at the network boundary with
these two functions, so the convention lives in one place. Plain arithmetic: no torch import needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor


def to_signed(image: Tensor) -> Tensor:
    """``(B, C, H, W)`` in [0, 1] to [-1, 1] (``x * 2 - 1``), same dtype."""
    return image * 2 - 1


def to_unit(values: Tensor, *, clamp: bool = False) -> Tensor:
    """[-1, 1] back to [0, 1] (``(x + 1) / 2``); ``clamp`` clips what a network put outside the range."""
    unit = (values + 1) * 0.5
    return unit.clamp(0.0, 1.0) if clamp else unit
