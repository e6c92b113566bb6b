"""Alpha channels around a network that only sees colour: fill what no one sees, resize alpha to the result.

The colour under fully transparent pixels is arbitrary (often black) and a network mixes neighbours, so it
would darken visible edges ("dark fringes"); :func:`fill_transparent` first gives those pixels the colour
of their visible neighbours. Visible pixels reach the network unchanged. :func:`resize_alpha` brings the
original alpha to the output size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: Alpha at or below this is fully transparent (0 in an 8-bit file), so the colour stored there is arbitrary.
TRANSPARENT_ALPHA = 0.5 / 255



def fill_transparent(color: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Give fully transparent pixels the colour of the nearest visible ones; visible pixels are unchanged.

    Why not premultiply? The usual cure for dark fringes is to run the network on ``colour * alpha`` and
    divide its output by the resized alpha. That is exact for a linear resize, but a network is neither
    linear nor has the bicubic kernel the alpha is resized with, so the division leaves fringes (a red disc
    on transparent black, compact x4 model: red falls to 0.84 where alpha > 0.5 and to 0.46 where alpha > 0.1;
    0.59 / 0.05 without any treatment) and amplifies the network's own detail by ``1 / alpha`` in
    semi-transparent areas (uniform alpha 0.3 moved pixels by up to 0.18). Filling only changes pixels no one
    sees, keeps the network on the images it was trained on, and gave red 1.00 on that disc. It is exact for
    the edges of opaque shapes; where two semi-transparent colours meet, they mix by the kernel's weights
    rather than by alpha (a small hue shift, never a darkening).

    The fill is a push-pull pyramid (alpha-weighted 2x2 means going down, bilinear up), so it reaches across
    transparent areas of any size in linear time.

    Args:
        color: ``(B, C, H, W)`` straight (not premultiplied) colour.
        alpha: ``(B, 1, H, W)`` in [0, 1].

    Returns:
        ``color`` itself when nothing is transparent (or everything is), else a filled copy.
    """
    visible = alpha > TRANSPARENT_ALPHA
    if bool(visible.all()) or not bool(visible.any()):
        return color
    weight = alpha * visible
    return torch.where(visible, color, _pull(color * weight, weight))


def _pull(premultiplied: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Alpha-weighted mean colour where ``weight > 0``; elsewhere the next coarser level's, upsampled."""
    color = premultiplied / weight.clamp_min(1e-12)
    holes = weight <= 0
    if not bool(holes.any()):
        return color
    coarse = _pull(F.avg_pool2d(premultiplied, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True))
    upsampled = F.interpolate(coarse, size=color.shape[-2:], mode="bilinear", align_corners=False)
    return torch.where(holes, upsampled, color)


def resize_alpha(alpha: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """``(H, W, 1)`` alpha resized to ``size`` (bicubic, clamped to [0, 1]); unchanged when it fits.

    Antialiased only when it shrinks (``--outscale`` below 1): upscaling wants the plain bicubic kernel.
    """
    if alpha is None or alpha.shape[:2] == tuple(size):
        return alpha
    shrink = size[0] < alpha.shape[0] or size[1] < alpha.shape[1]
    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(alpha[..., 0]))[None, None]
        out = F.interpolate(t, size=tuple(size), mode="bicubic", align_corners=False, antialias=shrink)
        return out[0, 0].clamp_(0.0, 1.0).numpy()[..., None].copy()
