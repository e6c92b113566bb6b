"""Checks for mode collapse and memorisation that need no trained network: MS-SSIM diversity and nearest neighbours.

- :func:`ms_ssim` (Wang, Simoncelli and Bovik 2003) between image pairs; :func:`pair_diversity` is its
  mean over random pairs *within* one set, as ProGAN and mmagic report it: higher means more alike, so a
  collapsed generator scores well above the real set. Images of 32-64 px are small for the usual five
  scales with an 11x11 window, so the window shrinks to the image at the coarse scales and the scale
  weights are renormalised over the scales that fit (at least 4 px); values are comparable between sets
  of the same size only.
- :func:`nearest_neighbours` in pixel space (L2) and :func:`neighbour_grid`: each sample next to its
  nearest training images. A sample that copies a training image shows it as its first neighbour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: The five scale weights of Wang et al. (2003).
SCALE_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_C1, _C2 = 0.01**2, 0.03**2


def _gaussian_window(size: int, sigma: float, channels: int, like: Tensor) -> Tensor:
    taps = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    taps = torch.exp(-(taps**2) / (2 * sigma**2))
    taps = taps / taps.sum()
    return (taps[:, None] * taps[None, :]).expand(channels, 1, size, size)


def _ssim_parts(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Per image: mean luminance term and mean contrast-structure term (Gaussian window, valid positions)."""
    size = min(11, a.shape[-1], a.shape[-2])
    window = _gaussian_window(size, 1.5, a.shape[1], a)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(x, window, groups=a.shape[1])

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    luminance = (2 * mu_a * mu_b + _C1) / (mu_a**2 + mu_b**2 + _C1)
    contrast = (2 * cov + _C2) / (var_a + var_b + _C2)
    return luminance.flatten(1).mean(1), contrast.flatten(1).mean(1)


def ms_ssim(a: Tensor, b: Tensor) -> Tensor:
    """MS-SSIM per pair of ``(B, C, H, W)`` images in [0, 1], ``(B,)``; at most five scales, down to 4 px."""
    a, b = a.double(), b.double()
    scales = 1
    while scales < len(SCALE_WEIGHTS) and min(a.shape[-2:]) >> scales >= 4:
        scales += 1
    weights = torch.tensor(SCALE_WEIGHTS[:scales], dtype=a.dtype)
    weights = weights / weights.sum()
    result = torch.ones(len(a), dtype=a.dtype)
    for scale in range(scales):
        luminance, contrast = _ssim_parts(a, b)
        result = result * contrast.clamp_min(0).cpu() ** weights[scale]
        if scale == scales - 1:
            result = result * luminance.clamp_min(0).cpu() ** weights[scale]
        else:
            a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return result


def pair_diversity(images: Tensor, pairs: int = 1000, *, seed: int = 0) -> float:
    """Mean MS-SSIM of ``pairs`` random pairs of distinct images of one set (lower: more diverse)."""
    if len(images) < 2:
        raise ValueError("pair_diversity needs at least two images")
    generator = torch.Generator().manual_seed(seed)
    first = torch.randint(len(images), (pairs,), generator=generator)
    second = (first + torch.randint(1, len(images), (pairs,), generator=generator)) % len(images)
    values = [ms_ssim(images[first[i:i + 250]], images[second[i:i + 250]]) for i in range(0, pairs, 250)]
    return float(torch.cat(values).mean())


def nearest_neighbours(queries: Tensor, pool: Tensor, k: int = 7, *, chunk: int = 1024) -> Tensor:
    """Indices ``(Q, k)`` of the ``k`` images of ``pool`` closest to each query (pixel L2), nearest first."""
    flat_queries = queries.flatten(1).float()
    best_distance = torch.full((len(queries), 0), 0.0)
    best_index = torch.zeros((len(queries), 0), dtype=torch.long)
    for start in range(0, len(pool), chunk):
        block = pool[start:start + chunk].flatten(1).float()
        distance = torch.cdist(flat_queries, block)
        merged = torch.cat([best_distance, distance], 1)
        indices = torch.cat([best_index, torch.arange(start, start + len(block)).expand(len(queries), -1)], 1)
        best_distance, order = merged.topk(min(k, merged.shape[1]), dim=1, largest=False)
        best_index = indices.gather(1, order)
    return best_index


def neighbour_grid(samples: Tensor, pool: Tensor, k: int = 7, gap: int = 2) -> Tensor:
    """One ``(3, H', W')`` image: a row per sample, the sample then its ``k`` nearest ``pool`` images."""
    index = nearest_neighbours(samples, pool, k)
    rows = [torch.cat([samples[i:i + 1], pool[index[i]]]) for i in range(len(samples))]
    side_h, side_w = samples.shape[-2:]
    columns = k + 1
    grid = torch.zeros(3, len(rows) * (side_h + gap) - gap, columns * (side_w + gap) - gap)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            top, left = r * (side_h + gap), c * (side_w + gap)
            grid[:, top:top + side_h, left:left + side_w] = image.float()
    return grid
