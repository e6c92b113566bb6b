"""Parzen-window log-likelihood: the metric the GAN and LapGAN papers reported, kept for comparison with them.

Goodfellow et al. (2014) and Denton et al. (2015, CIFAR-10: GAN -3617 +- 353 against LapGAN -1799 +- 826)
fit an isotropic Gaussian kernel density to K generated images (flattened, values in [0, 1]), pick the kernel
width sigma from ``logspace(-1, 0, 10)`` that gives validation images the highest mean log-likelihood, and
report the mean log-likelihood of test images in nats with its standard error (the protocol of
``goodfeli/adversarial``'s ``parzen_ll.py``):

    log p(x) = logmeanexp_i(-|x - c_i|^2 / (2 sigma^2)) - D log(sigma sqrt(2 pi))

Theis, van den Oord and Bethge (2016) show that it ranks models unreliably in high dimensions: a set that
copies the training images scores well, and the estimate depends more on sigma and K than on sample
quality. Report it next to a KDE on as many *training* images, never as the only score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

#: The kernel widths searched, ``numpy.logspace(-1, 0, 10)`` as in the papers' protocol.
SIGMAS: tuple[float, ...] = tuple(10 ** (-1 + step / 9) for step in range(10))
#: Points per block of the distance matrix: bounds its memory at ``CHUNK x K`` float64 values.
CHUNK = 256


@dataclass(frozen=True)
class ParzenResult:
    """The chosen kernel width, the test log-likelihood (mean over test images, nats) and its standard error,
    and the validation mean per searched width (to see whether the best width sits at an end of the grid)."""

    sigma: float
    mean: float
    stderr: float
    validation: dict[float, float]


def _squared_distances(points: Tensor, centres: Tensor, centre_norms: Tensor) -> Tensor:
    """``(P, K)`` squared L2 distances (float64, clamped at 0 against rounding)."""
    return (points.square().sum(1, keepdim=True) + centre_norms - 2 * points @ centres.T).clamp_min(0)


def log_likelihoods(points: Tensor, centres: Tensor, sigmas: tuple[float, ...]) -> Tensor:
    """``(len(sigmas), P)`` log-densities (nats) of ``points`` under the Gaussian KDE on ``centres`` at each width.

    Works on ``CHUNK`` points at a time, so memory stays at a few ``CHUNK x K`` blocks however many points.

    Args:
        points: ``(P, ...)`` images or vectors, values in [0, 1].
        centres: ``(K, ...)`` of the same shape.
        sigmas: Kernel widths (standard deviations, per dimension).
    """
    flat_points = points.reshape(len(points), -1).double()
    flat_centres = centres.reshape(len(centres), -1).double()
    if flat_points.shape[1] != flat_centres.shape[1]:
        raise ValueError(f"points of {flat_points.shape[1]} values against centres of {flat_centres.shape[1]}")
    offset = flat_centres.mean(0, keepdim=True)  # centring first: less cancellation in the dot-product form
    flat_centres, flat_points = flat_centres - offset, flat_points - offset
    centre_norms = flat_centres.square().sum(1)
    dims, count = flat_points.shape[1], len(flat_centres)
    constants = [math.log(count) + dims * math.log(sigma * math.sqrt(2 * math.pi)) for sigma in sigmas]
    blocks = []
    for block in flat_points.split(CHUNK):
        distances = _squared_distances(block, flat_centres, centre_norms)
        blocks.append(torch.stack([torch.logsumexp(distances / (-2 * sigma**2), dim=1) - constant
                                   for sigma, constant in zip(sigmas, constants, strict=True)]))
    return torch.cat(blocks, dim=1)


def parzen_log_likelihood(centres: Tensor, validation: Tensor, test: Tensor,
                          sigmas: tuple[float, ...] = SIGMAS) -> ParzenResult:
    """The protocol of the module docstring: sigma chosen on ``validation``, the score measured on ``test``."""
    if len(centres) < 1 or len(validation) < 1 or len(test) < 2:
        raise ValueError(f"Parzen needs centres, validation images and 2 or more test images; got {len(centres)}, "
                         f"{len(validation)} and {len(test)}")
    validation_means = log_likelihoods(validation, centres, sigmas).mean(1)
    best = int(validation_means.argmax())
    scores = log_likelihoods(test, centres, (sigmas[best],))[0]
    return ParzenResult(sigma=sigmas[best], mean=float(scores.mean()),
                        stderr=float(scores.std(correction=0) / math.sqrt(len(scores))),  # NumPy's std
                        validation={sigma: float(value) for sigma, value in zip(sigmas, validation_means,
                                                                                 strict=True)})
