"""Whole-image instance-norm statistics for tiled inference.

Instance norm normalises each channel with the mean and variance of whatever it is given. Run tile by
tile, every tile gets its own statistics, so neighbouring tiles of one photo can come out in different
tones (worst where a tile is nearly flat, such as sky), which the feathered overlap cannot hide. Here the
network first runs once on a copy of the whole image shrunk to fit a tile, every
per-sample normalisation layer records the statistics of its input, and the tiles are then normalised
with those: one set of statistics for the whole image, as an untiled run would use (measured at a lower
resolution, so close to it rather than equal; see docs/cyclegan.md for the figures).

The engine finds such layers by a protocol, not a class (it imports no network library): a module with a
``frozen_statistics`` attribute (:class:`FreezableNorm`; ``gantool.lib.nets.layers.InstanceNorm`` is one)
normalises with ``(mean, var)`` from it when it is set, each ``(1, C, 1, 1)``. Networks without such layers
are untouched, at no cost.

A task with several inputs gets every input shrunk the same way; inputs named as masks are shrunk by the
maximum of each area instead of its mean, so that a hole of a few pixels survives in the small copy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@runtime_checkable
class FreezableNorm(Protocol):
    """A normalisation layer that can use given statistics instead of its input's own (``None``: its own)."""

    frozen_statistics: tuple[Tensor, Tensor] | None


def instance_norms(networks: Mapping[str, nn.Module]) -> list[nn.Module]:
    """Every :class:`FreezableNorm` layer of ``networks``, in module order."""
    return [module for network in networks.values() for module in network.modules()
            if isinstance(module, FreezableNorm)]


def shrink_to(image: Tensor, max_side: int, *, mask: bool = False) -> Tensor:
    """``(B, C, H, W)`` shrunk (area-averaged, aspect kept) so that neither side exceeds ``max_side``.

    A ``mask`` takes the maximum of each area instead, so holes (1) survive however small they are.
    """
    height, width = image.shape[-2:]
    factor = max_side / max(height, width)
    if factor >= 1:
        return image
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    if mask:
        return F.adaptive_max_pool2d(image, size)
    return F.interpolate(image, size=size, mode="area")


def shrink_inputs(inputs: Tensor | Mapping[str, Tensor], max_side: int, *,
                  masks: Collection[str] = ()) -> Tensor | dict[str, Tensor]:
    """:func:`shrink_to` for one tensor or every tensor of a dict (the names in ``masks`` as masks)."""
    if isinstance(inputs, Tensor):
        return shrink_to(inputs, max_side)
    return {name: shrink_to(tensor, max_side, mask=name in masks) for name, tensor in inputs.items()}


@contextlib.contextmanager
def whole_image_norm_statistics(networks: Mapping[str, nn.Module], run: Callable[[Any], Tensor],
                                image: Tensor | Mapping[str, Tensor], *, max_side: int,
                                masks: Collection[str] = ()) -> Iterator[int]:
    """Inside the block, instance norms use the statistics ``run`` produced on the whole (shrunk) image.

    Args:
        networks: The networks ``run`` uses; their :class:`FreezableNorm` layers are the ones frozen.
        run: One inference pass, as the tiles get it (for example the task's ``predict`` for one tile).
        image: The whole input image, ``(1, C, H, W)``, or a dict of a task's aligned inputs.
        max_side: The calibration copy is shrunk to at most this side (a tile's size, which is known to fit).
        masks: Names of inputs shrunk as masks (area maximum, so holes survive).

    Yields:
        How many layers were frozen (0 when the networks have no instance norm, or ``run`` used none).
    """
    norms = instance_norms(networks)
    if not norms:
        yield 0
        return
    recorded: dict[int, tuple[Tensor, Tensor]] = {}

    def record(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        x = inputs[0].float()
        recorded[id(module)] = (x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), keepdim=True, unbiased=False))

    hooks = [norm.register_forward_pre_hook(record) for norm in norms]
    try:
        with torch.inference_mode():
            run(shrink_inputs(image, max_side, masks=masks))
    finally:
        for hook in hooks:
            hook.remove()
    frozen = [norm for norm in norms if id(norm) in recorded]
    for norm in frozen:
        setattr(norm, "frozen_statistics", recorded[id(norm)])  # noqa: B010 - the FreezableNorm protocol's attribute
    try:
        yield len(frozen)
    finally:
        for norm in frozen:
            setattr(norm, "frozen_statistics", None)  # noqa: B010
