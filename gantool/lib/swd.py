"""Sliced Wasserstein distance between two image sets, on Laplacian-pyramid patches (ProGAN's protocol).

Karras et al. (2018) compare the *local* statistics of generated and real images at every scale, with no
trained network: for each pyramid level (from full size down to 16 px; the coarsest is the Gaussian
residual, the others band-pass), take 128 random 7x7 neighbourhoods per image, normalise each colour
channel by that set's own mean and standard deviation, flatten to 147-d descriptors, and measure the
sliced Wasserstein distance between the two descriptor sets: project both on 4 x 128 random unit
directions, sort, average the absolute differences, times 1e3. The fine levels react to blur and noise,
the coarse one to wrong global structure or colours.

The value depends on the number of images (fewer images, larger floor), so always report it next to the
*real-vs-real floor*: the same computation between two disjoint real sets of the same size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gantool.lib.pyramid import laplacian_pyramid

PATCH = 7
PATCHES_PER_IMAGE = 128
DIRECTION_REPEATS = 4
DIRECTIONS_PER_REPEAT = 128
SMALLEST_LEVEL = 16


@dataclass(frozen=True)
class SWDResult:
    """SWD x 1e3 per pyramid level (``sides[i]`` px, finest first) and their mean."""

    sides: tuple[int, ...]
    levels: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.levels) / len(self.levels)


def swd_levels(side: int) -> int:
    """Pyramid levels from ``side`` down to 16 px (ProGAN): 3 at 64 px, 2 at 32, 1 at 16 or less."""
    return max(1, int(math.log2(max(side, SMALLEST_LEVEL) // SMALLEST_LEVEL)) + 1)


def patch_positions(count: int, per_image: int, height: int, width: int,
                    generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Top-left corners ``(top, left)``, each ``(count, per_image)``, of random 7x7 windows inside the image."""
    if height < PATCH or width < PATCH:
        raise ValueError(f"SWD patches are {PATCH}x{PATCH}; images of {height}x{width} are too small")
    top = torch.randint(0, height - PATCH + 1, (count, per_image), generator=generator)
    left = torch.randint(0, width - PATCH + 1, (count, per_image), generator=generator)
    return top, left


def patch_descriptors(images: Tensor, top: Tensor, left: Tensor) -> Tensor:
    """The 7x7 windows at ``(top, left)`` (``(N, K)`` each) of ``(N, C, H, W)`` images, as ``(N * K, C, 7, 7)``."""
    n, c, _, w = images.shape
    count = top.shape[1]
    offsets = torch.arange(PATCH)
    rows = (top[..., None] + offsets)[..., :, None].expand(n, count, PATCH, PATCH)    # (N, K, 7, 7)
    cols = (left[..., None] + offsets)[..., None, :].expand(n, count, PATCH, PATCH)
    index = (rows * w + cols).reshape(n, 1, -1).expand(n, c, -1)
    patches = images.flatten(2).gather(2, index).view(n, c, count, PATCH, PATCH)
    return patches.transpose(1, 2).reshape(n * count, c, PATCH, PATCH)


def normalise(descriptors: Tensor) -> Tensor:
    """Each colour channel to zero mean and unit variance over the whole set, flattened to ``(M, C*49)``."""
    mean = descriptors.mean(dim=(0, 2, 3), keepdim=True)
    std = descriptors.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-8)
    return ((descriptors - mean) / std).flatten(1)


def sliced_wasserstein(a: Tensor, b: Tensor, generator: torch.Generator, *, repeats: int = DIRECTION_REPEATS,
                       directions: int = DIRECTIONS_PER_REPEAT) -> float:
    """Mean over random unit directions of the 1-D Wasserstein distance between the projections of ``a`` and ``b``.

    ``a`` and ``b`` are ``(M, D)`` with the same ``M`` (sorted projections are compared rank by rank).
    """
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs sets of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    total = 0.0
    for _ in range(repeats):
        axes = torch.randn(a.shape[1], directions, generator=generator, dtype=a.dtype).to(a.device)
        axes = axes / axes.norm(dim=0, keepdim=True)
        projected_a, _ = (a @ axes).sort(dim=0)
        projected_b, _ = (b @ axes).sort(dim=0)
        total += float((projected_a - projected_b).abs().mean())
    return total / repeats


def swd(first: Tensor, second: Tensor, *, seed: int = 0, patches: int = PATCHES_PER_IMAGE) -> SWDResult:
    """SWD x 1e3 between two sets of ``(N, 3, H, W)`` images in [0, 1] (same N and size), per level.

    Patch positions and directions are drawn from ``seed``, so a call is deterministic. Both sets use the
    same positions (image ``i`` of each set gives its windows at the same places): a set against itself
    scores exactly 0, and comparisons share their sampling noise. ProGAN draws positions per set, which
    adds a small floor of its own; the real-vs-real floor is measured the same way as the model's score.
    """
    if first.shape != second.shape:
        raise ValueError(f"swd needs two sets of one shape, got {tuple(first.shape)} and {tuple(second.shape)}")
    levels = swd_levels(min(first.shape[-2:]))
    generator = torch.Generator().manual_seed(seed)
    pyramids = [laplacian_pyramid(images.float(), levels) for images in (first, second)]
    values = []
    for level in range(levels):
        n, _, h, w = pyramids[0][level].shape
        top, left = patch_positions(n, patches, h, w, generator)
        a, b = (normalise(patch_descriptors(pyramid[level], top, left)) for pyramid in pyramids)
        values.append(1e3 * sliced_wasserstein(a, b, generator))
    return SWDResult(sides=tuple(first.shape[-1] >> level for level in range(levels)), levels=tuple(values))
