"""The heavy side of ``colorize``: pix2pix in Lab space, L in and ab out, and full-resolution inference.

Training data are colour photos only: each batch is made gray on the fly (Rec. 601 luma rounded to 8 bits,
exactly what a gray file holds), its lightness L is the generator's input and the photo's own ab the
target; the step itself is :func:`gantool.cgan.conditional_gan_step`, shared with pix2pix.

Inference runs the network at a working size (``--render-size``, the shorter side) and upsamples only its
chroma onto the untouched full-resolution L (:func:`gantool.color.transfer_chroma`), so a 24-megapixel
photo costs a 256-pixel network pass and keeps every detail.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from gantool import EvalContext, EvalResult
from gantool.image.io import check_work_size
from gantool.lib.color import (
    denormalize_ab,
    gray_lightness,
    is_gray,
    normalize_ab,
    normalize_l,
    rec601_gray,
    rgb_to_lab,
    transfer_chroma,
)
from gantool.lib.conditional import adversarial_loss, build_critic, build_generator, conditional_gan_step
from gantool.lib.nets.unet import run_any_size
from gantool.plugin.task import Task
from gantool_colorize.options import ColorizeTrainOptions

logger = logging.getLogger(__name__)


class ColorPhotos(Dataset):
    """Colour photos under a folder as ``{"image": (3, crop, crop)}`` in [0, 1].

    Each photo is resized so its shorter side is ``shorter_side`` (aspect kept, as inference's working
    size), then cropped at random and maybe mirrored. Randomness uses torch's global RNG, which the
    trainer seeds per sample.
    """

    def __init__(self, root: Path, *, shorter_side: int, crop: int, flip: bool = True) -> None:
        from gantool.errors import InputError
        from gantool.lib.data import list_images

        self.paths = list_images(root, recursive=True)
        if not self.paths:
            raise InputError(f"no images in '{root}' (sub-folders included): colorize trains on a folder of "
                             "colour photos")
        self.shorter_side, self.crop, self.flip = shorter_side, crop, flip

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        from gantool.lib.data import load_image, random_crop, random_flip, resize

        image = load_image(self.paths[index])
        height, width = image.shape[-2:]
        factor = self.shorter_side / min(height, width)
        image = resize(image, (max(self.crop, round(height * factor)), max(self.crop, round(width * factor))))
        (image,) = random_crop(image, size=self.crop)
        if self.flip:
            (image,) = random_flip(image)
        return {"image": image.contiguous()}


def working_size(size: tuple[int, int], render_size: int) -> tuple[int, int]:
    """``(H, W)`` scaled so the shorter side is ``render_size`` (aspect kept)."""
    height, width = size
    if torch.compiler.is_exporting():  # ONNX export: integer arithmetic on symbolic sides (ties round up)
        shorter = torch.sym_min(height, width)
        return tuple(torch.sym_max(1, (2 * side * render_size + shorter) // (2 * shorter))  # type: ignore[return-value]
                     for side in (height, width))
    factor = render_size / min(height, width)
    return max(1, round(height * factor)), max(1, round(width * factor))


class Colorize(Task):
    """Colourisation ``(B, 3, H, W)`` RGB in [0, 1] (gray or not) to ``(B, 3, H, W)`` colour.

    Networks: ``generator`` (U-Net, 1 channel normalised L in, 2 channels normalised ab out; exported) and
    ``critic`` (a PatchGAN on L|ab). Batches hold ``"image"``: colour photo crops.
    """

    #: A gray input's result is the point of the task: keep it RGB.
    output_gray_for_gray_input = False
    #: :meth:`predict` resizes the whole image to the working size; tiles would each be resized on their own.
    tileable = False

    def __init__(self, spec: Any, options: ColorizeTrainOptions | None = None) -> None:
        super().__init__(spec, options if options is not None else ColorizeTrainOptions())
        self.options: ColorizeTrainOptions
        self.adversarial = adversarial_loss(self.options)
        self._noted_colour_input = False

    # ----------------------------------------------------------------------------------------- networks

    def build_networks(self) -> dict[str, nn.Module]:
        return {"generator": build_generator(self.options, 1, 2), "critic": build_critic(self.options, 3)}

    def build_inference_networks(self) -> dict[str, nn.Module]:
        """Only the generator."""
        return {"generator": build_generator(self.options, 1, 2)}

    # ---------------------------------------------------------------------------------------- training

    def build_dataset(self, data: Path) -> Dataset:
        o = self.options
        return ColorPhotos(Path(data), shorter_side=o.shorter_side, crop=o.crop, flip=o.flip)

    @staticmethod
    def make_pair(rgb: Tensor) -> tuple[Tensor, Tensor]:
        """(generator input, target) for colour photos: normalised L of their gray version, their own ab."""
        with torch.no_grad():
            source = normalize_l(gray_lightness(rec601_gray(rgb.float())))
            target = normalize_ab(rgb_to_lab(rgb)[:, 1:]).clamp_(-1.0, 1.0)
        return source, target

    def training_step(self, batch: dict[str, Tensor], step: Any) -> dict[str, Tensor]:
        """pix2pix's step on (L, ab): critic on (L, ab) vs (L, G(L)), then GAN + ``l1_weight`` * L1 on ab."""
        source, target = self.make_pair(batch["image"])
        _, losses = conditional_gan_step(step, source, target, adversarial=self.adversarial,
                                         l1_weight=self.options.l1_weight,
                                         adversarial_weight=self.options.adversarial_weight)
        return losses

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows: the gray input, the colourised result, the original."""
        rgb = batch["image"].float()
        gray = rec601_gray(rgb)
        lightness = gray_lightness(gray)
        ab = denormalize_ab(networks["generator"](normalize_l(lightness)).float())
        return [gray.expand(-1, 3, -1, -1), transfer_chroma(ab, lightness), rgb]

    # --------------------------------------------------------------------------------------- inference

    def chroma(self, networks: dict[str, nn.Module], lightness: Tensor, render_size: int | None = None) -> Tensor:
        """ab (Lab units) predicted at the working size (default: the training one) for ``(B, 1, H, W)`` L."""
        size = working_size((lightness.shape[-2], lightness.shape[-1]), render_size or self.options.shorter_side)
        check_work_size(*size, what="the working size (--render-size)")  # before resizing to it
        small = lightness.float()
        if size != tuple(small.shape[-2:]):
            # Antialiasing only acts when shrinking (enlarging gives the same values, within 2e-6), so an ONNX
            # export, one graph for every size, always asks for it.
            antialias = torch.compiler.is_exporting() or size[0] < small.shape[-2]
            small = F.interpolate(small, size=size, mode="bilinear", align_corners=False,
                                  antialias=antialias).clamp_(0.0, 100.0)
        out = run_any_size(networks["generator"], normalize_l(small), 2**self.options.unet_depth)
        return denormalize_ab(out.float())

    def predict(self, networks: dict[str, nn.Module], image: Tensor, options: Any | None = None) -> Tensor:
        """Whole ``(B, 3, H, W)`` RGB (or ``(B, 1, H, W)`` gray) in [0, 1] to colour of the same size.

        The input's own lightness is kept exactly; only a and b come from the network. A colour input is
        re-coloured from its lightness; that is noted once per run.
        """
        if image.shape[1] == 1:
            image = image.expand(-1, 3, -1, -1)
        if not self._noted_colour_input and not torch.compiler.is_exporting() and not is_gray(image):
            self._noted_colour_input = True
            logger.warning("colorize: a colour input was given; it is re-coloured from its lightness (its own "
                           "colours are replaced)")
        lightness = rgb_to_lab(image)[:, :1]
        return transfer_chroma(self.chroma(networks, lightness, getattr(options, "render_size", None)), lightness)

    def evaluate(self, networks: dict[str, nn.Module] | None, data: Path, options: Any | None,
                 context: EvalContext) -> EvalResult:
        """``gantool eval colorize``: PSNR/SSIM and colourfulness against the originals (see :mod:`.evaluate`)."""
        from gantool_colorize.evaluate import evaluate_photos

        return evaluate_photos(self, networks, data, options, context)

    def export_metadata(self) -> dict[str, str]:
        """Colour space, value range and the architecture (L in, ab out)."""
        return {**super().export_metadata(),
                "gantool.architecture": "Lab " + self.options.describe_architecture(1, 2),
                "gantool.render_size": str(self.options.shorter_side)}
