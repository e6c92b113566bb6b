"""Option dataclasses of the ``inpaint`` task: fields become ``--flags`` of ``inpaint``, ``train`` and ``eval``.

Imported on every CLI start (through the task card), so nothing here may import torch or numpy. The
architecture fields (``width``, ``prior``) and ``crop`` (the resolution the network works at) are stored
in every exported model and read back at inference: their defaults must never change meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gantool import flag
from gantool.errors import UsageError
from gantool.lib.options import AdamOptions, CriticOptions, GanLossOptions
from gantool.plugin.options import redefault

Prior = Literal["telea", "none"]
#: Mask families of :mod:`gantool.lib.masks` (``--masks`` also takes a folder of mask images).
MASK_FAMILIES = ("lama-thick", "lama-medium", "lama-thin", "strokes", "box", "mixed")


def ratio_problems(name: str, values: tuple[float, ...]) -> list[str]:
    """A hole-ratio range must be two fractions, low < high."""
    if len(values) != 2 or not 0.0 <= values[0] < values[1] <= 1.0:
        return [f"--{name} must be two fractions LOW,HIGH with 0 <= LOW < HIGH <= 1, got {values}"]
    return []


@dataclass(kw_only=True)
class InpaintOptions:
    """Flags of ``gantool inpaint`` that belong to this task."""

    invert_mask: bool = flag(False, "The masks are white (or 1) where the image is KEPT and black in the holes "
                             "(MAT, CoModGAN, MI-GAN); the default is white = hole (IOPaint, OpenCV, LaMa).")
    dilate: int = flag(2, "Grow every hole by N pixels before filling (models want masks slightly larger than the "
                       "object); the grown ring is blended softly into the original, so the seam does not show.",
                       min=0, max=64)
    show_mask: bool = flag(False, "Write the image with its (dilated) holes tinted red instead of filling them: a "
                           "quick check of mask polarity and size (the network is not run).")
    window: int = flag(0, "Largest side, in pixels, of the window around a hole that the network fills at full "
                       "resolution; a hole needing a larger window is shrunk to it and the fill enlarged back. "
                       "0: 4x the model's training crop (512 for the bundled photo model).", min=0,
                       max=8192)


@dataclass(kw_only=True)
class InpaintEvalOptions:
    """Per hole-ratio bucket and mean: hole PSNR, whole-image PSNR and SSIM, hole L1 and seconds per image, for
    the model next to OpenCV TELEA (radius 5) and NS (radius 4).

    DATA is a folder of photos, cut into non-overlapping CROPxCROP tiles from the top left (images smaller than
    CROP are skipped). Masks are generated per bucket with a fixed seed (1000 + bucket index), or read from
    --masks DIR (255 = hole; a file named <image>_c<k> goes with tile k of that image, the others go round the
    tiles in order) and bucketed by their own hole ratio. FID and KID per bucket when the Inception file is
    installed.
    """

    masks: str = flag("generated", "'generated' (LaMa thick/medium/thin mix, rejection-sampled into each bucket) "
                      "or a folder of mask images.")
    buckets: tuple[int, ...] = flag((10, 20, 30, 40, 50, 60), "Bucket edges in percent of hole pixels: 10,20,30 "
                                    "makes the buckets 10-20 and 20-30.")
    crop: int = flag(256, "Side of the square tiles scored.", min=16)
    limit: int | None = flag(None, "Score at most this many tiles (the first ones).", min=1)
    inception: bool = flag(True, "FID and KID per bucket (each method's filled tiles against the originals) with "
                           "the Inception network when it is installed (see gantool.lib.inception).",
                           flags="--inception/--no-inception")

    def __post_init__(self) -> None:
        edges = tuple(self.buckets)
        if len(edges) < 2 or any(not 0 <= e <= 100 for e in edges) or list(edges) != sorted(set(edges)):
            raise UsageError(f"--buckets must be at least two increasing percentages, got {edges}")


@dataclass(kw_only=True)
class InpaintTrainOptions(CriticOptions, GanLossOptions, AdamOptions):
    """Flags of ``gantool train inpaint``: a gated-convolution generator refining a classical fill, and a
    spectral-norm PatchGAN critic; L1 on hole and known pixels, hinge GAN and critic feature matching.

    Masks are drawn on the fly for every crop (``--masks``, ``--hole-ratio``), or taken from a folder.
    """

    spectral_norm: bool = redefault(CriticOptions, "spectral_norm", True)
    gan_loss: str = redefault(GanLossOptions, "gan_loss", "hinge")  # type: ignore[assignment]
    adversarial_weight: float = redefault(GanLossOptions, "adversarial_weight", 0.01)

    width: int = flag(32, "Channels of the generator's first layer (x2 after each of its two downsamplings).",
                      panel="Architecture", min=4)
    prior: Prior = flag("telea", "What the generator refines: telea (OpenCV's fast-marching fill; the last layer "
                        "starts at zero, so an untrained model equals TELEA) or none (holes zeroed).",
                        panel="Architecture")
    crop: int = flag(128, "Side of the square training crops; also the resolution inference runs the network at "
                     "(a crop of this size around each hole, downscaled when the hole is larger).", panel="Data",
                     min=16)
    masks: str = flag("mixed", "Holes to train on: lama-thick, lama-medium, lama-thin, strokes (DeepFill v2), box, "
                      "mixed (thick/medium/thin 0.5/0.35/0.15), or a folder of mask images (white = hole).",
                      panel="Data")
    hole_ratio: tuple[float, ...] = flag((0.1, 0.5), "Range of the fraction of hole pixels of generated masks.",
                                         panel="Data")
    hole_weight: float = flag(6.0, "Weight of the L1 loss on hole pixels.", panel="Losses", min=0.0)
    valid_weight: float = flag(1.0, "Weight of the L1 loss on known pixels (of the raw output).", panel="Losses",
                               min=0.0)
    feature_weight: float = flag(0.1, "Weight of the critic feature-matching loss.", panel="Losses", min=0.0)

    def __post_init__(self) -> None:
        problems = ratio_problems("hole-ratio", tuple(self.hole_ratio))
        if self.crop % 4:
            problems.append(f"--crop must be a multiple of 4 (the generator downsamples twice), got {self.crop}")
        if self.uses_critic:
            problems += self.critic_size_problems(self.crop)
        if problems:
            raise UsageError("inpaint options: " + "; ".join(problems))

    @property
    def uses_critic(self) -> bool:
        """Whether a critic is built and trained (an adversarial or feature-matching weight above zero)."""
        return self.adversarial_weight > 0 or self.feature_weight > 0

    def describe_architecture(self) -> str:
        """Short text for ``gantool.architecture``."""
        return f"gated conv, width {self.width}, prior {self.prior}, crop {self.crop}"
