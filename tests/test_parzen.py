"""Parzen-window log-likelihood: the formula against a NumPy loop and the width search (CLI: test_lapgan.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gantool.lib.parzen import SIGMAS, log_likelihoods, parzen_log_likelihood


def numpy_reference(points: np.ndarray, centres: np.ndarray, sigma: float) -> np.ndarray:
    """The formula of goodfeli's parzen_ll.py, one point at a time, in float64."""
    out = []
    for point in points.reshape(len(points), -1):
        exponents = -np.square(point - centres.reshape(len(centres), -1)).sum(1) / (2 * sigma**2)
        top = exponents.max()
        log_mean = top + np.log(np.exp(exponents - top).mean())
        out.append(log_mean - point.size * np.log(sigma * np.sqrt(2 * np.pi)))
    return np.array(out)


def test_log_likelihoods_match_a_numpy_loop_at_every_width() -> None:
    rng = np.random.default_rng(0)
    centres, points = rng.random((37, 3, 4, 4)), rng.random((300, 3, 4, 4))  # 300 points: two blocks of 256
    got = log_likelihoods(torch.from_numpy(points).float(), torch.from_numpy(centres).float(), SIGMAS).numpy()
    for row, sigma in zip(got, SIGMAS, strict=True):
        expected = numpy_reference(*(a.astype(np.float32).astype(np.float64) for a in (points, centres)), sigma)
        np.testing.assert_allclose(row, expected, rtol=1e-9, atol=1e-6)


def test_the_width_search_finds_the_noise_of_the_test_points() -> None:
    """Test points are far-apart centres plus N(0, 0.3^2) noise per value: each is explained by its own centre,
    so the best width is the searched one nearest 0.3 in likelihood (0.278), and the score is what that width
    gives a point at the expected distance."""
    generator = torch.Generator().manual_seed(0)
    dims, count = 400, 50
    centres = 10 * torch.eye(count, dims, dtype=torch.float64)  # pairwise distances of 14: no kernel overlap
    validation = centres + 0.3 * torch.randn(count, dims, generator=generator, dtype=torch.float64)
    test = centres + 0.3 * torch.randn(count, dims, generator=generator, dtype=torch.float64)
    result = parzen_log_likelihood(centres, validation, test)
    assert result.sigma == pytest.approx(SIGMAS[4]) and SIGMAS[4] == pytest.approx(0.2783, abs=1e-4)
    assert max(result.validation, key=result.validation.__getitem__) == result.sigma
    sigma = result.sigma
    expected = -dims * 0.09 / (2 * sigma**2) - math.log(count) - dims * math.log(sigma * math.sqrt(2 * math.pi))
    assert result.mean == pytest.approx(expected, abs=6 * result.stderr + 1.0)
    copied = parzen_log_likelihood(test, validation, test)  # a "model" that copied the test set
    assert copied.mean > result.mean  # Theis et al.'s point: memorising scores well


def test_too_few_images_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="2 or more test images"):
        parzen_log_likelihood(torch.rand(4, 3), torch.rand(2, 3), torch.rand(1, 3))
    with pytest.raises(ValueError, match="points of 3 values against centres of 4"):
        log_likelihoods(torch.rand(2, 3), torch.rand(2, 4), SIGMAS)
