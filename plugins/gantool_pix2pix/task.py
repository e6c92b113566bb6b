"""The heavy side of ``pix2pix``: U-Net generator, conditional PatchGAN critic, paired data, inference.

Training follows Isola et al. 2017 through :func:`gantool.cgan.conditional_gan_step`; data come from
:class:`gantool.data.PairedImages` (A|B side by side, or A/ and B/ folders), with ``--direction BtoA``
swapping the halves so the task always learns A to B. Images are [0, 1] in gantool and [-1, 1] inside
the networks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from gantool import EvalContext, EvalResult
from gantool.lib.conditional import adversarial_loss, build_critic, build_generator, conditional_gan_step
from gantool.lib.nets.unet import dropout_active, run_any_size
from gantool.lib.ranges import to_signed, to_unit
from gantool.plugin.task import Task
from gantool_pix2pix.options import Pix2PixTrainOptions

logger = logging.getLogger(__name__)

CHANNELS = 3


def run_generator(generator: nn.Module, values: Tensor, multiple: int, seed: int | None = None) -> Tensor:
    """Generator pass at any size (padded to ``multiple``); with ``seed``, dropout on, drawn from that seed.

    The seeded RNG is forked, so asking for noise does not disturb the caller's random stream, and the
    same seed gives the same output on the same device.
    """
    if seed is None:
        return run_any_size(generator, values, multiple)
    devices = [values.device] if values.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), dropout_active(generator):
        torch.manual_seed(seed)
        return run_any_size(generator, values, multiple)


def training_root(data: Path) -> Path:
    """``data/train`` when the folder is split into train/ (and test/, val/), else ``data`` itself."""
    split = data / "train"
    if split.is_dir() and not ((data / "A").is_dir() and (data / "B").is_dir()):
        logger.info("pix2pix: training on '%s'", split)
        return split
    return data


class Pix2Pix(Task):
    """Paired translation ``(B, 3, H, W)`` to ``(B, 3, H, W)``, RGB in [0, 1].

    Networks: ``generator`` (:class:`gantool.nets.unet.UNet`, exported) and ``critic`` (a PatchGAN on the
    6-channel input|output pair). Batches hold ``"A"`` (input) and ``"B"`` (target).
    """

    #: The U-Net sees the whole image at once (its receptive field is global and instance norm uses
    #: whole-image statistics), so tiles would each be translated differently; run on whole images.
    tileable = False

    def __init__(self, spec: Any, options: Pix2PixTrainOptions | None = None) -> None:
        super().__init__(spec, options if options is not None else Pix2PixTrainOptions())
        self.options: Pix2PixTrainOptions
        self.adversarial = adversarial_loss(self.options)

    # ----------------------------------------------------------------------------------------- networks

    def build_networks(self) -> dict[str, nn.Module]:
        return {"generator": build_generator(self.options, CHANNELS, CHANNELS),
                "critic": build_critic(self.options, 2 * CHANNELS)}

    def build_inference_networks(self) -> dict[str, nn.Module]:
        """Only the generator: inference never needs the critic."""
        return {"generator": build_generator(self.options, CHANNELS, CHANNELS)}

    # ---------------------------------------------------------------------------------------- training

    def build_dataset(self, data: Path) -> Dataset:
        """Aligned pairs: resize to ``resize_to``, the same random crop and flip for A and B.

        A dataset folder with a ``train/`` split (pix2pix's releases: ``facades/train``, ``facades/test``)
        trains on ``train/`` only, so that ``--data facades`` never learns from the test pairs.
        """
        from gantool.lib.data import PairedImages

        o = self.options
        return PairedImages(training_root(Path(data)), layout=o.layout, direction=o.direction,
                            load_size=o.resize_to, crop=o.crop, flip=o.flip, recursive=True)

    def training_step(self, batch: dict[str, Tensor], step: Any) -> dict[str, Tensor]:
        """Critic on (A, B) vs (A, G(A)), then generator on GAN + ``l1_weight`` * L1."""
        _, losses = conditional_gan_step(step, to_signed(batch["A"]), to_signed(batch["B"]),
                                         adversarial=self.adversarial, l1_weight=self.options.l1_weight,
                                         adversarial_weight=self.options.adversarial_weight)
        return losses

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows: input A, the generator's output, target B."""
        fake = to_unit(networks["generator"](to_signed(batch["A"])).float(), clamp=True)
        return [batch["A"].float(), fake, batch["B"].float()]

    # --------------------------------------------------------------------------------------- inference

    def predict(self, networks: dict[str, nn.Module], image: Tensor, options: Any | None = None) -> Tensor:
        """``(B, 3, H, W)`` (or gray ``(B, 1, H, W)``) in [0, 1] to the RGB translation, same size, any ``H, W``.

        Deterministic (dropout off, batch norm on running statistics) unless ``options.seed`` is set.
        """
        if image.shape[1] == 1:
            image = image.expand(-1, CHANNELS, -1, -1)
        seed = getattr(options, "seed", None)
        multiple = 2**self.options.unet_depth
        return to_unit(run_generator(networks["generator"], to_signed(image), multiple, seed).float(), clamp=True)

    def evaluate(self, networks: dict[str, nn.Module] | None, data: Path, options: Any | None,
                 context: EvalContext) -> EvalResult:
        """``gantool eval pix2pix``: L1, PSNR and SSIM against the targets (see :mod:`.evaluate`)."""
        from gantool_pix2pix.evaluate import evaluate_pairs

        return evaluate_pairs(self, networks, data, options, context)

    def export_metadata(self) -> dict[str, str]:
        """Colour space, value range, the architecture and the trained direction."""
        o = self.options
        return {**super().export_metadata(), "gantool.architecture": o.describe_architecture(CHANNELS, CHANNELS),
                "gantool.direction": o.direction}
