"""Option dataclasses of the ``colorize`` task: fields become ``--flags`` of ``colorize``, ``train`` and ``eval``.

Imported on every CLI start (through the task card), so nothing here may import torch. The network and
loss flags are the conditional-GAN ones of :mod:`gantool.cgan`, shared with pix2pix.
"""

from __future__ import annotations

from dataclasses import dataclass

from gantool import flag
from gantool.lib.conditional import ConditionalGANOptions
from gantool.lib.options import load_size_problems


@dataclass(kw_only=True)
class ColorizeOptions:
    """Flags of ``gantool colorize`` that belong to this task."""

    render_size: int | None = flag(None, "Working size: the image's shorter side is resized to this for the "
                                   "network, whose colour is then upsampled onto the full-resolution original "
                                   "lightness (output size = input size). Default: the shorter side the model "
                                   "was trained at (stored in the model file), where it sees objects at the "
                                   "scale it learnt them.", min=16)


@dataclass(kw_only=True)
class ColorizeEvalOptions:
    """Per image and mean: PSNR and SSIM (RGB) of the result and of the gray input, and colourfulness.

    DATA is a folder of colour photos (e.g. Kodak24); each is made gray, colourised and compared with the
    original. Without --model the bundled colorize model is scored.
    """

    render_size: int | None = flag(None, "Working size of the network (shorter side; default: the model's "
                                   "training size).", min=16)


@dataclass(kw_only=True)
class ColorizeTrainOptions(ConditionalGANOptions):
    """Flags of ``gantool train colorize``: the shared cGAN flags plus how photos become training crops."""

    load_size: int | None = flag(None, "Resize each photo so its shorter side is this many pixels before the "
                                 "random crop (default: --crop), matching how `gantool colorize "
                                 "--render-size` shows images to the network.", panel="Data", min=8)

    def problems(self) -> list[str]:
        return [*super().problems(), *load_size_problems(self.load_size, self.crop)]

    @property
    def shorter_side(self) -> int:
        """The shorter side photos are resized to before cropping."""
        return self.load_size if self.load_size is not None else self.crop
