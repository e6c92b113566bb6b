"""Adversarial losses shared by every GAN task: vanilla (BCE), least squares, hinge and relativistic average.

One object per task, chosen by name, so a task's ``training_step`` reads the same whatever the loss:

    adversarial = AdversarialLoss("lsgan")
    d_loss = adversarial.critic(real_logits, fake_logits)   # after the critic saw real and detached fake
    g_loss = adversarial.generator(critic(fake))             # through a frozen critic

**Convention.** Where a loss has a real term and a fake term, it is their *mean* (half their sum): the
critic loss in every mode, and the relativistic generator loss. pix2pix and CycleGAN halve the
discriminator loss this way to slow the critic relative to the generator, and ESRGAN's relativistic loss
is written as the same mean. Each term averages over every element of its logits, so a PatchGAN map
counts each patch once. Logits are cast to float32 first, so the losses stay accurate under mixed precision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from gantool.engine.step import TrainStep

AdversarialMode = Literal["vanilla", "lsgan", "hinge", "relativistic"]
MODES: tuple[str, ...] = ("vanilla", "lsgan", "hinge", "relativistic")


class AdversarialLoss:
    """GAN losses by name.

    - ``vanilla``: binary cross-entropy on logits; the generator uses the non-saturating form
      ``-log D(G(z))`` (Goodfellow et al. 2014), as pix2pix does.
    - ``lsgan``: least squares against targets 1 (real) and 0 (fake) (Mao et al. 2017), CycleGAN's choice;
      gradients do not vanish for confidently classified fakes.
    - ``hinge``: ``relu(1 - real) + relu(1 + fake)`` for the critic, ``-fake`` for the generator
      (Lim & Ye 2017, used by SAGAN and BigGAN).
    - ``relativistic``: relativistic average GAN with BCE (Jolicoeur-Martineau 2018) as ESRGAN uses it: the
      critic judges whether a real image is more realistic than the average fake (``real - mean(fake)``
      towards 1, ``fake - mean(real)`` towards 0), and the generator is pushed the opposite way, so it
      needs the critic's logits on real images as well (:attr:`needs_real_logits`).

    Every mode follows the module's convention: two-term losses are the mean of their terms.

    Args:
        mode: One of :data:`MODES`.
        real_label: Target for real images in the critic loss of the BCE and least-squares modes (e.g. 0.9
            for one-sided label smoothing); the generator always aims at 1.
    """

    def __init__(self, mode: str = "lsgan", *, real_label: float = 1.0) -> None:
        if mode not in MODES:
            raise ValueError(f"adversarial loss must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.real_label = float(real_label)

    def __repr__(self) -> str:
        return f"AdversarialLoss({self.mode!r})"

    @property
    def needs_real_logits(self) -> bool:
        """Whether :meth:`generator` needs the critic's logits on real images (the relativistic mode)."""
        return self.mode == "relativistic"

    def _towards(self, logits: Tensor, target: float) -> Tensor:
        """Loss pushing ``logits`` towards the label ``target`` (BCE, or least squares for lsgan)."""
        if self.mode == "lsgan":
            return (logits - target).square().mean()
        return F.binary_cross_entropy_with_logits(logits, logits.new_full((), target).expand_as(logits))

    def critic(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Critic loss, a float32 scalar: real logits towards "real", fake ones (detached by the caller) towards "fake".

        ``real_logits`` and ``fake_logits`` may differ in shape (a history pool adds fakes).
        """
        real_logits, fake_logits = real_logits.float(), fake_logits.float()
        if self.mode == "hinge":
            real = F.relu(1.0 - real_logits).mean()
            fake = F.relu(1.0 + fake_logits).mean()
        elif self.mode == "relativistic":
            real = self._towards(real_logits - fake_logits.mean(), self.real_label)
            fake = self._towards(fake_logits - real_logits.mean(), 0.0)
        else:
            real = self._towards(real_logits, self.real_label)
            fake = self._towards(fake_logits, 0.0)
        return 0.5 * (real + fake)

    def generator(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """Generator loss, a float32 scalar: the critic's logits on fakes pushed towards "real".

        Args:
            fake_logits: The (frozen) critic's logits on generated images, with gradients to the generator.
            real_logits: Its logits on real images; required by ``relativistic`` (detach them: only the
                generator learns here), ignored by the other modes.
        """
        fake_logits = fake_logits.float()
        if self.mode == "hinge":
            return -fake_logits.mean()
        if self.mode == "relativistic":
            if real_logits is None:
                raise ValueError("the relativistic generator loss needs the critic's logits on real images too")
            real_logits = real_logits.float()
            return 0.5 * (self._towards(real_logits - fake_logits.mean(), 0.0)
                          + self._towards(fake_logits - real_logits.mean(), 1.0))
        return self._towards(fake_logits, 1.0)

    def generator_via(self, critic: Callable[[Tensor], Tensor], fake: Tensor, real: Tensor) -> Tensor:
        """:meth:`generator` through ``critic`` in one forward: fakes alone, or real and fake concatenated.

        The relativistic mode compares with real images, so both go through the critic together (one
        forward per backward, as DDP requires); the other modes run it on the fakes only. ``real`` and
        ``fake`` are the critic's inputs, ``(B, C, H, W)`` each.
        """
        if not self.needs_real_logits:
            return self.generator(critic(fake))
        real_logits, fake_logits = critic(torch.cat([real, fake])).split([len(real), len(fake)])
        return self.generator(fake_logits, real_logits.detach())

    def update_critic(self, step: TrainStep, real: Tensor, fake: Tensor, *,
                      name: str = "critic") -> tuple[Tensor, Tensor, Tensor]:
        """One update of critic ``name`` on ``real`` against ``fake.detach()``; (loss, real logits, fake logits).

        Real and fake go through the critic in one forward (one backward per forward, as DDP requires); the
        logits are scored in float32 whatever autocast computed them in.
        """
        with step.autocast():
            real_logits, fake_logits = step.networks[name](torch.cat([real, fake.detach()])).float().chunk(2)
            loss = self.critic(real_logits, fake_logits)
        step.update(name, loss)
        return loss, real_logits, fake_logits

    def generator_with_features(self, critic: Callable[..., tuple[Tensor, list[Tensor]]], real: Tensor,
                                fake: Tensor) -> tuple[Tensor, list[Tensor]]:
        """:meth:`generator` through a (frozen) critic with feature outputs, and its features of real and fake.

        One forward over ``cat([real, fake])`` with ``return_features=True`` serves both the adversarial term
        and a feature-matching one (:func:`feature_matching` takes the features as they come).
        """
        logits, features = critic(torch.cat([real, fake]), return_features=True)
        real_logits, fake_logits = logits.float().chunk(2)
        return self.generator(fake_logits, real_logits.detach()), features


def feature_matching(features: list[Tensor]) -> Tensor:
    """L1 between a critic's features of fakes and of (detached) reals, averaged over the feature maps.

    ``features`` are the maps of one critic pass over ``cat([real, fake])`` (the real half first, e.g.
    ``PatchDiscriminator(..., return_features=True)``): a perceptual term that needs no downloaded network.
    """
    losses = []
    for feature in features:
        real, fake = feature.float().chunk(2)
        losses.append(F.l1_loss(fake, real.detach()))
    return torch.stack(losses).mean()


def masked_l1(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Mean absolute error over the pixels where ``weight`` (``(B, 1, H, W)``, e.g. a hole mask) is 1, all
    channels; 0 when the weight is empty."""
    total = (prediction - target).abs().mul(weight).sum()
    return total / (weight.sum() * prediction.shape[1]).clamp_min(1.0)
