"""The heavy side of ``colorize``: pix2pix in Lab space, L in and ab out, and full-resolution inference.

Training data are colour photos only: each batch is made gray on the fly (Rec. 601 luma rounded to 8 bits,
exactly what a gray file holds), its lightness L is the generator's input and the photo's own ab the
target; the step itself is :func:`gantool.cgan.conditional_gan_step`, shared with pix2pix.

Two heads (``--head``, stored in the model file; files without it are regression): *regression* is
pix2pix's tanh ab with GAN + L1; *classification* predicts logits over the ab bins inside sRGB at half
resolution (:mod:`gantool.lib.abbins`), learnt with class-rebalanced cross-entropy on soft targets plus
``adversarial_weight`` times the GAN term on the annealed-mean colour, and decoded by annealed mean.

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
from gantool.lib.nets.unet import UNet, run_any_size
from gantool.plugin.task import Task
from gantool_colorize.options import ColorizeTrainOptions

#: The classification head predicts at half the input size.
CLASSIFIER_DOWNSCALE = 2

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

    @property
    def classifies(self) -> bool:
        """Whether the generator predicts ab bins (``--head classification``)."""
        return self.options.head == "classification"

    def build_networks(self) -> dict[str, nn.Module]:
        """The generator, and the critic unless a classification run has ``--adversarial-weight 0``."""
        networks = self.build_inference_networks()
        if not self.classifies or self.options.adversarial_weight > 0:
            networks["critic"] = build_critic(self.options, 3)
        return networks

    def build_inference_networks(self) -> dict[str, nn.Module]:
        """Only the generator: a U-Net of ab (regression), or an :class:`ABClassifier` of bin logits."""
        if not self.classifies:
            return {"generator": build_generator(self.options, 1, 2)}
        from gantool.lib.abbins import ABClassifier, gamut_bins

        o, bins = self.options, gamut_bins()
        unet = UNet(1, len(bins), width=o.width, depth=o.unet_depth, norm=o.norm, dropout=o.dropout,
                    half_res_logits=True)
        return {"generator": ABClassifier(unet, bins)}

    # ---------------------------------------------------------------------------------------- training

    def build_dataset(self, data: Path) -> Dataset:
        o = self.options
        self._dataset = ColorPhotos(Path(data), shorter_side=o.shorter_side, crop=o.crop, flip=o.flip)
        return self._dataset

    @staticmethod
    def make_pair(rgb: Tensor) -> tuple[Tensor, Tensor]:
        """(generator input, target) for colour photos: normalised L of their gray version, their own ab."""
        with torch.no_grad():
            source = normalize_l(gray_lightness(rec601_gray(rgb.float())))
            target = normalize_ab(rgb_to_lab(rgb)[:, 1:]).clamp_(-1.0, 1.0)
        return source, target

    def training_step(self, batch: dict[str, Tensor], step: Any) -> dict[str, Tensor]:
        """Regression: pix2pix's step on (L, ab), critic on (L, ab) vs (L, G(L)), then GAN + ``l1_weight`` * L1.
        Classification: :meth:`classification_step`."""
        source, target = self.make_pair(batch["image"])
        if self.classifies:
            return self.classification_step(step, source, target, batch["image"])
        _, losses = conditional_gan_step(step, source, target, adversarial=self.adversarial,
                                         l1_weight=self.options.l1_weight,
                                         adversarial_weight=self.options.adversarial_weight)
        return losses

    def classification_step(self, step: Any, source: Tensor, target: Tensor, rgb: Tensor) -> dict[str, Tensor]:
        """Rebalanced cross-entropy on half-size ab, plus ``adversarial_weight`` * GAN on the decoded colour.

        The critic sees (L, ab) at full size, the real ab passed through the same half-size round trip as
        the prediction (so blur cannot give the fake away). The rebalancing weights are estimated on the
        first step of a run (:meth:`estimate_rebalancing`) and kept in the generator's buffers.
        """
        from gantool.lib.abbins import rebalanced_cross_entropy

        head = step.raw_networks["generator"]
        if not head.has_rebalancing:
            head.set_rebalancing(self.estimate_rebalancing(rgb))
        small = F.avg_pool2d(denormalize_ab(target), CLASSIFIER_DOWNSCALE)
        with step.autocast():
            logits = step.networks["generator"](source)
        cross_entropy = rebalanced_cross_entropy(logits, small, head.bins, head.rebalance)
        losses = {"ce": cross_entropy.detach()}
        loss = cross_entropy
        if self.options.adversarial_weight > 0:
            size = tuple(source.shape[-2:])
            colour = self.decode_logits(logits, head.bins, head.rebalance)
            fake = normalize_ab(F.interpolate(colour, size=size, mode="bilinear", align_corners=False))
            real = normalize_ab(F.interpolate(small, size=size, mode="bilinear", align_corners=False))
            d_loss, _, _ = self.adversarial.update_critic(step, torch.cat([source, real], 1),
                                                          torch.cat([source, fake], 1))
            with step.autocast(), step.frozen("critic") as critic:
                g_adversarial = self.adversarial.generator_via(critic, torch.cat([source, fake], 1),
                                                               torch.cat([source, real], 1))
            loss = loss + self.options.adversarial_weight * g_adversarial
            losses.update(d=d_loss.detach(), g_gan=g_adversarial.detach())
        step.update("generator", loss)
        losses["g"] = loss.detach()
        return losses

    def estimate_rebalancing(self, fallback: Tensor) -> Tensor:
        """Per-bin weights from up to ``rebalance_images`` training photos (evenly spaced, fixed crops).

        Runs once per run, under a forked RNG seeded 0, so the training's random stream is untouched and a
        rerun gets the same weights. Without a dataset (a task driven by hand), ``fallback``'s own pixels
        are used.
        """
        from gantool.lib.abbins import bin_histogram, gamut_bins, rebalancing_weights

        bins = gamut_bins()
        counts = torch.zeros(len(bins), dtype=torch.float64)
        dataset = getattr(self, "_dataset", None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            if dataset is None:
                photos = [fallback.float().cpu()]
            else:
                count = min(len(dataset), self.options.rebalance_images)
                positions = torch.linspace(0, len(dataset) - 1, count).round().long().tolist()
                photos = [dataset[i]["image"][None] for i in positions]
            for photo in photos:
                ab = F.avg_pool2d(rgb_to_lab(photo)[:, 1:], CLASSIFIER_DOWNSCALE)
                counts += bin_histogram(ab, bins)
        weights = rebalancing_weights(counts, bins, mix=self.options.rebalance_mix)
        logger.info("colorize: rebalancing weights from %d photo(s), %d of %d bins seen; weights %.2f..%.2f",
                    len(photos), int((counts > 0).sum()), len(bins), float(weights.min()), float(weights.max()))
        return weights

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows: the gray input, the colourised result, the original."""
        rgb = batch["image"].float()
        gray = rec601_gray(rgb)
        lightness = gray_lightness(gray)
        return [gray.expand(-1, 3, -1, -1), transfer_chroma(self.decode(networks, normalize_l(lightness)), lightness),
                rgb]

    def decode_logits(self, logits: Tensor, bins: Tensor, rebalance: Tensor | None, temperature: float | None = None,
                      prior_correction: float | None = None) -> Tensor:
        """ab (Lab units) of bin logits: ``prior_correction`` of the rebalancing divided out, then the
        annealed mean (each ``None``: the model's own setting)."""
        from gantool.lib.abbins import annealed_mean, divide_out_rebalancing

        correction = self.options.prior_correction if prior_correction is None else prior_correction
        if rebalance is not None:
            logits = divide_out_rebalancing(logits, rebalance, correction)
        return annealed_mean(logits, bins, temperature or self.options.temperature)

    def decode(self, networks: dict[str, nn.Module], source: Tensor, temperature: float | None = None,
               prior_correction: float | None = None) -> Tensor:
        """ab (Lab units) of the generator for normalised L of any size, at that size.

        Classification decodes its half-size logits there and doubles the result bilinearly (then crops an
        odd side), so the chroma stays registered with the lightness."""
        generator = networks["generator"]
        if not self.classifies:
            return denormalize_ab(run_any_size(generator, source, 2**self.options.unet_depth).float())
        logits = run_any_size(generator, source, 2**self.options.unet_depth, downscale=CLASSIFIER_DOWNSCALE)
        head = getattr(generator, "module", generator)  # DDP's wrapper (a compiled module passes attributes on)
        bins = getattr(head, "bins", None)
        if bins is None:
            from gantool.lib.abbins import gamut_bins

            bins = gamut_bins()
        half = self.decode_logits(logits, bins, getattr(head, "rebalance", None), temperature, prior_correction)
        ab = F.interpolate(half, scale_factor=CLASSIFIER_DOWNSCALE, mode="bilinear", align_corners=False)
        return ab[..., :source.shape[-2], :source.shape[-1]]

    # --------------------------------------------------------------------------------------- inference

    def chroma(self, networks: dict[str, nn.Module], lightness: Tensor, render_size: int | None = None,
               temperature: float | None = None, prior_correction: float | None = None) -> Tensor:
        """ab (Lab units) predicted at the working size (default: the training one) for ``(B, 1, H, W)`` L;
        ``temperature`` and ``prior_correction``: the decoding's (classification; default the model's)."""
        size = working_size((lightness.shape[-2], lightness.shape[-1]), render_size or self.options.shorter_side)
        check_work_size(*size, what="the working size (--render-size)")  # before resizing to it
        small = lightness.float()
        if size != tuple(small.shape[-2:]):
            # Antialiasing only acts when shrinking (enlarging gives the same values, within 2e-6), so an ONNX
            # export, one graph for every size, always asks for it.
            antialias = torch.compiler.is_exporting() or size[0] < small.shape[-2]
            small = F.interpolate(small, size=size, mode="bilinear", align_corners=False,
                                  antialias=antialias).clamp_(0.0, 100.0)
        return self.decode(networks, normalize_l(small), temperature, prior_correction)

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
        chroma = self.chroma(networks, lightness, getattr(options, "render_size", None),
                             getattr(options, "temperature", None), getattr(options, "prior_correction", None))
        return transfer_chroma(chroma, lightness)

    def evaluate(self, networks: dict[str, nn.Module] | None, data: Path, options: Any | None,
                 context: EvalContext) -> EvalResult:
        """``gantool eval colorize``: PSNR/SSIM and colourfulness against the originals (see :mod:`.evaluate`)."""
        from gantool_colorize.evaluate import evaluate_photos

        return evaluate_photos(self, networks, data, options, context)

    def export_metadata(self) -> dict[str, str]:
        """Colour space, value range and the architecture (L in, ab out or ab-bin logits out)."""
        if self.classifies:
            from gantool.lib.abbins import gamut_bins

            architecture = (f"Lab {self.options.describe_architecture(1, len(gamut_bins()))} (logits of ab bins at "
                            f"half size, annealed mean T={self.options.temperature}, prior correction "
                            f"{self.options.prior_correction})")
        else:
            architecture = "Lab " + self.options.describe_architecture(1, 2)
        return {**super().export_metadata(), "gantool.architecture": architecture,
                "gantool.render_size": str(self.options.shorter_side)}
