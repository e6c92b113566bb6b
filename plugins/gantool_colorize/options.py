"""Option dataclasses of the ``colorize`` task: fields become ``--flags`` of ``colorize``, ``train`` and ``eval``.

Imported on every CLI start (through the task card), so nothing here may import torch. The network and
loss flags are the conditional-GAN ones of :mod:`gantool.cgan`, shared with pix2pix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gantool import flag
from gantool.lib.conditional import ConditionalGANOptions
from gantool.lib.options import load_size_problems

Head = Literal["regression", "classification"]
#: Zhang et al.'s annealed-mean temperature: vivid but not patchy.
DEFAULT_TEMPERATURE = 0.38
#: How much of the training's rebalancing the decoding divides out: on validation photos (not Kodak24), the
#: most accurate setting that kept the mean colourfulness ratio at 0.8 or more (docs/colorize.md).
DEFAULT_PRIOR_CORRECTION = 0.15
_PRIOR_CORRECTION_HELP = ("Classification models: how much of the rare-colour boost that rebalanced training gives "
                          "is divided out before decoding: 0 keeps it (most vivid, more wrong colours), 1 removes it "
                          "(most accurate, muted). ")
_TEMPERATURE_HELP = ("Annealed-mean temperature of classification models: lower gives more vivid colour (towards "
                     "the most likely bin), 1 the mean of the predicted distribution (timid, sepia). ")


@dataclass(kw_only=True)
class ColorizeOptions:
    """Flags of ``gantool colorize`` that belong to this task."""

    render_size: int | None = flag(None, "Working size: the image's shorter side is resized to this for the "
                                   "network, whose colour is then upsampled onto the full-resolution original "
                                   "lightness (output size = input size). Default: the shorter side the model "
                                   "was trained at (stored in the model file), where it sees objects at the "
                                   "scale it learnt them.", min=16)
    temperature: float | None = flag(None, _TEMPERATURE_HELP + "Default: the model's (stored in the file). "
                                     "Regression models ignore it.", min=0.01, max=1.0)
    prior_correction: float | None = flag(None, _PRIOR_CORRECTION_HELP + "Default: the model's (stored in the "
                                          "file). Regression models ignore it.", min=0.0, max=1.0)


@dataclass(kw_only=True)
class ColorizeEvalOptions:
    """Per image and mean: PSNR and SSIM (RGB) of the result and of the gray input, and colourfulness.

    DATA is a folder of colour photos (e.g. Kodak24); each is made gray, colourised and compared with the
    original. Without --model the bundled colorize model is scored.
    """

    render_size: int | None = flag(None, "Working size of the network (shorter side; default: the model's "
                                   "training size).", min=16)
    temperature: float | None = flag(None, _TEMPERATURE_HELP + "Default: the model's.", min=0.01, max=1.0)
    prior_correction: float | None = flag(None, _PRIOR_CORRECTION_HELP + "Default: the model's.", min=0.0, max=1.0)
    inception: bool = flag(True, "FID and KID of the colourised set and of the gray inputs against the originals, "
                           "with the Inception network when it is installed (see gantool.lib.inception).",
                           flags="--inception/--no-inception")


@dataclass(kw_only=True)
class ColorizeTrainOptions(ConditionalGANOptions):
    """Flags of ``gantool train colorize``: the shared cGAN flags plus how photos become training crops."""

    load_size: int | None = flag(None, "Resize each photo so its shorter side is this many pixels before the "
                                 "random crop (default: --crop), matching how `gantool colorize "
                                 "--render-size` shows images to the network.", panel="Data", min=8)
    head: Head = flag("regression", "What the generator predicts. regression: ab through tanh, learnt with GAN + "
                      "--l1-weight * L1 (pix2pix's; averages plausible colours into sepia; files without this "
                      "field are regression). classification: logits over the ab bins inside sRGB (grid 10, "
                      "at half resolution), learnt with class-rebalanced cross-entropy (+ --adversarial-weight "
                      "* GAN, 0 trains no critic) and decoded by annealed mean: more colourful. Use classification "
                      "for colourful results (see docs/colorize.md).", panel="Architecture")
    temperature: float = flag(DEFAULT_TEMPERATURE, _TEMPERATURE_HELP + "Classification: stored in the model as "
                              "the default of `gantool colorize --temperature`; also decodes the colour the "
                              "critic judges in training.", panel="Losses", min=0.01, max=1.0)
    rebalance_mix: float = flag(0.5, "Classification: rebalancing weights are 1 / ((1 - mix) * p + mix / Q) for "
                                "the training data's (smoothed) bin distribution p, estimated once at the start "
                                "from up to --rebalance-images photos; 1 = no rebalancing, lower = rare colours "
                                "weigh more.", panel="Losses", min=0.0, max=1.0)
    prior_correction: float = flag(DEFAULT_PRIOR_CORRECTION, _PRIOR_CORRECTION_HELP + "Classification: stored in "
                                   "the model as the default of `gantool colorize --prior-correction`; also "
                                   "decodes the colour the critic judges in training. Files without it get "
                                   f"{DEFAULT_PRIOR_CORRECTION}.", panel="Losses", min=0.0, max=1.0)
    rebalance_images: int = flag(512, "Classification: photos sampled to estimate the bin distribution.",
                                 panel="Losses", min=1)

    def problems(self) -> list[str]:
        found = [*super().problems(), *load_size_problems(self.load_size, self.crop)]
        if not 0.0 < self.temperature <= 1.0:
            found.append(f"--temperature must be in (0, 1], got {self.temperature}")
        if not 0.0 <= self.prior_correction <= 1.0:
            found.append(f"--prior-correction must be in [0, 1], got {self.prior_correction}")
        return found

    @property
    def shorter_side(self) -> int:
        """The shorter side photos are resized to before cropping."""
        return self.load_size if self.load_size is not None else self.crop
