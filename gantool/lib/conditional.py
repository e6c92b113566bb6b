"""The conditional GAN recipe of pix2pix (Isola et al. 2017), shared by every task built on it.

pix2pix (paired translation) and colourisation are the same machine with different inputs and outputs:
a U-Net generator ``G(x)``, a PatchGAN critic that judges the pair ``(x, y)`` stacked along channels, and
the loss ``GAN(G) + l1_weight * |G(x) - y|``. Keeping the options, the network builders and the training
step here lets both tasks use one implementation instead of two copies drifting apart.

Importing this module is cheap (task cards import :class:`ConditionalGANOptions`); torch is imported
inside the functions that need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from gantool import flag
from gantool.errors import UsageError
from gantool.lib.nets.geometry import depth_for_crop
from gantool.lib.options import AdamOptions, CriticOptions, GanLossOptions

if TYPE_CHECKING:
    from torch import Tensor, nn

    from gantool.engine.step import TrainStep
    from gantool.lib.losses import AdversarialLoss
    from gantool.lib.nets.unet import UNet

Norm = Literal["instance", "batch"]


@dataclass(kw_only=True)
class ConditionalGANOptions(CriticOptions, GanLossOptions, AdamOptions):
    """Architecture, loss and optimiser flags common to pix2pix-style tasks (``gantool train pix2pix ...``).

    The critic, adversarial-loss and Adam flags come from the shared groups of :mod:`gantool.lib.options`
    with their defaults (the paper's: vanilla GAN loss, Adam 2e-4 with beta1 0.5, a 70x70 PatchGAN).

    ``width``, ``depth`` (or ``crop``, from which it is derived) and ``norm`` shape the exported generator
    and are read back from the model file at inference: their defaults must keep their meaning.
    """

    crop: int = flag(256, "Side of the square random training crops; also sets the U-Net depth (log2(crop) - 1 "
                     "downsamplings, at most 8) unless --depth is given.", panel="Data", min=8)
    flip: bool = flag(True, "Random left-right flips of the training images (both halves of a pair together).",
                      panel="Data")
    width: int = flag(64, "Channels of the generator's first level (doubling per level up to 8x).",
                      panel="Architecture", min=1, max=1024)
    depth: int | None = flag(None, "U-Net downsamplings (default from --crop); --crop must be a multiple of "
                             "2**depth.", panel="Architecture", min=1, max=8)
    norm: Norm = flag("instance", "Normalisation of generator and critic: instance (identical in train and eval, "
                      "any batch size) or batch (pix2pix's original; uses running statistics at inference).",
                      panel="Architecture")
    dropout: float = flag(0.5, "Dropout in the three decoder blocks next to the bottleneck (pix2pix's noise; 0 "
                          "disables it). Off at inference unless --seed asks for it.", panel="Architecture",
                          min=0.0, max=0.9)
    l1_weight: float = flag(100.0, "Weight of the L1 loss to the target (the paper's lambda).", panel="Losses",
                            min=0.0)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise UsageError(f"{type(self).__name__}: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Every invalid combination, so subclasses can add theirs and report all at once."""
        found = []
        if self.crop < 8:
            found.append(f"--crop must be at least 8, got {self.crop}")
        elif self.crop % (2**self.unet_depth):
            found.append(f"--crop {self.crop} must be a multiple of {2**self.unet_depth} for a U-Net of depth "
                         f"{self.unet_depth}; use a power of two such as 256, or set --depth")
        if self.depth is not None and not 1 <= self.depth <= 8:
            found.append(f"--depth must be between 1 and 8, got {self.depth}")
        if not 0.0 <= self.dropout < 1.0:
            found.append(f"--dropout must be in [0, 1), got {self.dropout}")
        return found + self.critic_size_problems(self.crop)

    @property
    def unet_depth(self) -> int:
        """``depth``, or the one derived from ``crop``."""
        if self.depth is not None:
            return self.depth
        return depth_for_crop(max(self.crop, 4))

    def describe_architecture(self, in_channels: int, out_channels: int) -> str:
        """Short text for ``gantool.architecture``, e.g. ``U-Net 3->3, depth 7, width 64, instance norm``."""
        return (f"U-Net {in_channels}->{out_channels}, depth {self.unet_depth}, width {self.width}, "
                f"{self.norm} norm")


def build_generator(options: ConditionalGANOptions, in_channels: int, out_channels: int) -> UNet:
    """The U-Net generator the options describe (architecture from options only, as export requires)."""
    from gantool.lib.nets.unet import UNet

    return UNet(in_channels, out_channels, width=options.width, depth=options.unet_depth, norm=options.norm,
                dropout=options.dropout)


def build_critic(options: ConditionalGANOptions, in_channels: int) -> nn.Module:
    """The conditional PatchGAN: it sees input and output stacked, ``in_channels`` = their sum."""
    from gantool.lib.nets.patchgan import PatchDiscriminator

    return PatchDiscriminator.from_options(options, in_channels, norm=options.norm)


def adversarial_loss(options: ConditionalGANOptions) -> AdversarialLoss:
    """The adversarial loss the options name."""
    from gantool.lib.losses import AdversarialLoss

    return AdversarialLoss(options.gan_loss)


def conditional_gan_step(step: TrainStep, source: Tensor, target: Tensor, *, adversarial: AdversarialLoss,
                         l1_weight: float, adversarial_weight: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """One pix2pix iteration on networks ``"generator"`` and ``"critic"``; returns (fake, losses to log).

    ``source`` and ``target`` are in the generator's value range ([-1, 1] for the U-Net). Order as in the
    paper: the critic learns on ``(x, y)`` against ``(x, G(x))`` (loss halved inside
    :meth:`AdversarialLoss.critic`), then the generator on ``adversarial_weight`` times the frozen critic's
    verdict plus ``l1_weight * L1``. Real and fake pairs go through the critic in one forward (the engine's rule for
    DDP); with batch norm they therefore share batch statistics, which instance norm avoids.
    """
    import torch
    import torch.nn.functional as F

    with step.autocast():
        fake = step.networks["generator"](source)
    d_loss, _, _ = adversarial.update_critic(step, torch.cat([source, target], dim=1), torch.cat([source, fake], dim=1))
    with step.autocast(), step.frozen("critic") as critic:
        g_adversarial = adversarial.generator_via(critic, torch.cat([source, fake], dim=1),
                                                  torch.cat([source, target], dim=1))
        l1 = F.l1_loss(fake.float(), target.float())
        g_loss = adversarial_weight * g_adversarial + l1_weight * l1
    step.update("generator", g_loss)
    losses = {"d": d_loss.detach(), "g": g_loss.detach(), "g_gan": g_adversarial.detach(), "l1": l1.detach()}
    return fake.detach(), losses
