"""gantool.lib.abbins: ab bins inside sRGB, soft targets, rebalancing weights, annealed-mean decoding."""

from __future__ import annotations

import pytest
import torch

from gantool.lib.abbins import (
    ABClassifier,
    annealed_mean,
    bin_histogram,
    divide_out_rebalancing,
    gamut_bins,
    nearest_bins,
    rebalanced_cross_entropy,
    rebalancing_weights,
    soft_encode,
)
from gantool.lib.color import lab_to_rgb, rgb_to_lab


def test_bins_are_the_grid_cells_that_hold_srgb_colours() -> None:
    bins = gamut_bins()
    assert bins.shape[1] == 2 and 200 < len(bins) < 320  # Zhang et al. count 313 with their gamut test
    assert torch.equal(bins, torch.round(bins / 10) * 10)  # centres on the 10-unit grid
    assert torch.equal(bins, gamut_bins())  # deterministic
    assert len(torch.unique(bins, dim=0)) == len(bins)
    # every bin holds an sRGB colour: some L makes its cell's centre region reachable (checked via sampled RGB)
    rgb = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ab = rgb_to_lab(rgb)[:, 1:]
    indices, distances = nearest_bins(ab, bins)
    assert distances.max() <= 2 * 5.0**2 + 1e-3  # every colour lies in the cell of a bin (half-diagonal 7.07)
    # cells far outside the gamut are not bins: pure a = 100, b = -100 is not an sRGB colour at any L
    assert not ((bins[:, 0] == 100) & (bins[:, 1] == -100)).any()
    lab = torch.tensor([50.0, 100.0, -100.0]).view(1, 3, 1, 1)
    assert (rgb_to_lab(lab_to_rgb(lab))[0, 1:, 0, 0] - lab[0, 1:, 0, 0]).abs().max() > 10  # really out of gamut
    assert indices.max() < len(bins)


def test_soft_encoding_sums_to_one_and_peaks_at_the_nearest_bin() -> None:
    bins = gamut_bins()
    ab = torch.tensor([[[[0.0, 12.0], [3.0, -41.0]], [[0.0, 27.0], [-4.0, 8.0]]]])  # (1, 2, 2, 2)
    indices, weights = soft_encode(ab, bins, neighbours=5, sigma=5.0)
    assert indices.shape == weights.shape == (1, 5, 2, 2)
    assert torch.allclose(weights.sum(1), torch.ones(1, 2, 2))
    assert (weights >= 0).all() and torch.equal(weights.argmax(1), torch.zeros(1, 2, 2, dtype=torch.long))
    nearest = ((ab[0].permute(1, 2, 0)[..., None, :] - bins).square().sum(-1)).argmin(-1)  # brute force
    assert torch.equal(indices[0, 0], nearest)
    assert torch.equal(bins[indices[0, 0, 0, 0]], torch.tensor([0.0, 0.0]))
    on_centre = weights[0, :, 0, 0]
    assert on_centre[0] > 0.6 and torch.allclose(on_centre[1:], on_centre[1:].mean().expand(4), atol=1e-6)


def test_rebalancing_weights_have_mean_one_and_favour_rare_bins() -> None:
    bins = gamut_bins()
    gray = torch.zeros(1, 2, 8, 8)
    red = torch.tensor([60.0, 50.0]).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    counts = bin_histogram(gray, bins) + bin_histogram(red, bins)
    assert counts.sum() == 64 + 4 and counts.max() == 64
    weights = rebalancing_weights(counts, bins, mix=0.5)
    empirical = counts / counts.sum()
    assert float((empirical * weights.double()).sum()) == pytest.approx(1.0, abs=1e-5)
    common, rare = int(counts.argmax()), int(nearest_bins(red[:, :, :1, :1], bins)[0].item())
    assert weights[rare] > 3 * weights[common]
    unseen = int((counts == 0).nonzero()[0])
    assert weights[unseen] >= weights[rare]  # never seen: the largest weights
    flat = rebalancing_weights(counts, bins, mix=1.0)
    assert torch.allclose(flat, torch.ones_like(flat))  # mix 1: no rebalancing
    with pytest.raises(ValueError, match="empty"):
        rebalancing_weights(torch.zeros(len(bins)), bins)


def test_annealed_mean_goes_from_the_mean_at_1_to_the_mode_near_0() -> None:
    bins = torch.tensor([[0.0, 0.0], [50.0, 0.0], [0.0, -60.0]])
    logits = torch.log(torch.tensor([0.5, 0.3, 0.2])).view(1, 3, 1, 1).repeat(2, 1, 3, 4)
    mean = annealed_mean(logits, bins, 1.0)
    assert mean.shape == (2, 2, 3, 4)
    assert torch.allclose(mean[0, :, 0, 0], torch.tensor([0.3 * 50, 0.2 * -60]), atol=1e-4)
    assert torch.allclose(annealed_mean(logits, bins, 1e-3), torch.zeros(2, 2, 3, 4), atol=1e-4)  # the mode: bin 0
    sharper = annealed_mean(logits, bins, 0.38)
    assert sharper[0, 0, 0, 0].abs() < mean[0, 0, 0, 0].abs()  # between the two
    with pytest.raises(ValueError, match="positive"):
        annealed_mean(logits, bins, 0.0)


def test_rebalanced_training_learns_boosted_odds_that_dividing_out_undoes() -> None:
    bins = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, -100.0], [-100.0, 0.0], [0.0, 100.0]])  # one-hot targets
    truth = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05])
    weights = torch.tensor([0.5, 1.0, 2.0, 3.0, 4.0])
    logits = torch.zeros(1, 5, 1, 1, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.05)
    for _ in range(1500):  # the expected loss over the true colour distribution
        loss = sum(truth[q] * rebalanced_cross_entropy(logits, bins[q].view(1, 2, 1, 1), bins, weights)
                   for q in range(5))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    learnt = torch.softmax(logits.detach(), 1).flatten()
    boosted = truth * weights / (truth * weights).sum()
    assert torch.allclose(learnt, boosted, atol=5e-3)  # rare colours up-weighted, as rebalancing intends
    recovered = torch.softmax(divide_out_rebalancing(logits.detach(), weights, 1.0), 1).flatten()
    assert torch.allclose(recovered, truth, atol=5e-3)
    halfway = torch.softmax(divide_out_rebalancing(logits.detach(), weights, 0.5), 1).flatten()
    assert truth[4] < halfway[4] < learnt[4]
    assert divide_out_rebalancing(logits, weights, 0.0) is logits
    assert torch.allclose(divide_out_rebalancing(logits.detach(), torch.full((5,), 3.0), 1.0).softmax(1),
                          logits.detach().softmax(1))  # equal weights change nothing
    with pytest.raises(ValueError, match="strength"):
        divide_out_rebalancing(logits, weights, 1.5)


def test_cross_entropy_is_lowest_for_the_target_and_weighted_per_nearest_bin() -> None:
    bins = gamut_bins()
    ab = torch.tensor([30.0, -20.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    indices, weights = soft_encode(ab, bins)
    good = torch.full((1, len(bins), 4, 4), -20.0)
    good.scatter_(1, indices, torch.log(weights))
    wrong = torch.zeros(1, len(bins), 4, 4)
    assert rebalanced_cross_entropy(good, ab, bins) < rebalanced_cross_entropy(wrong, ab, bins)
    doubled = torch.full((len(bins),), 2.0)
    assert rebalanced_cross_entropy(wrong, ab, bins, doubled) == pytest.approx(
        2 * float(rebalanced_cross_entropy(wrong, ab, bins)))


def test_classifier_carries_bins_and_weights_in_its_state() -> None:
    bins = gamut_bins()
    model = ABClassifier(torch.nn.Conv2d(1, len(bins), 1), bins)
    assert not model.has_rebalancing and torch.equal(model.rebalance, torch.ones(len(bins)))
    model.set_rebalancing(torch.linspace(0.5, 2.0, len(bins)))
    copy = ABClassifier(torch.nn.Conv2d(1, len(bins), 1), bins)
    copy.load_state_dict(model.state_dict())
    assert copy.has_rebalancing and torch.equal(copy.rebalance, model.rebalance)
    assert {"bins", "rebalance", "rebalance_set"} <= set(model.state_dict())
    assert model(torch.zeros(1, 1, 4, 4)).shape == (1, len(bins), 4, 4)
