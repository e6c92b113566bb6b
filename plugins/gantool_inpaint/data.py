"""Training data of ``inpaint``: random crops, each with a fresh hole mask and its classical fill.

Masks come from :mod:`gantool.lib.masks` (drawn from a numpy generator seeded off torch's per-sample
RNG, which the trainer seeds from (seed, epoch, position), so runs and resumes are reproducible) or from
a folder of mask images. The prior the generator refines (TELEA's fill, or the image with holes zeroed)
is made here too, in the data-loading workers, so the training step only runs networks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from gantool.errors import InputError
from gantool.image.files import list_images
from gantool.lib.data import ImageFolder, load_image
from gantool.lib.masks import FAMILIES, generate_mask

#: Mask values above this (on [0, 1]) are holes: IOPaint's 127 of 255.
THRESHOLD = 127.5 / 255.0


def make_prior(image: Tensor, hole: Tensor, kind: str) -> Tensor:
    """What the generator refines, ``(B, 3, H, W)`` in [0, 1]: ``image`` with its holes (``(B, 1, H, W)``,
    1 = hole) filled by OpenCV TELEA (radius 5) for ``"telea"``, or zeroed for ``"none"``.

    Known pixels are the image's own (TELEA works on 8 bits; only the holes take its values)."""
    if kind == "none":
        return image * (1 - hole)
    from gantool.image.classical import classical_inpaint

    filled = []
    for picture, holes in zip(image.float().cpu(), hole.cpu(), strict=True):
        array = classical_inpaint(picture.permute(1, 2, 0).numpy(), holes[0].numpy() > 0.5, "telea", 5)
        filled.append(torch.from_numpy(array).permute(2, 0, 1))
    telea = torch.stack(filled).to(image.device, image.dtype)
    return torch.where(hole > 0.5, telea, image)


class MaskedCrops(Dataset):
    """Items ``{"image": (3, c, c), "mask": (1, c, c) with 1 = hole, "prior": (3, c, c)}``, all in [0, 1]."""

    def __init__(self, root: Path, *, crop: int, masks: str, hole_ratio: tuple[float, float], prior: str) -> None:
        self.images = ImageFolder(root, crop=crop, flip=True, recursive=True)
        self.crop, self.family, self.ratio, self.prior = crop, masks, hole_ratio, prior
        self.mask_files: list[Path] = []
        if masks not in FAMILIES:
            folder = Path(masks)
            if not folder.is_dir():
                raise InputError(f"--masks '{masks}' is neither a mask family ({', '.join(FAMILIES)}) nor a folder")
            self.mask_files = list_images(folder, recursive=True)
            if not self.mask_files:
                raise InputError(f"--masks '{masks}': no mask images in this folder")

    def __len__(self) -> int:
        return len(self.images)

    def draw_mask(self, rng: np.random.Generator) -> Tensor:
        """A ``(1, crop, crop)`` float mask: generated, or a random file resized (nearest), flipped, turned."""
        size = (self.crop, self.crop)
        if not self.mask_files:
            return torch.from_numpy(generate_mask(rng, size, self.family, self.ratio)).float()[None]
        mask = load_image(self.mask_files[int(rng.integers(len(self.mask_files)))], channels=1)
        mask = (F.interpolate(mask[None], size=size, mode="nearest")[0] > THRESHOLD).float()
        return torch.rot90(mask, int(rng.integers(4)), dims=(1, 2)).contiguous()

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        image = self.images[index]["image"]
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))  # torch's RNG is seeded per sample
        mask = self.draw_mask(rng)
        prior = make_prior(image[None], mask[None], self.prior)[0]
        return {"image": image, "mask": mask, "prior": prior.contiguous()}
