"""Adversarial losses shared by the GAN tasks: vanilla (BCE), least squares (LSGAN) and hinge.

One object per task, chosen by name, so a task's ``training_step`` reads the same whatever the loss:

    adversarial = AdversarialLoss("lsgan")
    d_loss = adversarial.critic(real_logits, fake_logits)   # after the critic saw real and detached fake
    g_loss = adversarial.generator(critic(fake))             # through a frozen critic

Logits are any shape (a PatchGAN map is averaged over all patches) and are cast to float32 first, so
the losses stay accurate under mixed precision.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

AdversarialMode = Literal["vanilla", "lsgan", "hinge"]
MODES: tuple[str, ...] = ("vanilla", "lsgan", "hinge")


class AdversarialLoss:
    """GAN losses by name.

    - ``vanilla``: binary cross-entropy on logits; the generator uses the non-saturating form
      ``-log D(G(z))`` (Goodfellow et al. 2014), as pix2pix does.
    - ``lsgan``: least squares against targets 1 (real) and 0 (fake) (Mao et al. 2017), CycleGAN's choice;
      gradients do not vanish for confidently classified fakes.
    - ``hinge``: ``relu(1 - real) + relu(1 + fake)`` for the critic, ``-fake`` for the generator
      (Lim & Ye 2017, used by SAGAN / BigGAN).

    ``critic()`` returns the *mean* of its real and fake terms, i.e. half their sum: pix2pix and CycleGAN
    halve the discriminator loss to slow the critic down relative to the generator.

    Args:
        mode: ``"vanilla"``, ``"lsgan"`` or ``"hinge"``.
        real_label: Target for real logits in ``vanilla`` and ``lsgan`` (e.g. 0.9 for one-sided label
            smoothing); the generator always aims at 1.
    """

    def __init__(self, mode: str = "lsgan", *, real_label: float = 1.0) -> None:
        if mode not in MODES:
            raise ValueError(f"adversarial loss must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.real_label = float(real_label)

    def __repr__(self) -> str:
        return f"AdversarialLoss({self.mode!r})"

    def _towards(self, logits: Tensor, target: float) -> Tensor:
        """Loss pushing ``logits`` towards the label ``target`` (vanilla and lsgan)."""
        logits = logits.float()
        if self.mode == "lsgan":
            return (logits - target).square().mean()
        return F.binary_cross_entropy_with_logits(logits, logits.new_full((), target).expand_as(logits))

    def critic(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Critic loss: real logits towards "real", fake (detached by the caller) towards "fake"; a scalar."""
        if self.mode == "hinge":
            real = F.relu(1.0 - real_logits.float()).mean()
            fake = F.relu(1.0 + fake_logits.float()).mean()
        else:
            real = self._towards(real_logits, self.real_label)
            fake = self._towards(fake_logits, 0.0)
        return 0.5 * (real + fake)

    def generator(self, fake_logits: Tensor) -> Tensor:
        """Generator loss: the critic's logits on fakes pushed towards "real"; a scalar."""
        if self.mode == "hinge":
            return -fake_logits.float().mean()
        return self._towards(fake_logits, 1.0)
