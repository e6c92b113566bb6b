"""Adversarial losses: known values for each mode, gradients in the right direction, float32 output."""

from __future__ import annotations

import math

import pytest
import torch

from gantool.lib.losses import AdversarialLoss


def test_lsgan_values() -> None:
    loss = AdversarialLoss("lsgan")
    real, fake = torch.full((2, 1, 4, 4), 0.5), torch.full((2, 1, 4, 4), 0.25)
    assert loss.critic(real, fake).item() == pytest.approx(0.5 * (0.25 + 0.0625))
    assert loss.generator(fake).item() == pytest.approx(0.5625)
    assert loss.critic(torch.ones(3), torch.zeros(3)).item() == 0.0


def test_vanilla_values() -> None:
    loss = AdversarialLoss("vanilla")
    zeros = torch.zeros(5)
    assert loss.critic(zeros, zeros).item() == pytest.approx(math.log(2))
    assert loss.generator(torch.full((3,), 2.0)).item() == pytest.approx(math.log1p(math.exp(-2.0)))
    smoothed = AdversarialLoss("vanilla", real_label=0.9)
    assert smoothed.critic(zeros, zeros).item() == pytest.approx(math.log(2))  # BCE at logit 0 is log 2 for any label


def test_hinge_values() -> None:
    loss = AdversarialLoss("hinge")
    assert loss.critic(torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])).item() == pytest.approx(0.5 * (0.5 + 0.75))
    assert loss.generator(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge"])
def test_gradients_push_the_right_way(mode: str) -> None:
    loss = AdversarialLoss(mode)
    real = torch.full((4,), 0.5, requires_grad=True)
    fake = torch.full((4,), 0.5, requires_grad=True)
    loss.critic(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()  # descent raises real scores, lowers fake ones
    fake_g = torch.full((4,), 0.5, requires_grad=True)
    loss.generator(fake_g).backward()
    assert (fake_g.grad < 0).all()


def test_half_precision_logits_give_float32_losses() -> None:
    loss = AdversarialLoss("lsgan")
    value = loss.critic(torch.ones(4, dtype=torch.bfloat16), torch.zeros(4, dtype=torch.bfloat16))
    assert value.dtype == torch.float32 and value.ndim == 0


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="vanilla, lsgan, hinge"):
        AdversarialLoss("wgan")
