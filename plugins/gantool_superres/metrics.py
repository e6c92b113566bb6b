"""PSNR and SSIM the way super-resolution papers report them: on the luma (Y) channel, borders cropped.

- Y is ITU-R BT.601 "studio swing": ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with RGB in [0, 1], so Y
  lies in [16, 235]; PSNR uses a peak of 255.
- ``border`` pixels (conventionally the scale factor) are removed on every side first, because bicubic
  and most networks are unreliable at the image edge.
- SSIM (Wang et al. 2004) uses an 11x11 Gaussian window with sigma 1.5 on Y in [0, 255], constants
  ``(0.01 * 255)^2`` and ``(0.03 * 255)^2``, and averages the map over valid positions only (no padding).

Inputs are ``(B, 3, H, W)`` RGB (or ``(B, 1, H, W)`` gray, taken as R = G = B) floats in [0, 1]. Papers
evaluate saved 8-bit images; quantise first with :func:`to_8bit` to match them. Results are per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from gantool.lib.metrics import to_8bit

__all__ = ["psnr_from_mse", "psnr_y", "rgb_to_y", "ssim_y", "to_8bit"]

_Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(image: Tensor) -> Tensor:
    """``(B, 3, H, W)`` RGB (or ``(B, 1, H, W)`` gray) in [0, 1] to ``(B, 1, H, W)`` BT.601 Y in [16, 235]."""
    if image.dim() != 4 or image.shape[1] not in (1, 3):
        raise ValueError(f"got shape {tuple(image.shape)}; expected (B, 3, H, W) RGB or (B, 1, H, W) gray")
    image = image.to(torch.float64)
    if image.shape[1] == 1:
        return 16.0 + sum(_Y_WEIGHTS) * image
    weights = torch.tensor(_Y_WEIGHTS, dtype=torch.float64, device=image.device).view(1, 3, 1, 1)
    return 16.0 + (image * weights).sum(dim=1, keepdim=True)


def _prepare(prediction: Tensor, target: Tensor, border: int) -> tuple[Tensor, Tensor]:
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    y_pred, y_true = rgb_to_y(prediction), rgb_to_y(target)
    if border > 0:
        if min(y_pred.shape[-2:]) <= 2 * border:
            raise ValueError(f"image {tuple(prediction.shape[-2:])} is too small to crop a {border}-pixel border")
        y_pred = y_pred[..., border:-border, border:-border]
        y_true = y_true[..., border:-border, border:-border]
    return y_pred, y_true


def psnr_y(prediction: Tensor, target: Tensor, border: int = 0) -> Tensor:
    """PSNR in dB on Y (peak 255) per image: ``(B,)`` float64; ``inf`` where the images are identical."""
    y_pred, y_true = _prepare(prediction, target, border)
    mse = (y_pred - y_true).pow(2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0**2 / mse)  # mse 0 gives inf, as it should


def _gaussian_1d(size: int, sigma: float, device: torch.device) -> Tensor:
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_y(prediction: Tensor, target: Tensor, border: int = 0, *, window: int = 11, sigma: float = 1.5) -> Tensor:
    """SSIM on Y in [0, 255] per image: ``(B,)`` float64, 1 for identical images."""
    y_pred, y_true = _prepare(prediction, target, border)
    if min(y_pred.shape[-2:]) < window:
        raise ValueError(f"image {tuple(y_pred.shape[-2:])} (after the border) is smaller than the "
                         f"{window}x{window} SSIM window")
    g = _gaussian_1d(window, sigma, y_pred.device)
    rows, cols = g.view(1, 1, window, 1), g.view(1, 1, 1, window)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: Tensor) -> Tensor:
        # The Gaussian is separable: one 1-D pass per axis, 'valid' positions only (MATLAB's filter2 'valid').
        return F.conv2d(F.conv2d(x, rows), cols)

    mu_x, mu_y = blur(y_pred), blur(y_true)
    var_x = blur(y_pred * y_pred) - mu_x**2
    var_y = blur(y_true * y_true) - mu_y**2
    cov = blur(y_pred * y_true) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))


def psnr_from_mse(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB for a mean squared error (helper for expected values in tests and reports)."""
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)
