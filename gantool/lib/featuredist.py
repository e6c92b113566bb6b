"""Fréchet and kernel distances between two sets of feature vectors (FID and KID, given the features).

These are the formulas only; :mod:`gantool.lib.inception` computes the usual Inception features. Both
work in float64 NumPy.

- **FID** (Heusel et al. 2017): ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. The trace of the
  matrix square root is the sum of the square roots of the eigenvalues of ``S_a S_b``, which equal those
  of the symmetric ``A S_b A`` with ``A = S_a^(1/2)``: so only symmetric eigendecompositions are needed
  (no SciPy). Biased upwards at small N; compare only values at the same N.
- **KID** (Binkowski et al. 2018): the unbiased squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1)^3``, averaged over ``subsets`` random subsets of ``subset_size`` from each set
  (torch-fidelity's defaults: 100 x 1000). Unbiased, so usable with a few thousand samples; returns the
  mean and the standard deviation over subsets. :func:`paired_mmd` is the same estimator for two sets made pair
  by pair (filled tiles and their originals), where the plain one is biased downwards.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Features = NDArray[np.floating]


def _symmetric_sqrt(matrix: NDArray[np.floating]) -> NDArray[np.floating]:
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(a: Features, b: Features) -> float:
    """FID between feature sets ``(N, D)`` and ``(M, D)`` (each needs N >= 2)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _symmetric_sqrt(cov_a)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = float(np.sqrt(np.clip(cross, 0.0, None)).sum())
    return float(np.square(mean_a - mean_b).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_root)


def polynomial_mmd(a: Features, b: Features) -> float:
    """Unbiased squared MMD between ``a`` and ``b`` with the kernel ``(x.y / d + 1)^3``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = a.shape[1]
    k_aa, k_bb, k_ab = ((x @ y.T / d + 1.0) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    m, n = len(a), len(b)
    same_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    same_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    return float(same_a + same_b - 2.0 * k_ab.mean())


def kernel_distance(a: Features, b: Features, *, subsets: int = 100, subset_size: int = 1000,
                    seed: int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation of :func:`polynomial_mmd` over random subsets (without replacement
    within a subset; ``subset_size`` is capped at the smaller set)."""
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 features per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def set_distances(features: Features, reference: Features, *, seed: int = 0) -> tuple[float, float, float]:
    """``(FID, KID, KID sd)`` of one feature set against a reference set, KID on 100 subsets of up to 1000
    (at most half the smaller set, so small test sets still give a spread)."""
    size = max(2, min(1000, len(features) // 2, len(reference) // 2))
    kid, kid_std = kernel_distance(features, reference, subset_size=size, seed=seed)
    return frechet_distance(features, reference), kid, kid_std



def paired_mmd(a: Features, b: Features) -> float:
    """Unbiased squared MMD (kernel as :func:`polynomial_mmd`) when row i of ``a`` was made from row i of ``b``
    (a filled tile and its original): the U-statistic over pairs of *pairs*, cross terms ``k(a_i, b_j)`` only for
    i != j, so the dependence within a pair adds no bias. A set against itself scores exactly 0; the unpaired
    estimator would score it below 0 by O(1/N), and a fill by more the closer it is to its own original."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired KID needs sets of equal shape, got {a.shape} and {b.shape}")
    n, d = a.shape
    k_aa, k_bb, k_ab = ((x @ y.T / d + 1.0) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    off = [(k.sum() - np.trace(k)) / (n * (n - 1)) for k in (k_aa, k_bb, k_ab)]
    return float(off[0] + off[1] - 2.0 * off[2])


def whole_set_distances(features: Features, reference: Features, *, paired: bool = False) -> tuple[float, float]:
    """``(FID, KID)`` with KID the unbiased MMD over *all* of both sets (no random subsets: at tens to hundreds
    of images, subsets only add noise); ``paired``: row i of ``features`` was made from row i of ``reference``
    (see :func:`paired_mmd`). Each set needs at least 2 features."""
    if min(len(features), len(reference)) < 2:
        raise ValueError(f"FID/KID need at least 2 features per set, got {len(features)} and {len(reference)}")
    kid = paired_mmd(features, reference) if paired else polynomial_mmd(features, reference)
    return frechet_distance(features, reference), kid
