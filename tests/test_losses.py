"""Adversarial losses: known values for each mode, the mean convention, gradients in the right direction, float32."""

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


def test_relativistic_values() -> None:
    """ESRGAN's RaGAN: real - mean(fake) towards 1, fake - mean(real) towards 0; the generator the other way."""
    loss = AdversarialLoss("relativistic")
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])  # means 1 and 0
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731 - BCE of logit x against 0
    # critic: 0.5 * (mean(softplus(-[2, 0])) + mean(softplus([-2, 0])))
    assert loss.critic(real, fake).item() == pytest.approx((softplus(-2) + math.log(2)) / 2)
    # generator: 0.5 * (mean(softplus([2, 0])) + mean(softplus(-[-2, 0])))
    assert loss.generator(fake, real).item() == pytest.approx((softplus(2) + math.log(2)) / 2)
    assert loss.needs_real_logits and not AdversarialLoss("hinge").needs_real_logits
    with pytest.raises(ValueError, match="logits on real images"):
        loss.generator(fake)


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge", "relativistic"])
def test_critic_loss_is_the_mean_of_its_real_and_fake_terms(mode: str) -> None:
    """The one convention: a real-only and a fake-only batch each contribute half, not all, of the loss."""
    loss = AdversarialLoss(mode)
    real, fake = torch.tensor([0.7, -0.2, 1.5]), torch.tensor([0.3, -1.0])
    if mode == "relativistic":
        real_term = loss._towards(real - fake.mean(), 1.0)
        fake_term = loss._towards(fake - real.mean(), 0.0)
    elif mode == "hinge":
        real_term, fake_term = torch.relu(1 - real).mean(), torch.relu(1 + fake).mean()
    else:
        real_term, fake_term = loss._towards(real, 1.0), loss._towards(fake, 0.0)
    assert loss.critic(real, fake).item() == pytest.approx(0.5 * (real_term + fake_term).item())


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge", "relativistic"])
def test_gradients_push_the_right_way(mode: str) -> None:
    loss = AdversarialLoss(mode)
    real = torch.tensor([0.5, 0.3, 0.7, 0.5], requires_grad=True)
    fake = torch.tensor([0.5, 0.6, 0.4, 0.5], requires_grad=True)
    loss.critic(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()  # descent raises real scores, lowers fake ones
    fake_g = torch.full((4,), 0.5, requires_grad=True)
    loss.generator(fake_g, real.detach()).backward()
    assert (fake_g.grad < 0).all()


@pytest.mark.parametrize("mode", ["lsgan", "relativistic"])
def test_generator_via_runs_the_critic_once(mode: str) -> None:
    """Relativistic needs the real logits: real and fake go through the critic together, the real detached."""
    loss = AdversarialLoss(mode)
    seen: list[int] = []

    def critic(images: torch.Tensor) -> torch.Tensor:
        seen.append(len(images))
        return images.mean(dim=(1, 2, 3)) * 3

    real = torch.rand(2, 3, 4, 4, requires_grad=True)
    fake = torch.rand(3, 3, 4, 4, requires_grad=True)
    value = loss.generator_via(critic, fake, real)
    value.backward()
    expected = loss.generator(critic(fake), critic(real)) if mode == "relativistic" else loss.generator(critic(fake))
    assert seen[0] == (5 if mode == "relativistic" else 3)
    assert value.item() == pytest.approx(expected.item())
    assert real.grad is None or not real.grad.any()  # only the generator's fakes learn here
    assert fake.grad is not None and fake.grad.abs().sum() > 0


def test_half_precision_logits_give_float32_losses() -> None:
    loss = AdversarialLoss("lsgan")
    value = loss.critic(torch.ones(4, dtype=torch.bfloat16), torch.zeros(4, dtype=torch.bfloat16))
    assert value.dtype == torch.float32 and value.ndim == 0


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="vanilla, lsgan, hinge, relativistic"):
        AdversarialLoss("wgan")


def test_update_critic_scores_real_against_detached_fake_in_one_forward() -> None:
    import contextlib

    import torch

    from gantool.lib.nets.patchgan import PatchDiscriminator

    torch.manual_seed(0)
    critic = PatchDiscriminator(3, width=8, n_layers=1)
    updated: list[tuple[str, torch.Tensor]] = []
    calls: list[int] = []
    critic.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
    step = type("Step", (), {"networks": {"critic": critic}, "autocast": staticmethod(contextlib.nullcontext),
                             "update": lambda self, name, loss: updated.append((name, loss))})()
    source = torch.rand(2, 3, 24, 24, requires_grad=True)
    real, fake = torch.rand(2, 3, 24, 24), source * 2
    loss, real_logits, fake_logits = AdversarialLoss("hinge").update_critic(step, real, fake)
    assert calls == [4] and updated == [("critic", loss)]  # one forward over real and fake together
    assert torch.allclose(loss, AdversarialLoss("hinge").critic(critic(real), critic(fake)))
    loss.backward()
    assert source.grad is None  # the fake was detached: the critic's update never reaches the generator
    adversarial, features = AdversarialLoss("relativistic").generator_with_features(critic, real, fake)
    assert len(features) == 2 and features[0].shape[0] == 4 and adversarial.requires_grad
