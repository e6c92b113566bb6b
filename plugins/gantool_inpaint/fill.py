"""Inference of ``inpaint`` around the network: masks, dilation, crops around holes, feathered compositing.

A large image is never squashed to the network's training size (``crop``): each hole region gets a window
of at least that size around it (with context on every side), the network fills it at full resolution up
to ``--window`` pixels (default 4x the crop; the generator is fully convolutional), a larger window is
shrunk to that, and the fill is pasted back at full resolution. With the TELEA prior the full-resolution
TELEA fill is kept and only the network's correction is upsampled, so detail is not lost to the downscale.

Known pixels come back bit for bit: the result is the original wherever the blending weight is zero,
which is everywhere outside the dilated holes. Inside the ring added by ``--dilate`` the weight ramps
from 1 at the original hole to 0 at the ring's edge, so no seam shows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gantool_inpaint.data import THRESHOLD, make_prior

#: How red the holes are tinted by ``--show-mask``.
OVERLAY = (1.0, 0.0, 0.0)
#: Filler: ``(image (1, 3, h, w) in [0, 1], hole (1, 1, h, w) in {0, 1})`` to the filled image, same size.
Filler = Callable[[Tensor, Tensor], Tensor]


def binarise(mask: Tensor, invert: bool = False) -> Tensor:
    """``(B, 1, H, W)`` in [0, 1] to a float mask, 1 = hole: above 127 of 255, or below with ``invert``."""
    hole = mask > THRESHOLD
    return (~hole if invert else hole).float()


def dilate(hole: Tensor, pixels: int) -> Tensor:
    """Grow the holes by ``pixels`` (a square neighbourhood)."""
    if pixels <= 0:
        return hole
    return F.max_pool2d(hole, 2 * pixels + 1, stride=1, padding=pixels)


def feather(hole: Tensor, pixels: int) -> Tensor:
    """Blending weight: 1 in the holes, ``1 - k / (pixels + 1)`` at distance k of the ring, 0 beyond."""
    weight, grown = hole, hole
    for k in range(1, pixels + 1):
        grown = F.max_pool2d(grown, 3, stride=1, padding=1)
        weight = torch.maximum(weight, grown * (1.0 - k / (pixels + 1)))
    return weight


def composite(image: Tensor, fill: Tensor, weight: Tensor) -> Tensor:
    """``fill`` blended into ``image`` by ``weight``; exactly ``image`` where the weight is 0."""
    return torch.where(weight > 0, image * (1 - weight) + fill * weight, image)


def overlay(image: Tensor, hole: Tensor) -> Tensor:
    """The image with its holes tinted half red (``--show-mask``)."""
    red = torch.tensor(OVERLAY, dtype=image.dtype, device=image.device)[None, :, None, None]
    return image * (1 - 0.5 * hole) + red * 0.5 * hole


def windows(hole: Tensor, side: int) -> list[tuple[int, int, int, int]]:
    """Windows ``(top, left, height, width)`` that together cover every hole pixel of ``(H, W)`` ``hole``.

    One per hole region (largest first; a region already inside an earlier window is skipped), at least
    ``side`` pixels (or the whole image) and a quarter of the region's size larger on every side.
    """
    from gantool.image.classical import hole_boxes

    height, width = hole.shape
    remaining = hole.cpu().numpy() > 0.5
    found = []
    for top, left, bottom, right in hole_boxes(remaining):
        if not remaining[top:bottom, left:right].any():
            continue
        extent = max(bottom - top, right - left)
        size = max(side, extent + 2 * max(side // 8, extent // 4))
        h, w = min(size, height), min(size, width)
        y = min(max((top + bottom - h) // 2, 0), height - h)
        x = min(max((left + right - w) // 2, 0), width - w)
        remaining[y : y + h, x : x + w] = False
        found.append((y, x, h, w))
    return found


def fill_holes(image: Tensor, hole: Tensor, network: Filler, *, least: int, most: int, prior: str) -> Tensor:
    """``image`` ``(1, 3, H, W)`` with every hole (``(1, 1, H, W)``, 1 = hole) filled, window by window.

    Windows are at least ``least`` pixels (see :func:`windows`). One larger than ``most`` is shrunk to it for the
    network (holes shrink by "any pixel"), and the network's output is enlarged back; with the TELEA prior
    only its difference from TELEA is enlarged and added to TELEA's full-resolution fill. Earlier windows'
    fills are context for later ones.
    """
    work = image.clone()
    for top, left, h, w in windows(hole[0, 0], least):
        region = (..., slice(top, top + h), slice(left, left + w))
        picture, holes = work[region], hole[region]
        scale = min(1.0, most / max(h, w))
        if scale >= 1.0:
            filled = network(picture, holes)
        else:
            small = (max(4, round(h * scale)), max(4, round(w * scale)))
            small_picture = F.interpolate(picture, size=small, mode="bilinear", antialias=True, align_corners=False)
            small_holes = (F.interpolate(holes, size=small, mode="area") > 0).float()
            out = network(small_picture, small_holes)
            if prior == "telea":
                correction = out - make_prior(small_picture, small_holes, prior)
                full = make_prior(picture, holes, prior)
                filled = full + F.interpolate(correction, size=(h, w), mode="bilinear", align_corners=False)
            else:
                filled = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        work[region] = torch.where(holes > 0.5, filled.clamp(0, 1), picture)
    return work
