"""The heavy side of the ``sharpen`` task: networks, training data, the GAN update and inference.

gantool imports this module only when ``gantool sharpen`` or ``gantool train sharpen`` actually runs
(the card in ``gantool_sharpen/__init__.py`` names it as ``"gantool_sharpen.task:Sharpen"``), so it is
free to import torch and kornia at the top.

The idea: any folder of photos is training data. Each item is a random crop (``target``) and the same
crop blurred with a random Gaussian sigma (``input``); a small residual generator learns to undo the
blur, pushed by an L1 loss towards the original and by a patch critic towards realistic detail.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from gantool.data import ImageFolder
from gantool.errors import UsageError
from gantool.task import Task
from gantool_sharpen import SharpenOptions, SharpenTrainOptions

if TYPE_CHECKING:
    from gantool.engine.step import TrainStep
    from gantool.spec import TaskSpec

# ------------------------------------------------------------------------------------------------ networks


class ResidualBlock(nn.Module):
    """conv-act-conv with a skip connection: cheap depth without losing the input's detail."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SharpenGenerator(nn.Module):
    """Predicts a correction that is added to the blurry input, so output size equals input size.

    The last convolution starts at zero: an untrained generator is the identity, which makes early
    training stable and keeps every sample grid meaningful from step 0. Fully convolutional (3x3
    kernels, no pooling), so tiled inference is exact away from tile borders.
    """

    def __init__(self, width: int = 32, blocks: int = 4) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        self.tail = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: Tensor) -> Tensor:
        features = self.body(F.leaky_relu(self.head(x), 0.2))
        return x + self.tail(F.leaky_relu(features, 0.2))


class PatchCritic(nn.Module):
    """A small PatchGAN-style critic: one realness score per 26x26 patch, not one per image."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, width * 2, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width * 2, width * 2, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width * 2, 1, 3, padding=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


# -------------------------------------------------------------------------------------------------- data


def blur_kernel_size(sigma_max: float) -> int:
    """Odd Gaussian kernel size covering +-3 sigma of the widest blur."""
    return 2 * math.ceil(3 * sigma_max) + 1


def gaussian_blur(images: Tensor, sigma: float, kernel_size: int) -> Tensor:
    """Blur a (B, 3, H, W) batch with kornia, reflecting at the borders like a real out-of-focus photo."""
    return kornia.filters.gaussian_blur2d(images, (kernel_size, kernel_size), (sigma, sigma), border_type="reflect")


class BlurPairs(Dataset):
    """Photos paired with a blurred copy: ``{"input": blurred, "target": sharp}``, both ``(3, crop, crop)``.

    No labels or paired data are needed, which is what makes this task easy to try on your own photos:
    ``photos`` is any dataset of ``{"image": (3, H, W)}`` crops (``gantool.data.ImageFolder``). The blur
    sigma is drawn from torch's global RNG, which gantool's trainer seeds per sample, so runs are
    reproducible for any ``--num-workers`` and after a resume.
    """

    def __init__(self, photos: Dataset, *, blur_min: float, blur_max: float) -> None:
        if blur_min > blur_max:
            raise ValueError(f"blur_min ({blur_min}) must not exceed blur_max ({blur_max})")
        self.photos = photos
        self.blur_min = blur_min
        self.blur_max = blur_max
        self.kernel_size = blur_kernel_size(blur_max)

    def __len__(self) -> int:
        return len(self.photos)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        sharp = self.photos[index]["image"]
        sigma = self.blur_min + float(torch.rand(())) * (self.blur_max - self.blur_min)
        blurred = gaussian_blur(sharp[None], sigma, self.kernel_size)[0].clamp(0.0, 1.0)
        return {"input": blurred, "target": sharp}


# -------------------------------------------------------------------------------------------------- task


def least_squares(scores: Tensor, target: float) -> Tensor:
    """LSGAN loss in float32 (scores may come out of autocast in half precision)."""
    return (scores.float() - target).pow(2).mean()


class Sharpen(Task):
    """Undo Gaussian blur: generator ``generator`` (exported), critic ``critic`` (training only)."""

    def __init__(self, spec: TaskSpec, options: SharpenTrainOptions | None = None) -> None:
        super().__init__(spec, options if options is not None else SharpenTrainOptions())

    def build_networks(self) -> dict[str, nn.Module]:
        return {**self.build_inference_networks(), "critic": PatchCritic(self.options.critic_width)}

    def build_inference_networks(self) -> dict[str, nn.Module]:
        # Only ``width`` and ``blocks`` shape it: both are saved with the exported model.
        return {"generator": SharpenGenerator(self.options.width, self.options.blocks)}

    def build_dataset(self, data: Path) -> Dataset:
        """Random flipped crops of every photo under ``data`` (sub-folders too), each with a blurred copy."""
        o = self.options
        if o.blur_min > o.blur_max:
            raise UsageError(f"--blur-min {o.blur_min} is larger than --blur-max {o.blur_max}")
        if blur_kernel_size(o.blur_max) // 2 >= o.crop:
            raise UsageError(f"--crop {o.crop} is too small for --blur-max {o.blur_max}; use a larger crop")
        photos = ImageFolder(data, crop=o.crop, recursive=True, flip=True)
        return BlurPairs(photos, blur_min=o.blur_min, blur_max=o.blur_max)

    def training_step(self, batch: dict[str, Tensor], step: TrainStep) -> dict[str, Tensor]:
        """Critic first on real and detached fake together (one forward for DDP), then the generator."""
        blurred, sharp = batch["input"], batch["target"]
        with step.autocast():
            restored = step.networks["generator"](blurred)
            real_scores, fake_scores = step.networks["critic"](torch.cat([sharp, restored.detach()])).chunk(2)
            critic_loss = 0.5 * (least_squares(real_scores, 1.0) + least_squares(fake_scores, 0.0))
        step.update("critic", critic_loss)

        with step.autocast(), step.frozen("critic") as critic:
            adversarial = least_squares(critic(restored), 1.0)
            l1 = F.l1_loss(restored.float(), sharp.float())
            generator_loss = self.options.l1_weight * l1 + self.options.adversarial_weight * adversarial
        step.update("generator", generator_loss)
        return {"critic": critic_loss.detach(), "generator": generator_loss.detach(), "l1": l1.detach(),
                "adversarial": adversarial.detach()}

    def visualize(self, batch: dict[str, Tensor], networks: dict[str, nn.Module]) -> list[Tensor]:
        """Rows: blurred input, the generator's result, the sharp original."""
        blurred = batch["input"]
        return [blurred, networks["generator"](blurred).clamp(0.0, 1.0), batch["target"]]

    def predict(self, networks: dict[str, nn.Module], image: Tensor, options: Any | None = None) -> Tensor:
        """Sharpen, then blend with the input by ``strength`` (0 returns the input untouched)."""
        strength = float((options or SharpenOptions()).strength)
        if strength == 0.0:
            return image
        restored = networks["generator"](image)
        return (image + strength * (restored - image)).clamp(0.0, 1.0)

    def export_metadata(self) -> dict[str, str]:
        o = self.options
        return {
            **super().export_metadata(),
            "gantool.architecture": f"residual CNN, {o.width} channels x {o.blocks} blocks (undoes Gaussian blur)",
        }
