"""Option dataclasses of the ``pix2pix`` task: fields become ``--flags`` of ``translate``, ``train`` and ``eval``.

Imported on every CLI start (through the task card), so nothing here may import torch. The architecture
and loss flags are shared with every conditional-GAN task and live in :mod:`gantool.cgan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gantool import flag
from gantool.lib.conditional import ConditionalGANOptions
from gantool.lib.options import load_size_problems

Direction = Literal["AtoB", "BtoA"]
Layout = Literal["auto", "side-by-side", "folders"]

#: pix2pix resizes 256-pixel images to 286 before its random 256 crop (jitter of up to 30 pixels).
LOAD_RATIO = 286 / 256


@dataclass(kw_only=True)
class TranslateOptions:
    """Flags of ``gantool translate`` that belong to pix2pix models.

    No ``direction`` here on purpose: a pix2pix model maps the way it was trained (the direction is in its
    metadata), while CycleGAN's translate options define ``--direction`` for its two generators.
    """

    seed: int | None = flag(None, "pix2pix models: keep the generator's dropout on, drawn from this seed, for "
                            "varied but repeatable outputs (the paper's noise). Default: off, so the same input "
                            "always gives the same output.")


@dataclass(kw_only=True)
class Pix2PixEvalOptions:
    """Per pair and mean: L1, PSNR and SSIM of the model's translation of A against B.

    DATA is a paired folder (A|B side by side, or A/ and B/); its test/ split when it has one.
    """

    size: int | None = flag(None, "Square side pairs are resized to (default: the model's training crop; 0: as "
                            "stored).", min=0)


@dataclass(kw_only=True)
class Pix2PixTrainOptions(ConditionalGANOptions):
    """Flags of ``gantool train pix2pix``: data layout and direction, plus the shared cGAN flags."""

    direction: Direction = flag("AtoB", "AtoB learns to map A to B; BtoA the reverse (facades: A is the photo, B "
                                "the label map, so labels to photo is BtoA).", panel="Data")
    layout: Layout = flag("auto", "side-by-side: each file holds A|B (left half A); folders: A/ and B/ with "
                          "matching file names; auto: folders when A/ and B/ exist.", panel="Data")
    load_size: int | None = flag(None, "Resize both images to this square side before the random crop (default: "
                                 "crop * 286/256, pix2pix's jitter; equal to --crop for no jitter).",
                                 panel="Data", min=8)

    def problems(self) -> list[str]:
        return [*super().problems(), *load_size_problems(self.load_size, self.crop)]

    @property
    def resize_to(self) -> int:
        """The square side images are resized to before cropping."""
        return self.load_size if self.load_size is not None else round(self.crop * LOAD_RATIO)
