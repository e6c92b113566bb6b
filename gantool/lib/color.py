"""Colour-space helpers for colourisation: CIE Lab via kornia, gray detection, chroma transfer, colourfulness.

Why Lab: it separates lightness (L) from colour (a, b), so a colouriser can take L as given and predict
only ab, and the prediction can be made at a small working size and upsampled without losing detail:
the eye takes fine detail from lightness, not from chroma (the same reason JPEG subsamples chroma).

Ranges (kornia's sRGB D65 conversion, RGB in [0, 1]):

- ``L`` in [0, 100]; ``a`` in about [-86, 98] and ``b`` in about [-108, 95] for colours inside sRGB.
- Network convention (:func:`normalize_l`, :func:`normalize_ab`): ``L / 50 - 1`` in [-1, 1] and
  ``ab / AB_SCALE`` (110, as in Zhang et al.'s and pix2pix's colourisation code), so a tanh output covers
  the whole sRGB gamut.

Tensors are ``(B, C, H, W)`` float; conversions run in float32 whatever the input dtype (the cube roots
and powers of Lab are inaccurate in half precision). Gray detection also takes ``(H, W, C)`` numpy arrays,
the convention of :mod:`gantool.io`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gantool.image.color import REC601

#: ``ab`` units per network unit: ``ab = AB_SCALE * tanh_output``.
AB_SCALE = 110.0
#: Largest channel difference (in [0, 1] units) still counted as gray: 8-bit rounding and JPEG noise
#: leave a level or two between the channels of an image that was meant to be gray.
GRAY_TOLERANCE = 2.5 / 255


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """``(B, 3, H, W)`` sRGB in [0, 1] to Lab: L in [0, 100], a and b roughly in [-110, 110]."""
    import kornia

    return kornia.color.rgb_to_lab(rgb.float())


def lab_to_rgb(lab: Tensor) -> Tensor:
    """Lab (ranges as :func:`rgb_to_lab`) to sRGB clipped to [0, 1]; out-of-gamut colours are clipped."""
    import kornia

    return kornia.color.lab_to_rgb(lab.float(), clip=True).clamp_(0.0, 1.0)


def normalize_l(lightness: Tensor) -> Tensor:
    """L in [0, 100] to the network's [-1, 1]."""
    return lightness / 50.0 - 1.0


def denormalize_l(values: Tensor) -> Tensor:
    """Inverse of :func:`normalize_l`."""
    return (values + 1.0) * 50.0


def normalize_ab(ab: Tensor) -> Tensor:
    """ab in Lab units to network units (divided by :data:`AB_SCALE`)."""
    return ab / AB_SCALE


def denormalize_ab(values: Tensor) -> Tensor:
    """Inverse of :func:`normalize_ab`."""
    return values * AB_SCALE


def rec601_gray(rgb: Tensor, *, quantize: bool = True) -> Tensor:
    """``(B, 3, H, W)`` RGB to ``(B, 1, H, W)`` Rec. 601 luma: the gray photo a user would have.

    ``quantize`` rounds to 8-bit levels, as saving the gray image would; training inputs made this way
    match what inference later receives from gray files.
    """
    weights = torch.tensor(REC601, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    gray = (rgb * weights).sum(dim=1, keepdim=True)
    return (gray * 255.0).round() / 255.0 if quantize else gray


def gray_lightness(gray: Tensor) -> Tensor:
    """L of a ``(B, 1, H, W)`` gray image in [0, 1] (L of the neutral colour R = G = B = gray)."""
    return rgb_to_lab(gray.expand(-1, 3, -1, -1))[:, :1]


def is_gray(image: Tensor | np.ndarray, tolerance: float = GRAY_TOLERANCE) -> bool:
    """Whether an image carries no colour: one channel, or three channels equal within ``tolerance``.

    Accepts a ``(B, C, H, W)`` / ``(C, H, W)`` tensor or an ``(H, W, C)`` numpy array (:mod:`gantool.io`'s
    layout), values in [0, 1]; alpha must already be split off. The test is on the largest difference
    between channels, so one coloured pixel (a red date stamp) makes the image count as colour.
    """
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise ValueError(f"expected an (H, W, 1) or (H, W, 3) array, got shape {image.shape}")
        if image.shape[2] == 1:
            return True
        spread = np.max(image, axis=2) - np.min(image, axis=2)
        return bool(spread.max(initial=0.0) <= tolerance)
    if image.ndim not in (3, 4) or image.shape[-3] not in (1, 3):
        raise ValueError(f"expected a (B, C, H, W) or (C, H, W) tensor with C 1 or 3, got {tuple(image.shape)}")
    if image.shape[-3] == 1:
        return True
    spread = image.amax(dim=-3) - image.amin(dim=-3)
    return bool(spread.numel() == 0 or spread.max().item() <= tolerance)


def transfer_chroma(ab: Tensor, lightness: Tensor) -> Tensor:
    """Combine chroma predicted at any size with full-resolution lightness; returns sRGB in [0, 1].

    ``ab`` (``(B, 2, h, w)``, Lab units) is resized to the size of ``lightness`` (``(B, 1, H, W)``, L in
    [0, 100]): bilinear when enlarging (smooth chroma, no ringing), antialiased when shrinking. L is used
    untouched, so every detail of the original survives; only colour is interpolated.
    """
    size = tuple(lightness.shape[-2:])
    ab = ab.float()
    if tuple(ab.shape[-2:]) != size:
        shrinking = ab.shape[-2] > size[0] or ab.shape[-1] > size[1]
        ab = F.interpolate(ab, size=size, mode="bilinear", align_corners=False, antialias=shrinking)
    return lab_to_rgb(torch.cat([lightness.float(), ab], dim=1))


def colorfulness(rgb: Tensor) -> Tensor:
    """Hasler and Suesstrunk's colourfulness metric per image, ``(B,)`` float64.

    ``M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)`` with ``rg = R - G`` and
    ``yb = (R + G) / 2 - B`` on 0-255 values (Hasler & Suesstrunk 2003). A gray image scores 0; in their
    survey about 33 reads as "moderately", 45 as "averagely" and 59 as "quite" colourful.
    ``rgb`` is ``(B, 3, H, W)`` in [0, 1]; a 1-channel image scores 0.
    """
    if rgb.ndim != 4 or rgb.shape[1] not in (1, 3):
        raise ValueError(f"expected (B, 3, H, W) or (B, 1, H, W), got {tuple(rgb.shape)}")
    if rgb.shape[1] == 1:
        return torch.zeros(rgb.shape[0], dtype=torch.float64, device=rgb.device)
    values = rgb.to(torch.float64) * 255.0
    red, green, blue = values.unbind(dim=1)
    rg = (red - green).flatten(1)
    yb = (0.5 * (red + green) - blue).flatten(1)
    spread = torch.sqrt(rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False))
    offset = torch.sqrt(rg.mean(dim=1).square() + yb.mean(dim=1).square())
    return spread + 0.3 * offset
