"""Sizes of convolutional networks, torch-free: what option dataclasses need to validate crops and depths.

Option modules are imported on every CLI start and must not import torch, yet they must reject a crop
too small for the critic or derive the U-Net depth from the crop. The formulas live here once; the
networks in :mod:`gantool.lib.nets` use the same functions, so an option check and the network it guards
cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

#: Deepest U-Net built: 8 downsamplings is pix2pix's ``unet_256`` (a 1x1 bottleneck at 256 pixels).
MAX_UNET_DEPTH = 8

PatchLayout = Literal["nlayer", "vgg"]
PATCH_LAYOUTS: tuple[str, ...] = ("nlayer", "vgg")


@dataclass(frozen=True)
class ConvShape:
    """The size-relevant part of a square 2-D convolution."""

    kernel: int
    stride: int = 1
    padding: int = 0

    def output_side(self, side: int) -> int:
        """Output side for an input side (PyTorch's ``floor((n + 2p - k) / s) + 1``; may be <= 0)."""
        return (side + 2 * self.padding - self.kernel) // self.stride + 1


def output_side(convs: Iterable[ConvShape], side: int) -> int:
    """Side of the output map of ``convs`` applied in order to an input of ``side`` (<= 0: empty)."""
    for conv in convs:
        if side < 1:
            return side
        side = conv.output_side(side)
    return side


def min_input_side(convs: Iterable[ConvShape]) -> int:
    """Smallest input side for which ``convs`` leave an output of at least 1 x 1.

    Walks back from a 1-pixel output: a conv gives ``m`` outputs when its input has at least
    ``(m - 1) * stride + kernel - 2 * padding`` pixels (and at least one).
    """
    needed = 1
    for conv in reversed(list(convs)):
        needed = max(1, (needed - 1) * conv.stride + conv.kernel - 2 * conv.padding)
    return needed


def receptive_field(convs: Iterable[ConvShape]) -> int:
    """Input patch side that one output pixel of ``convs`` sees (each conv adds ``(k - 1) * jump``)."""
    field, jump = 1, 1
    for conv in convs:
        field += (conv.kernel - 1) * jump
        jump *= conv.stride
    return field


def patch_convs(n_layers: int, layout: PatchLayout = "nlayer") -> tuple[ConvShape, ...]:
    """The convolutions of :class:`gantool.lib.nets.patchgan.PatchDiscriminator`, in order.

    ``nlayer`` (pix2pix / CycleGAN): ``n_layers`` 4x4 stride-2 convs, one 4x4 stride-1 conv and a 4x4
    stride-1 head, padding 1. ``vgg``: a 3x3 stem, ``n_layers`` stages of a 4x4 stride-2 conv and a 3x3
    conv, and a 3x3 head, all padded to keep sizes (super-resolution's critic).
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be at least 1, got {n_layers}")
    if layout == "nlayer":
        return (*[ConvShape(4, 2, 1)] * n_layers, ConvShape(4, 1, 1), ConvShape(4, 1, 1))
    if layout == "vgg":
        return (ConvShape(3, 1, 1), *[ConvShape(4, 2, 1), ConvShape(3, 1, 1)] * n_layers, ConvShape(3, 1, 1))
    raise ValueError(f"layout must be one of {', '.join(PATCH_LAYOUTS)}, got {layout!r}")


def patch_min_side(n_layers: int, layout: PatchLayout = "nlayer") -> int:
    """Smallest image side a PatchGAN critic accepts: 24 for ``nlayer`` at 3 layers (``3 * 2**n``), 8 for ``vgg``."""
    return min_input_side(patch_convs(n_layers, layout))


def depth_for_crop(crop: int, max_depth: int = MAX_UNET_DEPTH) -> int:
    """U-Net downsamplings for a training crop side: ``floor(log2(crop)) - 1``, between 1 and ``max_depth``.

    One level short of a 1x1 bottleneck: instance norm over a single pixel would zero every feature, and
    batch norm with a batch of one would fail. 256 gives 7 (a 2x2 bottleneck), 128 gives 6, 32 gives 4.
    """
    if crop < 4:
        raise ValueError(f"crop must be at least 4 pixels, got {crop}")
    return max(1, min(max_depth, int(math.floor(math.log2(crop))) - 1))
