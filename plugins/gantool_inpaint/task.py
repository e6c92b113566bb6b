"""The heavy side of ``inpaint``: gated-convolution generator, spectral-norm PatchGAN critic, training, predict.

Training (one step): the generator refines the prior of each masked crop; the critic (when an adversarial
or feature-matching weight is set) sees the composite (known pixels real, holes generated) next to the
mask, against the real crop. The generator's loss is L1 on hole pixels and on known pixels, the hinge
GAN loss and L1 between the critic's features of real and composite crops (feature matching, which needs
no downloaded network). Images are [0, 1] in gantool and [-1, 1] inside the networks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from gantool import EvalContext, EvalResult
from gantool.lib.losses import AdversarialLoss, feature_matching, masked_l1
from gantool.lib.nets.patchgan import PatchDiscriminator
from gantool.lib.ranges import to_signed, to_unit
from gantool.plugin.task import Task
from gantool_inpaint.data import MaskedCrops, make_prior
from gantool_inpaint.fill import binarise, composite, dilate, feather, fill_holes, overlay
from gantool_inpaint.networks import InpaintGenerator, run_padded
from gantool_inpaint.options import InpaintOptions, InpaintTrainOptions

logger = logging.getLogger(__name__)


#: A mask whose holes cover more of the image than this is probably of the other polarity (white = kept).
INVERTED_RATIO = 0.6

#: Windows up to this many times the training crop are filled at full resolution (``--window 0``). Shrinking a
#: window to the crop lost the detail KID sees: on 100 NVIDIA masks of 40-60 % over Kodak24 256-pixel tiles,
#: filling them whole (2x the bundled model's crop) took KID from 3 above TELEA's to 19-24 below it
#: (docs/inpaint.md, "The network's window").
WINDOW_FACTOR = 4


def warn_if_inverted(hole: Tensor, inverted: bool) -> None:
    """Say so when the holes cover most of the image: the commonest mask mistake is the polarity."""
    ratio = float(hole.mean())
    if ratio > INVERTED_RATIO:
        colour, flag = ("black", "without") if inverted else ("white", "with")
        logger.warning("inpaint: the mask marks %.0f%% of the image as hole (%s = hole); if %s is what to keep, "
                       "run %s --invert-mask", 100 * ratio, colour, colour, flag)


class Inpaint(Task):
    """Hole filling ``{"image": (B, 3, H, W), "mask": (B, 1, H, W)}`` to ``(B, 3, H, W)``, RGB in [0, 1].

    Networks: ``generator`` (:class:`~gantool_inpaint.networks.InpaintGenerator`, exported) and, when
    used, ``critic`` (a spectral-norm PatchGAN on the 4-channel image|mask). Batches hold ``"image"``,
    ``"mask"`` (1 = hole) and ``"prior"``.
    """

    #: predict crops windows around the holes itself (at least the training crop), so it needs the whole
    #: image: tiles would cut hole regions and their context apart.
    tileable = False

    def __init__(self, spec: Any, options: InpaintTrainOptions | None = None) -> None:
        super().__init__(spec, options if options is not None else InpaintTrainOptions())
        self.options: InpaintTrainOptions
        self.adversarial = AdversarialLoss(self.options.gan_loss)

    # ----------------------------------------------------------------------------------------- networks

    def build_networks(self) -> dict[str, nn.Module]:
        networks: dict[str, nn.Module] = {"generator": InpaintGenerator(self.options.width)}
        if self.options.uses_critic:
            networks["critic"] = PatchDiscriminator.from_options(self.options, 4, norm="none")
        return networks

    def build_inference_networks(self) -> dict[str, nn.Module]:
        """Only the generator."""
        return {"generator": InpaintGenerator(self.options.width)}

    # ---------------------------------------------------------------------------------------- training

    def build_dataset(self, data: Path) -> Dataset:
        o = self.options
        ratio = (float(o.hole_ratio[0]), float(o.hole_ratio[1]))
        return MaskedCrops(Path(data), crop=o.crop, masks=o.masks, hole_ratio=ratio, prior=o.prior)

    def training_step(self, batch: dict[str, Tensor], step: Any) -> dict[str, Tensor]:
        """Critic on real vs composite (when used), then the generator on L1 + GAN + feature matching."""
        o = self.options
        image, hole, prior = to_signed(batch["image"]), batch["mask"], to_signed(batch["prior"])
        with step.autocast():
            out = step.networks["generator"](prior, hole).float()
        l1_hole, l1_valid = masked_l1(out, image, hole), masked_l1(out, image, 1 - hole)
        losses: dict[str, Tensor] = {"l1_hole": l1_hole.detach(), "l1_valid": l1_valid.detach()}
        loss = o.hole_weight * l1_hole + o.valid_weight * l1_valid
        if o.uses_critic:
            fake = torch.cat([out * hole + image * (1 - hole), hole], dim=1)
            real = torch.cat([image, hole], dim=1)
            d_loss, _, _ = self.adversarial.update_critic(step, real, fake)
            with step.autocast(), step.frozen("critic") as critic:
                adversarial, features = self.adversarial.generator_with_features(critic, real, fake)
                matching = feature_matching(features)
            loss = loss + o.adversarial_weight * adversarial + o.feature_weight * matching
            losses |= {"d": d_loss.detach(), "adv": adversarial.detach(), "fm": matching.detach()}
        step.update("generator", loss)
        return {"g": loss.detach(), **losses}

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows: the masked input, the prior, the composite result, the original."""
        image, hole = batch["image"].float(), batch["mask"].float()
        out = to_unit(networks["generator"](to_signed(batch["prior"].float()), hole).float(), clamp=True)
        return [overlay(image, hole), batch["prior"].float(), composite(image, out, hole), image]

    # --------------------------------------------------------------------------------------- inference

    def fill(self, networks: dict[str, nn.Module], image: Tensor, hole: Tensor) -> Tensor:
        """The network's fill of ``image`` (``(1, 3, h, w)``) at its size, holes ``(1, 1, h, w)``, 1 = hole."""
        prior = make_prior(image, hole, self.options.prior)
        return to_unit(run_padded(networks["generator"], to_signed(prior), hole).float(), clamp=True)

    def window(self, options: InpaintOptions) -> int:
        """The largest window the network fills at full resolution: ``--window``, or WINDOW_FACTOR x the crop."""
        return options.window or WINDOW_FACTOR * self.options.crop

    def predict(self, networks: dict[str, nn.Module], image: Any, options: Any | None = None) -> Tensor:
        """``{"image", "mask"}`` to the image with its holes filled; known pixels returned unchanged.

        The mask is binarised (white > 127 = hole, or the reverse with ``--invert-mask``), grown by
        ``--dilate`` and filled window by window (:func:`fill_holes`: windows of at least the training crop,
        at full resolution up to :meth:`window`); the grown ring is feathered. An image without holes comes
        back as it was.
        """
        o = options if isinstance(options, InpaintOptions) else InpaintOptions()
        pictures, masks = image["image"], image["mask"]
        if pictures.shape[1] == 1:
            pictures = pictures.expand(-1, 3, -1, -1)
        results = []
        for picture, mask in zip(pictures.split(1), masks.split(1), strict=True):
            hole = binarise(mask, o.invert_mask)
            warn_if_inverted(hole, o.invert_mask)
            grown = dilate(hole, o.dilate)
            if o.show_mask:
                results.append(overlay(picture, grown))
            elif not bool(grown.any()):
                results.append(picture)
            else:
                filled = fill_holes(picture, grown, lambda p, h: self.fill(networks, p, h), least=self.options.crop,
                                    most=self.window(o), prior=self.options.prior)
                results.append(composite(picture, filled, feather(hole, o.dilate)))
        return torch.cat(results)

    #: predict's OpenCV prior and its loop over hole regions cannot be traced: the graph is one window's fill.
    onnx_outside_graph = ("mask: binarise (> 0.5 after --invert-mask), --dilate, pass 1 = hole",
                          "image: fill the holes first with OpenCV TELEA radius 5 (cv2.inpaint) when the model's "
                          "gantool.train_options say prior 'telea'; any values with prior 'none'",
                          "windows around each hole region, at least the training size (train option 'crop'); "
                          "one larger than --window (default 4x crop) shrunk to it; the fill pasted back",
                          "feathered compositing of the --dilate ring", "gray/alpha handling")

    def onnx_predict(self, networks: dict[str, nn.Module], image: Any, options: Any | None = None) -> Tensor:
        """One window's fill for ONNX: ``{"image": prior-filled (1, 3, H, W), "mask": (1, 1, H, W)}`` to the
        image with the network's fill in the holes (``mask > 0.5``) and every other pixel its own."""
        del options
        picture, hole = image["image"], (image["mask"] > 0.5).float()
        prior = make_prior(picture, hole, "none") if self.options.prior == "none" else picture
        out = to_unit(run_padded(networks["generator"], to_signed(prior), hole).float(), clamp=True)
        return composite(picture, out, hole)

    def evaluate(self, networks: dict[str, nn.Module] | None, data: Path, options: Any | None,
                 context: EvalContext) -> EvalResult:
        """``gantool eval inpaint``: per hole-ratio bucket, the model next to TELEA and NS (see :mod:`.evaluate`)."""
        from gantool_inpaint.evaluate import evaluate_buckets

        return evaluate_buckets(self, networks, data, options, context)

    def export_metadata(self) -> dict[str, str]:
        """Colour space, value range, the architecture and the mask polarity the model expects."""
        return {**super().export_metadata(), "gantool.architecture": self.options.describe_architecture(),
                "gantool.mask_polarity": "white = hole"}
