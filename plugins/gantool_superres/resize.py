"""MATLAB-compatible bicubic ``imresize`` for torch tensors (the resize that makes SR benchmark inputs).

Super-resolution papers make their low-resolution inputs with MATLAB's ``imresize(hr, 1/s, 'bicubic')`` and
report bicubic upscaling with the same function, so training and evaluating against those numbers needs
the same arithmetic. The rules MATLAB follows, reproduced here:

- Cubic convolution kernel with ``a = -0.5`` (Keys), support 4.
- When shrinking (scale < 1) the kernel is stretched by ``1/scale`` and scaled by ``scale`` (antialiasing),
  so its support grows to ``4/scale`` input pixels.
- Output pixel ``x`` (1-based) samples input position ``u = x/scale + 0.5 (1 - 1/scale)`` (pixel centres
  aligned); taps run from ``floor(u - width/2)`` over ``ceil(width) + 2`` positions and are normalised.
- Taps outside the image repeat the edge pixel. (Several published Python ports mirror
  instead, ``padding="symmetric"``. Measured on Set5 with 8-bit rounding between passes, replication
  reproduces MATLAB's files exactly at x3 and to 0.006 (x2) / 0.0006 (x4) grey levels on average, while
  mirroring is off by ~0.02-0.04 with edge pixels up to 7 levels wrong; ``benchmarks/check_imresize.py``.)
- Each axis is resized separately, the axis with the smaller scale first. On ``uint8`` images MATLAB
  rounds (and saturates) the intermediate result to 8 bits; ``quantize=255`` does the same.

Weights depend only on the sizes, so they are computed once in float64 and cached.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import torch
from torch import Tensor

Padding = Literal["replicate", "symmetric"]


def cubic(x: Tensor) -> Tensor:
    """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB's ``bicubic``), elementwise."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    inner = 1.5 * ax3 - 2.5 * ax2 + 1.0
    outer = -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    return torch.where(ax <= 1, inner, torch.where(ax <= 2, outer, torch.zeros_like(ax)))


@functools.lru_cache(maxsize=64)
def contributions(
    in_length: int, out_length: int, scale: float, antialias: bool = True, padding: Padding = "replicate",
) -> tuple[Tensor, Tensor]:
    """Which input pixels, with which weights, make each output pixel along one axis.

    Args:
        in_length: Input size along the axis.
        out_length: Output size along the axis.
        scale: Output/input ratio used for the sampling positions (MATLAB uses the requested factor, not
            ``out_length / in_length``, when a factor is given).
        antialias: Stretch the kernel when shrinking.
        padding: ``replicate`` (clamp to the edge; matches MATLAB's output) or ``symmetric`` (mirror).

    Returns:
        ``(indices, weights)``, both ``(out_length, taps)``: 0-based input indices (already folded into
        the image) as int64 and float64 weights summing to 1 per row.
    """
    if in_length < 1 or out_length < 1:
        raise ValueError(f"cannot resize {in_length} pixels to {out_length}")
    shrink = scale < 1 and antialias
    kernel_width = 4.0 / scale if shrink else 4.0
    x = torch.arange(1, out_length + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    indices = left.unsqueeze(1) + torch.arange(taps, dtype=torch.float64).unsqueeze(0)  # 1-based
    distance = u.unsqueeze(1) - indices
    weights = scale * cubic(distance * scale) if shrink else cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)
    keep = (weights != 0).any(dim=0)  # MATLAB drops tap columns that are zero for every output pixel
    weights, indices = weights[:, keep], indices[:, keep]
    zero_based = indices.long() - 1
    if padding == "replicate":
        folded = zero_based.clamp(0, in_length - 1)
    elif padding == "symmetric":  # 0..n-1, then n-1..0, periodically
        period = 2 * in_length
        wrapped = torch.remainder(zero_based, period)
        folded = torch.where(wrapped < in_length, wrapped, period - 1 - wrapped)
    else:
        raise ValueError(f"padding must be 'replicate' or 'symmetric', got {padding!r}")
    return folded.contiguous(), weights.contiguous()


def _resize_axis(image: Tensor, dim: int, out_length: int, scale: float, antialias: bool,
                 padding: Padding) -> Tensor:
    indices, weights = contributions(image.shape[dim], out_length, scale, antialias, padding)
    indices = indices.to(image.device)
    weights = weights.to(device=image.device, dtype=image.dtype)
    view = [1] * image.dim()
    view[dim] = out_length
    result = None
    # One gather per tap keeps memory at one output-sized buffer (a single big gather would need taps x).
    for tap in range(indices.shape[1]):
        term = image.index_select(dim, indices[:, tap]) * weights[:, tap].reshape(view)
        result = term if result is None else result.add_(term)
    assert result is not None
    return result


def output_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """MATLAB's output size for a scale factor: ``ceil(size * scale)`` (with float noise ignored)."""
    return (max(1, math.ceil(height * scale - 1e-9)), max(1, math.ceil(width * scale - 1e-9)))


def imresize(
    image: Tensor,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
    padding: Padding = "replicate",
    quantize: int | None = None,
) -> Tensor:
    """Resize like MATLAB's ``imresize(image, scale, 'bicubic')`` or ``imresize(image, [h w], 'bicubic')``.

    The result is not clamped or rounded: cubic overshoot can leave [0, 1] slightly, as in MATLAB before
    its conversion back to integers. Differentiable with respect to ``image``.

    Args:
        image: ``(..., H, W)`` floating-point tensor, typically ``(B, C, H, W)`` RGB in [0, 1], on any device.
        scale: Factor for both axes (0.25 shrinks 4x). The output is ``ceil(H * scale)`` by
            ``ceil(W * scale)`` and sampling positions use this exact factor, as MATLAB does.
        size: ``(height, width)`` of the output instead of ``scale``; each axis then uses its own ratio.
        antialias: Widen the kernel when shrinking (MATLAB's default, ``true``).
        padding: Edge handling, ``replicate`` (matches MATLAB's files) or ``symmetric`` (mirrored).
        quantize: If given (255 for 8-bit), round the intermediate and final results to multiples of
            ``1/quantize`` clamped to [0, 1], as MATLAB does on integer images. Use it to reproduce
            benchmark files; leave it ``None`` for training (it blocks gradients).

    Returns:
        ``(..., h, w)`` tensor of the same dtype and device.

    Raises:
        ValueError: neither or both of ``scale`` and ``size``, a non-positive scale, or an integer tensor.
    """
    if (scale is None) == (size is None):
        raise ValueError("imresize needs exactly one of scale or size")
    if image.dim() < 2:
        raise ValueError(f"imresize needs a (..., H, W) tensor, got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"imresize needs a floating-point tensor, got {image.dtype}; convert to float first")
    height, width = image.shape[-2:]
    if scale is not None:
        if scale <= 0:
            raise ValueError(f"imresize scale must be positive, got {scale}")
        out_h, out_w = output_size(height, width, scale)
        scale_h = scale_w = float(scale)
    else:
        out_h, out_w = (int(size[0]), int(size[1]))  # type: ignore[index]
        if out_h < 1 or out_w < 1:
            raise ValueError(f"imresize size must be positive, got {size}")
        scale_h, scale_w = out_h / height, out_w / width
    if (out_h, out_w) == (height, width) and scale_h == 1.0 and scale_w == 1.0:
        return image.clone() if quantize is None else _quantize(image, quantize)
    # MATLAB resizes along the dimension with the smaller scale first (fewer pixels for the second pass).
    steps = [(-2, out_h, scale_h), (-1, out_w, scale_w)]
    if scale_w < scale_h:
        steps.reverse()
    result = image
    for dim, length, factor in steps:
        if result.shape[dim] != length or factor != 1.0:
            result = _resize_axis(result, result.dim() + dim, length, factor, antialias, padding)
            if quantize is not None:
                result = _quantize(result, quantize)
    return result


def _quantize(image: Tensor, levels: int) -> Tensor:
    return (image * levels).round().clamp(0, levels) / levels
