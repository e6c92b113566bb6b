"""Colour as a class: quantised ab bins, soft targets, class rebalancing and annealed-mean decoding.

Why: a colouriser trained with L1 or L2 on ab predicts the average of the plausible colours of a region,
and the average of red, green and blue is a sepia gray. Predicting a *distribution* over ab bins and
learning it with cross-entropy keeps every mode (Zhang, Isola and Efros 2016, "Colorful Image
Colorization"); weighting rare colours up stops the prior of desaturated skies and walls from winning,
and decoding by an *annealed mean* (the mean of the distribution sharpened by a temperature) picks
vivid colour without the speckle of the plain mode.

All ab values here are in Lab units (``a`` and ``b`` about -110..110, :mod:`gantool.lib.color`).

- :func:`gamut_bins`: centres of the grid cells (default 10 units) that hold at least one sRGB colour,
  found by sampling the RGB cube and converting it to Lab: 262 bins at grid 10.
- :func:`soft_encode`: a target ab as weights on its ``neighbours`` nearest bins (Gaussian kernel).
- :func:`rebalancing_weights`: per-bin weights from an empirical histogram (:func:`bin_histogram`),
  smoothed, mixed with uniform and scaled so their expectation under the data is 1.
- :func:`rebalanced_cross_entropy`: the loss; :func:`annealed_mean`: the decoding.
- :class:`ABClassifier`: a network of bin logits that carries its bins and rebalancing weights as buffers,
  so checkpoints resume exactly and a model file knows its own bins.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ABClassifier", "annealed_mean", "bin_histogram", "gamut_bins", "nearest_bins", "rebalanced_cross_entropy",
           "rebalancing_weights", "soft_encode"]

#: Side of an ab bin (Lab units), as in Zhang et al.
GRID = 10.0
#: Gaussian widths (Lab units) of the soft encoding and of the histogram smoothing.
SOFT_SIGMA = 5.0
SMOOTH_SIGMA = 5.0
#: Bins that share a target's weight in the soft encoding.
NEIGHBOURS = 5


@functools.lru_cache(maxsize=4)
def _gamut_bins(grid: float, steps: int) -> Tensor:
    from gantool.lib.color import rgb_to_lab

    levels = torch.linspace(0.0, 1.0, steps)
    cube = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(1, 3, -1, 1)
    ab = rgb_to_lab(cube)[0, 1:, :, 0]
    cells = torch.unique(torch.round(ab / grid).to(torch.int64).T, dim=0)  # sorted by a, then b
    return cells.to(torch.float32) * grid


def gamut_bins(grid: float = GRID, *, steps: int = 96) -> Tensor:
    """``(Q, 2)`` centres (a, b) of the ab cells of side ``grid`` that some sRGB colour falls into.

    The RGB cube is sampled at ``steps`` levels per channel and converted to Lab (kornia's D65 sRGB); a cell
    counts when one sample rounds to it. Deterministic and sorted (by a, then b), so a model built from
    the same code gets the same bins; models also store them (:class:`ABClassifier`).
    """
    return _gamut_bins(float(grid), int(steps)).clone()


def _squared_distances(ab: Tensor, bins: Tensor) -> Tensor:
    """``(B, Q, H, W)`` squared distances of every pixel of ``(B, 2, H, W)`` to every bin."""
    ab = ab.float()
    bins = bins.to(ab.device, torch.float32)
    cross = torch.einsum("bchw,qc->bqhw", ab, bins)
    return (ab.square().sum(1, keepdim=True) - 2.0 * cross + bins.square().sum(1).view(1, -1, 1, 1)).clamp_(min=0)


def nearest_bins(ab: Tensor, bins: Tensor, count: int = 1) -> tuple[Tensor, Tensor]:
    """Indices ``(B, count, H, W)`` of the ``count`` nearest bins of each pixel (nearest first) and the
    squared distances to them."""
    distances, indices = _squared_distances(ab, bins).topk(count, dim=1, largest=False, sorted=True)
    return indices, distances


def soft_encode(ab: Tensor, bins: Tensor, *, neighbours: int = NEIGHBOURS,
                sigma: float = SOFT_SIGMA) -> tuple[Tensor, Tensor]:
    """Soft class targets of ``(B, 2, H, W)`` ab: ``(indices, weights)``, each ``(B, neighbours, H, W)``.

    The weights are a Gaussian of the distance to each of the nearest bins, normalised to sum to 1 per
    pixel; index 0 along dim 1 is the nearest bin, which also has the largest weight. Sparse on purpose:
    a dense ``(B, Q, H, W)`` target would cost Q / ``neighbours`` times the memory.
    """
    indices, distances = nearest_bins(ab, bins, neighbours)
    weights = torch.softmax(-distances / (2.0 * sigma**2), dim=1)
    return indices, weights


def bin_histogram(ab: Tensor, bins: Tensor) -> Tensor:
    """``(Q,)`` float64 counts of the pixels of ``(B, 2, H, W)`` ab per nearest bin (add them up over batches)."""
    indices, _ = nearest_bins(ab, bins)
    return torch.bincount(indices.flatten().cpu(), minlength=len(bins)).to(torch.float64)


def rebalancing_weights(counts: Tensor, bins: Tensor, *, sigma: float = SMOOTH_SIGMA, mix: float = 0.5) -> Tensor:
    """Per-bin loss weights ``(Q,)`` float32 from a histogram of the training data's ab (:func:`bin_histogram`).

    ``w ~ 1 / ((1 - mix) * p_smooth + mix / Q)`` with ``p_smooth`` the empirical distribution blurred by a
    Gaussian of ``sigma`` Lab units over the bins (mass kept); then scaled so that the expected weight
    under the empirical distribution, ``sum(p * w)``, is 1 (the loss keeps its scale). ``mix`` 1 gives
    equal weights (no rebalancing); smaller values up-weight rare colours more.
    """
    counts = counts.to(torch.float64).cpu()
    if counts.ndim != 1 or len(counts) != len(bins):
        raise ValueError(f"expected {len(bins)} counts, got shape {tuple(counts.shape)}")
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"mix must be in [0, 1], got {mix}")
    total = counts.sum()
    if total <= 0:
        raise ValueError("the histogram is empty: no pixels to estimate rebalancing weights from")
    empirical = counts / total
    centres = bins.to(torch.float64).cpu()
    kernel = torch.exp(-torch.cdist(centres, centres).square() / (2.0 * sigma**2))
    kernel = kernel / kernel.sum(0, keepdim=True)  # column r spreads bin r's mass, keeping it
    smooth = kernel @ empirical
    weights = 1.0 / ((1.0 - mix) * smooth + mix / len(bins))
    weights = weights / (empirical * weights).sum()
    return weights.to(torch.float32)


def rebalanced_cross_entropy(logits: Tensor, ab: Tensor, bins: Tensor, weights: Tensor | None = None) -> Tensor:
    """Mean over pixels of ``w(nearest bin) * CE(soft target, softmax(logits))``; logits ``(B, Q, H, W)``,
    target ab ``(B, 2, H, W)`` (Lab units) at the logits' size; ``weights`` None means all 1."""
    log_probs = F.log_softmax(logits.float(), dim=1)
    indices, targets = soft_encode(ab, bins)
    per_pixel = -(targets * log_probs.gather(1, indices)).sum(1)
    if weights is not None:
        per_pixel = per_pixel * weights.to(per_pixel.device, per_pixel.dtype)[indices[:, 0]]
    return per_pixel.mean()


def divide_out_rebalancing(logits: Tensor, weights: Tensor, strength: float) -> Tensor:
    """Logits with ``strength`` of the training's rebalancing divided out of their distribution.

    Rebalanced cross-entropy makes a network predict roughly ``w(q) * p(q)`` (rare, saturated colours
    boosted by their weights ``w``) instead of the colour distribution ``p``. Subtracting
    ``strength * log w`` undoes that in part: 0 keeps the boost (vivid, more often wrong), 1 removes it
    (the model's estimate of ``p``: accurate on average, muted). ``logits`` ``(B, Q, H, W)``, ``weights``
    ``(Q,)``.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if strength == 0.0:
        return logits
    log_weights = torch.log(weights.to(logits.device, torch.float32).clamp_min(1e-12))
    return logits.float() - strength * log_weights.view(1, -1, 1, 1)


def annealed_mean(logits: Tensor, bins: Tensor, temperature: float) -> Tensor:
    """``(B, 2, H, W)`` ab: the mean of ``softmax(logits / temperature)`` over the bin centres.

    Temperature 1 is the distribution's mean (safe, desaturated); towards 0 it becomes the mode (vivid, but
    patchy where two colours compete); Zhang et al. use 0.38. Differentiable, so an adversarial loss can
    judge the decoded colour.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    probabilities = torch.softmax(logits.float() / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", probabilities, bins.to(probabilities.device, torch.float32))


class ABClassifier(nn.Module):
    """A network of ``(B, Q, h, w)`` bin logits, with its bins and rebalancing weights as buffers.

    Buffers: ``bins`` ``(Q, 2)``; ``rebalance`` ``(Q,)`` (ones until :meth:`set_rebalancing`); ``rebalance_set``
    (0 or 1). As buffers they travel in checkpoints (an exact resume reuses the weights estimated at the
    start) and in exported files. ``forward`` is the wrapped network's.
    """

    bins: Tensor
    rebalance: Tensor
    rebalance_set: Tensor

    def __init__(self, network: nn.Module, bins: Tensor) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("bins", bins.detach().clone().float())
        self.register_buffer("rebalance", torch.ones(len(bins)))
        self.register_buffer("rebalance_set", torch.zeros(()))

    def forward(self, image: Tensor) -> Tensor:
        return self.network(image)

    @property
    def has_rebalancing(self) -> bool:
        """Whether :meth:`set_rebalancing` ran (here or in the run this module was restored from)."""
        return bool(self.rebalance_set.item() > 0)

    def set_rebalancing(self, weights: Tensor) -> None:
        """Store per-bin weights (from :func:`rebalancing_weights`)."""
        with torch.no_grad():
            self.rebalance.copy_(weights.to(self.rebalance.device, self.rebalance.dtype))
            self.rebalance_set.fill_(1.0)
