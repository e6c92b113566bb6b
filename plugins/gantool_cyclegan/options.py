"""Option dataclasses of the ``cyclegan`` task: fields become ``--flags`` of ``translate``, ``train`` and ``eval``.

Imported on every CLI start (through the task card), so nothing here may import torch.

The architecture fields (``blocks``, ``width``, ``upsample``) are stored in every exported model and read back at
inference to rebuild the generators: their defaults must never change meaning. The defaults are the
paper's (Zhu et al. 2017): 9-block ResNet generators, 70x70 PatchGAN critics, LSGAN, cycle weight 10,
identity weight 0.5, a 50-image history per critic, Adam(2e-4, beta1 0.5), 286-pixel resize then
256-pixel random crops with flips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gantool import flag
from gantool.errors import UsageError
from gantool.lib.options import AdamOptions, CriticOptions, GanLoss, GanLossOptions, load_size_problems
from gantool.plugin.options import redefault

Direction = Literal["AtoB", "BtoA"]
AskedDirection = Literal["auto", "AtoB", "BtoA"]
Kept = Literal["both", "AtoB", "BtoA"]
Upsample = Literal["transposed", "nearest", "bilinear"]


@dataclass(kw_only=True)
class TranslateOptions:
    """Flags of ``gantool translate`` that belong to this task."""

    direction: AskedDirection = flag("auto", "Which generator runs: AtoB maps domain A to B (trainA -> trainB, "
                                     "e.g. horse -> zebra), BtoA the reverse; auto: AtoB, or the one direction "
                                     "a model exported with --keep stores.")


@dataclass(kw_only=True)
class OneWayTranslateOptions:
    """Flags of ``gantool translate`` that belong to ``cut``: none (its one generator maps A to B)."""


@dataclass(kw_only=True)
class CycleGANEvalOptions:
    """Per test image and mean: cycle PSNR and how much the translation changes the image, both ways; per
    direction FID and KID of the translations against the other domain's real test images, next to the
    untranslated inputs' (with the Inception network installed).

    DATA is a CycleGAN dataset folder with testA/ and testB/ (or A/ and B/).
    """

    size: int = flag(0, "Resize images to this square side first (0: as stored).", min=0)
    inception: bool = flag(True, "FID and KID per direction with the Inception network when it is installed "
                           "(see gantool.lib.inception).", flags="--inception/--no-inception")
    seed: int = flag(0, "Seed of KID's random subsets.")


@dataclass(kw_only=True)
class UnpairedTrainOptions(CriticOptions, GanLossOptions, AdamOptions):
    """What every unpaired translation task here trains with: the ResNet generator, the PatchGAN critic,
    the loss and Adam groups, and the resize-crop-flip data pipeline (``cyclegan`` and ``cut`` add their own)."""

    blocks: int = flag(9, "Residual blocks per generator: 9 for 256-pixel crops, 6 for 128 (the paper).",
                       panel="Architecture", min=1, max=128)
    width: int = flag(64, "Channels of the generators' first layer (2x and 4x after the two downsamplings).",
                      panel="Architecture", min=4, max=1024)
    upsample: Upsample = flag("transposed", "Generator upsampling: the paper's transposed convolutions, or a "
                              "nearest/bilinear resize + 3x3 conv, which leaves no checkerboard pattern "
                              "(recommended: nearest). Models stored without it used transposed.",
                              panel="Architecture")
    gan_loss: GanLoss = redefault(GanLossOptions, "gan_loss", "lsgan")  # the papers'
    load_size: int = flag(286, "Side of the square that training images are resized to before "
                         "cropping.", panel="Data", min=8)
    crop: int = flag(256, "Side of the random square crops taken from the resized images (the "
                    "training resolution).", panel="Data", min=8)
    flip: bool = flag(True, "Random left-right flips of training images.", panel="Data")

    def __post_init__(self) -> None:
        problems = self.critic_size_problems(self.crop)
        problems += load_size_problems(self.load_size, self.crop)
        if problems:
            raise UsageError(f"{type(self).__name__.removesuffix('TrainOptions').lower()} options: "
                             + "; ".join(problems))


@dataclass(kw_only=True)
class CycleGANTrainOptions(UnpairedTrainOptions):
    """Flags of ``gantool train cyclegan``: its own, plus the shared critic, loss and Adam groups.

    For the paper's schedule (constant learning rate for the first half, then linear decay to zero) add
    ``--lr-schedule linear --decay-start 0.5``; ``--batch-size 1`` is the paper's batch.
    """

    cycle_weight: float = flag(10.0, "Weight of the cycle-consistency L1 loss, in each direction.",
                               panel="Losses", min=0.0)
    identity_weight: float = flag(0.5, "Weight of the identity L1 loss G_AB(b) ~ b, as a fraction of "
                                  "--cycle-weight (0 disables it and saves two generator passes).",
                                  panel="Losses", min=0.0)
    pool_size: int = flag(50, "Generated images remembered per critic; critics see a random mix of old and "
                          "new fakes (0: only the newest).", panel="Losses", min=0)
    keep: Kept = flag("both", "Generators the exported model stores: both, or the AtoB or BtoA one only (half "
                      "the file; it then translates that way only). Training always runs both, the cycle "
                      "needs them; EMA follows the kept ones.", panel="Architecture")

    def directions(self) -> tuple[Direction, ...]:
        """The directions an exported model translates (``--keep``)."""
        return ("AtoB", "BtoA") if self.keep == "both" else (self.keep,)

    def describe_architecture(self) -> str:
        """Short text for ``gantool.architecture``."""
        generators = {"both": "two ResNet generators", "AtoB": "the A to B generator of two",
                      "BtoA": "the B to A generator of two"}[self.keep]
        return (f"CycleGAN: {generators} ({self.blocks} residual blocks, width {self.width}, {self.upsample} "
                f"upsampling, instance norm, reflect padding); generator_ab maps A to B, generator_ba B to A")


@dataclass(kw_only=True)
class CUTTrainOptions(UnpairedTrainOptions):
    """Flags of ``gantool train cut``: one generator (A to B) and one critic, with a patch-wise contrastive loss.

    CUT (Park et al. 2020) keeps content by making each patch of ``G(a)`` match the patch of ``a`` at the same
    place better than other patches of ``a`` (PatchNCE on the generator's own encoder features, through a
    small MLP head), instead of a second generator and a cycle: about half of CycleGAN's compute per step.
    Defaults are the paper's CUT (identity NCE on, 256 patches, temperature 0.07) with resize-conv upsampling.
    """

    upsample: Upsample = redefault(UnpairedTrainOptions, "upsample", "nearest",
                                   help="Generator upsampling: a nearest/bilinear resize + 3x3 conv (no "
                                   "checkerboard pattern), or the transposed convolutions of CycleGAN.")
    nce_weight: float = flag(1.0, "Weight of the PatchNCE loss (the GAN loss has weight 1).", panel="Losses",
                             min=0.0)
    nce_identity: bool = flag(True, "Also PatchNCE between real B and G(b) (the paper's CUT; off: FastCUT, "
                              "which then usually wants --nce-weight 10).", panel="Losses")
    nce_patches: int = flag(256, "Patches sampled per feature layer and image for PatchNCE.", panel="Losses",
                            min=2, max=4096)
    nce_temperature: float = flag(0.07, "Temperature of PatchNCE's softmax.", panel="Losses", min=1e-3)
    nce_dim: int = flag(256, "Output size of the MLP head that projects each feature layer's patches.",
                        panel="Architecture", min=8, max=4096)

    def describe_architecture(self) -> str:
        """Short text for ``gantool.architecture``."""
        return (f"CUT: one ResNet generator A to B ({self.blocks} residual blocks, width {self.width}, "
                f"{self.upsample} upsampling, instance norm, reflect padding)")
