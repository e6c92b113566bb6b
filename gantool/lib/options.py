"""Option groups that task option dataclasses compose, so a flag is written once and reaches every task.

Torch-free (task cards import them on every CLI start). A task inherits the groups it needs; all are
``kw_only`` dataclasses, so multiple inheritance works with gantool's option machinery, and
:func:`gantool.plugin.options.redefault` changes a default without repeating the help::

    @dataclass(kw_only=True)
    class MyTrainOptions(CriticOptions, GanLossOptions, AdamOptions):
        gan_loss: GanLoss = redefault(GanLossOptions, "gan_loss", "hinge")
        l1_weight: float = flag(100.0, "Weight of the L1 loss.", panel="Losses")

- :class:`CriticOptions`: ``--critic-width``, ``--critic-layers``, ``--spectral-norm``.
- :class:`GanLossOptions`: ``--gan-loss`` (vanilla, lsgan, hinge, relativistic), ``--adversarial-weight``.
- :class:`AdamOptions`: ``--lr``, ``--lr-critic`` (two time-scale updates), ``--beta1``, ``--beta2``; the
  default ``Task.build_optimizers`` reads them through :meth:`AdamOptions.adam_settings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gantool.lib.nets.geometry import PatchLayout, patch_min_side
from gantool.plugin.options import NetworkRole, flag

#: Adversarial losses of :class:`gantool.lib.losses.AdversarialLoss`.
GanLoss = Literal["vanilla", "lsgan", "hinge", "relativistic"]


def load_size_problems(load_size: int | None, crop: int) -> list[str]:
    """The shared check of tasks that resize images (``--load-size``) before a random ``--crop``."""
    if load_size is not None and load_size < crop:
        return [f"--load-size {load_size} is smaller than --crop {crop}"]
    return []


@dataclass(kw_only=True)
class CriticOptions:
    """The shape of a task's PatchGAN critic(s) (:meth:`gantool.lib.nets.patchgan.PatchDiscriminator.from_options`).

    Critics are not exported, so these may change between training runs without touching model files.
    """

    critic_width: int = flag(64, "Channels of the critic's first layer (doubling per stride-2 layer, up to 8x).",
                             panel="Architecture", min=1, max=1024)
    critic_layers: int = flag(3, "Stride-2 layers of the PatchGAN critic; each doubles the patch it judges "
                              "(pix2pix's layout: 34x34 at 2, 70x70 at 3, 142x142 at 4).", panel="Architecture",
                              min=1, max=6)
    spectral_norm: bool = flag(False, "Spectral norm on the critic's convolutions (Miyato et al. 2018): bounds how "
                               "fast its verdict can change, which steadies GAN training.", panel="Architecture")

    def critic_size_problems(self, crop: int, layout: PatchLayout = "nlayer") -> list[str]:
        """A problem when ``crop`` is below the smallest input the critic accepts (its logit map would be empty)."""
        smallest = patch_min_side(self.critic_layers, layout)
        if crop < smallest:
            return [f"--crop {crop} is too small for --critic-layers {self.critic_layers} (at least {smallest})"]
        return []


@dataclass(kw_only=True)
class GanLossOptions:
    """Which adversarial loss trains the networks, and how much it weighs in the generator's loss."""

    gan_loss: GanLoss = flag("vanilla", "Adversarial loss: vanilla (BCE, non-saturating generator), lsgan (least "
                             "squares), hinge, or relativistic (ESRGAN's relativistic average BCE).", panel="Losses")
    adversarial_weight: float = flag(1.0, "Weight of the adversarial loss in the generator's loss.", panel="Losses",
                                     min=0.0)


@dataclass(kw_only=True)
class AdamOptions:
    """Adam's settings for generators and critics; ``lr_critic`` gives critics their own rate (TTUR).

    Heusel et al. (2017) showed a faster critic can converge where one rate does not; SAGAN trains with
    ``--lr 1e-4 --lr-critic 4e-4 --beta1 0 --beta2 0.9``.
    """

    lr: float = flag(2e-4, "Adam learning rate of the generator (and of the critic unless --lr-critic is given).",
                     panel="Optimisation", min=0.0)
    lr_critic: float | None = flag(None, "Adam learning rate of the critic, for two time-scale updates (e.g. "
                                   "--lr 1e-4 --lr-critic 4e-4). Default: the generator's.", panel="Optimisation",
                                   min=0.0)
    beta1: float = flag(0.5, "Adam beta1.", panel="Optimisation", min=0.0, max=1.0)
    beta2: float = flag(0.999, "Adam beta2.", panel="Optimisation", min=0.0, max=1.0)

    @property
    def learning_rate(self) -> float:
        """The generator's learning rate (a task whose default depends on other options overrides this)."""
        return self.lr

    @property
    def critic_learning_rate(self) -> float:
        """``lr_critic``, or the generator's learning rate."""
        return self.lr_critic if self.lr_critic is not None else self.learning_rate

    def adam_settings(self, role: NetworkRole) -> tuple[float, tuple[float, float]]:
        """``(lr, (beta1, beta2))`` for a network of ``role`` (:class:`gantool.plugin.options.OptimizerOptions`)."""
        lr = self.critic_learning_rate if role == "critic" else self.learning_rate
        return lr, (self.beta1, self.beta2)
