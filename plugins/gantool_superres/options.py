"""Option dataclasses of the ``superres`` task: fields become ``--flags`` of ``upscale``, ``train`` and ``eval``.

Imported on every CLI start (through the task card), so nothing here may import torch.

The architecture fields (``arch``, ``scale``, ``width``, ``blocks``) are stored in every exported model
and read back at inference to rebuild the generator: their defaults must never change meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gantool import flag
from gantool.errors import UsageError
from gantool.lib.options import AdamOptions, CriticOptions, GanLossOptions
from gantool.plugin.options import redefault

Architecture = Literal["compact", "srresnet", "rrdb"]
Stage = Literal["pretrain", "gan"]
Degradation = Literal["bicubic", "realistic"]
Skip = Literal["bicubic", "nearest"]

SCALES = (2, 3, 4)
#: Overlap of the tiles of ``eval superres --tile`` (the tiler's default), in input pixels.
EVAL_TILE_OVERLAP = 16
#: Residual blocks per architecture when ``--blocks`` is not given (compact: conv layers in the body).
DEFAULT_BLOCKS = {"compact": 12, "srresnet": 16, "rrdb": 23}
#: Learning rate per stage when ``--lr`` is not given (ESRGAN: 2e-4 for PSNR pretraining, 1e-4 for the GAN).
DEFAULT_LR = {"pretrain": 2e-4, "gan": 1e-4}


@dataclass(kw_only=True)
class UpscaleOptions:
    """Flags of ``gantool upscale`` that belong to this task."""

    scale: int = flag(4, "Which bundled model to use when --model is not given: superres-x2 or superres-x4 "
                      "(a model file carries its own scale).", min=2, max=4)
    outscale: float | None = flag(
        None, "Final scale relative to the input (e.g. 3.5): the whole network output is resized to it once, "
        "after tiling, with antialiased MATLAB-style bicubic (alpha follows). Default: the model's own scale.",
        min=0.01)


@dataclass(kw_only=True)
class SuperResEvalOptions:
    """PSNR and SSIM (Y channel, border of SCALE pixels cropped), per image and mean, model vs bicubic.

    DATA is a benchmark folder with HR/ and optionally LR_bicubic/X{scale}/ (the Set5/Set14 layout); the
    low-resolution inputs are made with MATLAB-style bicubic when LR_bicubic is absent. Without --model
    only bicubic is measured.
    """

    scale: int | None = flag(None, "2, 3 or 4 (default: the model's scale, or 4 without --model).")
    tile: int = flag(0, "Tile size in input pixels (0: whole images).", min=0)

    def __post_init__(self) -> None:
        problems = []
        if self.scale is not None and self.scale not in SCALES:
            problems.append(f"--scale must be 2, 3 or 4, got {self.scale}")
        if 0 < self.tile <= EVAL_TILE_OVERLAP:
            problems.append(f"--tile must be 0 (whole images) or larger than the {EVAL_TILE_OVERLAP}-pixel tile "
                            f"overlap, got {self.tile}")
        if problems:
            raise UsageError("; ".join(problems))


@dataclass(kw_only=True)
class SuperResTrainOptions(CriticOptions, GanLossOptions, AdamOptions):
    """Flags of ``gantool train superres``: its own, plus the shared critic, loss and Adam groups.

    Training is two-stage, as in SRGAN/ESRGAN: ``--stage pretrain`` optimises L1 only (a PSNR model), then
    ``--stage gan --pretrained runs/pre/model.safetensors`` fine-tunes it against a critic.
    """

    # Shared groups, with super-resolution's own defaults: a spectrally normalised critic, ESRGAN's betas,
    # a per-stage learning rate and a small adversarial weight next to the pixel and perceptual losses.
    spectral_norm: bool = redefault(CriticOptions, "spectral_norm", True)
    lr: float | None = redefault(  # type: ignore[assignment]  # None: the stage's default
        AdamOptions, "lr", None, help="Learning rate of the generator, and of the critic unless --lr-critic is "
        "given (default: 2e-4 pretrain, 1e-4 gan).")
    beta1: float = redefault(AdamOptions, "beta1", 0.9)
    beta2: float = redefault(AdamOptions, "beta2", 0.99)
    adversarial_weight: float = redefault(GanLossOptions, "adversarial_weight", 0.1,
                                          help="Weight of the generator's adversarial loss (ESRGAN: 0.005).")

    arch: Architecture = flag("compact", "Generator: compact (fast on CPU, ~0.5M parameters), srresnet "
                              "(SRGAN without batch norm) or rrdb (ESRGAN, 16.7M parameters at defaults).",
                              panel="Architecture")
    scale: int = flag(4, "Upscaling factor: 2, 3 or 4.", panel="Architecture", min=2, max=4)
    width: int = flag(64, "Feature channels of the generator.", panel="Architecture", min=4,
                      max=1024)
    blocks: int | None = flag(None, "Body depth of the generator (default: compact 12 conv layers, srresnet 16 "
                              "residual blocks, rrdb 23 RRDB blocks).", panel="Architecture", min=1,
                              max=128)
    skip: Skip = flag("bicubic", "Global skip of the compact generator: bicubic, or nearest as Real-ESRGAN's "
                      "SRVGG compact models use (set by `gantool models import`).", panel="Architecture")
    stage: Stage = flag("pretrain", "pretrain: L1 loss only; gan: adversarial fine-tuning with a critic.",
                        panel="Training stage")
    pretrained: str | None = flag(None, "A pretrain-stage model .safetensors to start the GAN stage from "
                                  "(must have the same arch, scale, width and blocks).", panel="Training stage")
    crop: int = flag(128, "Side of the square high-resolution training crops (rounded down to a multiple "
                     "of --scale).", panel="Data", min=16)
    degradation: Degradation = flag(
        "bicubic", "How low-resolution inputs are made from the crops: bicubic (MATLAB-style downscale, the "
        "benchmark setting) or realistic (random blur, downscale, noise and JPEG).", panel="Data")
    pixel_weight: float = flag(1.0, "Weight of the L1 loss in the GAN stage (ESRGAN used 0.01).",
                               panel="Losses", min=0.0)
    perceptual_weight: float = flag(1.0, "Weight of the VGG perceptual loss, or of the critic feature-matching "
                                    "loss that replaces it without --vgg-weights.", panel="Losses", min=0.0)
    vgg_weights: str | None = flag(None, "Local VGG19 weights file (.pth or .safetensors, torchvision key "
                                   "names) for the perceptual loss; nothing is downloaded.", panel="Losses")

    def __post_init__(self) -> None:
        problems = []
        if self.scale not in SCALES:
            problems.append(f"--scale must be 2, 3 or 4, got {self.scale}")
        if self.crop // max(self.scale, 1) < 8:
            problems.append(f"--crop {self.crop} is too small for --scale {self.scale}: the low-resolution crop "
                            "must be at least 8 pixels")
        if self.pretrained is not None and self.stage != "gan":
            problems.append("--pretrained is for --stage gan (the pretrain stage starts from scratch)")
        if self.stage == "gan":
            problems += self.critic_size_problems(self.hr_crop, "vgg")
        if problems:
            raise UsageError("superres options: " + "; ".join(problems))

    @property
    def body_blocks(self) -> int:
        """``blocks``, or the architecture's default depth."""
        return self.blocks if self.blocks is not None else DEFAULT_BLOCKS[self.arch]

    @property
    def learning_rate(self) -> float:
        """``lr``, or the stage's default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.stage]

    @property
    def hr_crop(self) -> int:
        """The training crop side, rounded down to a multiple of ``scale``."""
        return self.crop - self.crop % self.scale

    def describe_architecture(self) -> str:
        """Short text for ``gantool.architecture``, e.g. ``compact x4, 12 blocks, width 64``."""
        skip = ", nearest skip" if self.arch == "compact" and self.skip != "bicubic" else ""
        return f"{self.arch} x{self.scale}, {self.body_blocks} blocks, width {self.width}{skip}"
