"""Option dataclasses of the ``lapgan`` and ``dcgan`` generation tasks (torch-free: the cards import them).

The architecture fields (``size``, ``latent``, ``width``, ``level_width``, ``levels``, ``classes``,
``attention``, ``generator_spectral_norm``) are saved in every exported model and rebuild its networks at
inference; their defaults must keep their meaning. Defaults follow SN-GAN/SAGAN practice for small images:
spectral norm in the critics, hinge loss, Adam (2e-4, beta1 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from gantool import flag
from gantool.errors import UsageError
from gantool.lib.options import AdamOptions, GanLoss, GanLossOptions
from gantool.plugin.options import redefault

#: ``--classes all``: every class sub-folder of the training data, sorted by name (settled when training starts).
ALL_CLASSES = "all"

#: Largest feature-map side a self-attention block may sit at (see gantool.lib.nets.attention.MAX_SIDE).
MAX_ATTENTION_SIDE = 64


def _is_power_of_two(value: int) -> bool:
    return value > 0 and not value & (value - 1)


@dataclass(kw_only=True)
class DCGANTrainOptions(GanLossOptions, AdamOptions):
    """Flags of ``gantool train dcgan``: one DCGAN generator and critic at the full image size.

    DATA is a folder of images, or of class sub-folders (with --classes).
    """

    size: int = flag(32, "Side of the generated square images: a power of two from 16 to 128.", panel="Architecture",
                     min=16, max=128)
    latent: int = flag(128, "Size of the noise vector of the (coarsest) generator.", panel="Architecture", min=1)
    width: int = flag(64, "Generator and critic channels at half the image side (doubling per halving, up to 8x).",
                      panel="Architecture", min=8)
    classes: tuple[str, ...] = flag((), "Class-conditional model: the DATA sub-folders to learn, in label order, "
                                    "e.g. cat,dog, or `all` for every sub-folder of images, sorted by name "
                                    "(their names are what `generate --class` accepts).", panel="Architecture")
    attention: tuple[int, ...] = flag((), "SAGAN self-attention after the feature maps of these sides in generator "
                                      "and critic, e.g. 32,16 (at most 64; attention is global, so such models "
                                      "are never tiled).", panel="Architecture")
    spectral_norm: bool = flag(True, "Spectral norm on the critics' layers (Miyato et al. 2018).",
                               panel="Architecture", flags="--spectral-norm/--no-spectral-norm")
    generator_spectral_norm: bool = flag(False, "Spectral norm on the generators' layers too (SAGAN); exported "
                                         "models hold the folded plain weights.", panel="Architecture")
    gan_loss: GanLoss = redefault(GanLossOptions, "gan_loss", "hinge")
    flip: bool = flag(True, "Random left-right flips of the training images.", panel="Data", flags="--flip/--no-flip")

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise UsageError(f"{type(self).__name__.removesuffix('TrainOptions').lower()} options: "
                             + "; ".join(problems))

    def problems(self) -> list[str]:
        """Every reason these options cannot build networks, all at once."""
        found = []
        if not _is_power_of_two(self.size):
            found.append(f"--size {self.size} is not a power of two")
        bad = [side for side in self.attention if not _is_power_of_two(side) or not 8 <= side <= MAX_ATTENTION_SIDE]
        if bad:
            found.append(f"--attention sides must be powers of two from 8 to {MAX_ATTENTION_SIDE} (global attention "
                         f"at larger maps costs N^2/4 floats: 4 GiB per image at 256), got {bad}")
        if len(set(self.classes)) != len(self.classes) or any(not name for name in self.classes):
            found.append(f"--classes must be distinct non-empty names, got {','.join(self.classes)!r}")
        elif ALL_CLASSES in self.classes and len(self.classes) > 1:
            found.append(f"--classes {ALL_CLASSES} takes every sub-folder: list names or say {ALL_CLASSES}, not both")
        return found

    def describe_architecture(self) -> str:
        """Short text for ``gantool.architecture``."""
        extras = [f"attention at {','.join(map(str, self.attention))}" if self.attention else "",
                  f"{len(self.classes)} classes" if self.classes else ""]
        return f"DCGAN {self.size}px, latent {self.latent}, width {self.width}" + "".join(
            f", {extra}" for extra in extras if extra)


@dataclass(kw_only=True)
class LapGANTrainOptions(DCGANTrainOptions):
    """Flags of ``gantool train lapgan``: a Laplacian pyramid of generators, one critic per level.

    DATA is a folder of images, or of class sub-folders (with --classes). Every level trains on the real
    pyramid of the data, so the levels are independent: all train at once, or some (--train-levels) with
    the others taken from a model (--init).
    """

    levels: int | None = flag(None, "Pyramid levels, the coarsest made by a DCGAN generator from noise (default: "
                              "as many as make the coarsest 16 px).", panel="Architecture", min=1, max=5)
    level_width: int = flag(32, "Channels of the finer levels' residual generators.", panel="Architecture", min=8)
    train_levels: tuple[int, ...] = flag((), "Train only the levels of these sides, e.g. 64 (default: all). The "
                                         "others keep their weights, from --init MODEL (e.g. a LapGAN of the size "
                                         "below, to add a finer level) or as drawn; the model file holds every "
                                         "level.", panel="Training stage")

    @property
    def level_count(self) -> int:
        """``levels``, or the count that makes the coarsest level 16 px (at least 1)."""
        if self.levels is not None:
            return self.levels
        return max(1, (self.size // 16).bit_length())

    @property
    def sides(self) -> tuple[int, ...]:
        """Level sides from coarsest to finest, e.g. (16, 32, 64)."""
        return tuple(self.size >> level for level in reversed(range(self.level_count)))

    def problems(self) -> list[str]:
        found = super().problems()
        if not found and self.size >> (self.level_count - 1) < 8:
            found.append(f"--levels {self.level_count} at --size {self.size} makes the coarsest level smaller "
                         "than 8 px")
        elif not found and not set(self.train_levels) <= set(self.sides):
            found.append(f"--train-levels {','.join(map(str, self.train_levels))}: this pyramid's levels are "
                         f"{','.join(map(str, self.sides))}")
        return found

    @property
    def trained_sides(self) -> tuple[int, ...]:
        """The sides this run trains, coarsest first: ``train_levels``, or every level."""
        return tuple(side for side in self.sides if not self.train_levels or side in self.train_levels)

    def describe_architecture(self) -> str:
        return (f"LapGAN {'->'.join(map(str, self.sides))}px: DCGAN base (latent {self.latent}, width {self.width}), "
                f"residual levels (width {self.level_width})"
                + super().describe_architecture().split(f"width {self.width}", 1)[1])


@dataclass(kw_only=True)
class GenerateOptions:
    """Flags of ``gantool generate`` that belong to these tasks."""

    pyramid: bool = flag(False, "LapGAN: write each sample as a strip of its pyramid levels, coarse to fine "
                         "(each shown at full size), instead of the final image.")
    interpolate: int = flag(0, "Write each sample as a strip of this many frames walking (slerp, every level's "
                            "noise) from it to the next sample, the last of each 8 back to the first: with -n 8 "
                            "--grid, 8 rows that chain into one loop. 0: off.", min=0, max=64)

    def __post_init__(self) -> None:
        if self.interpolate == 1:
            raise UsageError("--interpolate 1 is a single frame: give 2 or more frames (or 0 for off)")


@dataclass(kw_only=True)
class GenerationEvalOptions:
    """Sliced Wasserstein distance (ProGAN protocol) of N samples against N real images, next to the
    real-vs-real floor (N other real images), sample diversity (MS-SSIM) and, when the metrics extra is
    installed, KID and FID.

    DATA is a folder of real images held out from training (2N of them; fewer lower N).
    """

    count: int = flag(1000, "Samples to draw (N).", short="-n", min=2)
    seed: int = flag(0, "Seed of the samples and of the random directions.")
    inception: bool = flag(True, "KID and FID with the Inception network when it is installed "
                           "(see gantool.lib.inception).", flags="--inception/--no-inception")
    neighbours: str | None = flag(None, "Write a nearest-neighbour grid to this PNG: 8 samples, each with its 7 "
                                  "nearest images of --train-data (pixel distance): a memorisation check.")
    train_data: str | None = flag(None, "Training folder for --neighbours (default: DATA) and --parzen.")
    per_class: bool = flag(False, "Class-conditional models: also score each class on its own (DATA holds the "
                           "model's class sub-folders): N / classes samples of the class against as many of its "
                           "real images, next to that class's own floor.", flags="--per-class/--no-per-class")
    side: int | None = flag(None, "Score at this coarser side instead (a power of two below the model's size, 8 or "
                            "more): every set, samples and real, is pyrDown'd to it, so models compare on coarse "
                            "structure alone (a LapGAN's base against a single-scale model).", min=8)
    parzen: int | None = flag(None, "Print instead the Parzen-window log-likelihood of held-out images under a "
                              "Gaussian KDE on this many samples (the GAN and LapGAN papers' metric, with 10000), "
                              "next to a KDE on as many --train-data images when given.", min=1)
    diversity: bool = flag(False, "Print instead the mode-collapse check: MS-SSIM within N samples and within N "
                           "real images, each the mean of 2000 random pairs under three pair seeds, and their "
                           "ratio (about 1: as varied as the real images).", flags="--diversity/--no-diversity")
