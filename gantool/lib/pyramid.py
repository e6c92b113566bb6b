"""Gaussian and Laplacian image pyramids (Burt and Adelson 1983), as LapGAN and the SWD metric use them.

One construction serves both: :func:`pyr_down` blurs with the 5x5 binomial kernel
``[1, 4, 6, 4, 1]^T [1, 4, 6, 4, 1] / 256`` (mirror borders, kornia's separable filter) and keeps every
second pixel, as ``cv2.pyrDown`` does; :func:`pyr_up` inserts zeros and blurs with four times that kernel,
as ``cv2.pyrUp``. Not kornia's own ``pyrdown``/``pyrup``: those resample bilinearly (a half-pixel shift
down, a second blur up), while ProGAN's SWD protocol is defined with OpenCV's pyramid, and the bundled
LapGAN levels were trained on this ``pyr_up``.

A Laplacian level is ``image - pyr_up(pyr_down(image))`` and the coarsest level is the Gaussian residual,
so :func:`collapse` (add the bands back from coarse to fine) reproduces the image up to float rounding (one
ulp per level) whatever the filters are: the reconstruction is exact by construction.

Tensors are ``(B, C, H, W)`` float; sides must be divisible by ``2 ** (levels - 1)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


def _blur(image: Tensor, gain: float = 1.0) -> Tensor:
    """Separable 5x5 binomial blur with reflected borders, per channel, times ``gain``."""
    import kornia

    taps = torch.tensor(_BINOMIAL, dtype=image.dtype, device=image.device).view(1, 5) / 16.0
    return kornia.filters.filter2d_separable(image, taps * gain, taps, border_type="reflect")


def pyr_down(image: Tensor) -> Tensor:
    """Half the size: binomial blur, then every second row and column (``cv2.pyrDown``)."""
    if image.shape[-1] % 2 or image.shape[-2] % 2:
        raise ValueError(f"pyr_down needs even sides, got {tuple(image.shape[-2:])}")
    return _blur(image)[..., ::2, ::2]


def pyr_up(image: Tensor) -> Tensor:
    """Double the size: zeros between the pixels, then the binomial blur times 4 (``cv2.pyrUp``)."""
    b, c, h, w = image.shape
    spread = image.new_zeros(b, c, 2 * h, 2 * w)
    spread[..., ::2, ::2] = image
    return _blur(spread, gain=4.0)


def gaussian_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """``levels`` images from full size (index 0) down, each half the size of the one before."""
    if levels < 1:
        raise ValueError(f"a pyramid needs at least one level, got {levels}")
    side = 2 ** (levels - 1)
    if image.shape[-1] % side or image.shape[-2] % side:
        raise ValueError(f"{levels} pyramid levels need sides divisible by {side}, got {tuple(image.shape[-2:])}")
    pyramid = [image]
    for _ in range(levels - 1):
        pyramid.append(pyr_down(pyramid[-1]))
    return pyramid


def laplacian_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    """Band-pass images from full size down; the last entry is the Gaussian residual (the coarse image)."""
    gaussian = gaussian_pyramid(image, levels)
    bands = [fine - pyr_up(coarse) for fine, coarse in zip(gaussian, gaussian[1:], strict=False)]
    return [*bands, gaussian[-1]]


def collapse(pyramid: list[Tensor]) -> Tensor:
    """The image a :func:`laplacian_pyramid` came from: upsample the coarsest and add the bands back."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = pyr_up(image) + band
    return image
