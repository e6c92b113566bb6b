"""``gantool eval cyclegan``: cycle consistency and amount of change on the held-out images of both domains.

Unpaired translation has no ground truth to compare with, and the usual distribution scores (FID) need
network weights that cannot be downloaded here. What can be measured on the test images, per image:

- **cycle PSNR**: ``a`` against ``G_BA(G_AB(a))`` (and ``b`` against ``G_AB(G_BA(b))``), PSNR with peak 1
  on 8-bit results: whether the translation keeps the content (it is what the cycle loss trains);
- **change**: mean absolute difference between ``a`` and ``G_AB(a)`` on [0, 1]: how much the translation
  alters the image. A model that returns its input has a perfect cycle and zero change, so the two
  columns are only meaningful together, and next to the sample grid.

The held-out split is ``testA/`` + ``testB/`` when present, else ``A/`` + ``B/``. Images are used at their
stored size unless ``size`` is given (the generators are fully convolutional).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantool import EvalColumn, EvalContext, EvalResult
from gantool.errors import InputError, UsageError
from gantool.lib.metrics import mean_row, psnr, to_8bit
from gantool_cyclegan.options import CycleGANEvalOptions, TranslateOptions

if TYPE_CHECKING:
    from gantool_cyclegan.task import CycleGAN

__all__ = ["COLUMNS", "CycleRow", "evaluate_domains", "test_folders"]


@dataclass
class CycleRow:
    """Scores of one test image (A images fill the AtoB columns, B images the BtoA ones), or the means."""

    image: str
    ab_cycle_psnr: float | None = None
    ab_change: float | None = None
    ba_cycle_psnr: float | None = None
    ba_change: float | None = None


COLUMNS = (EvalColumn(name="ab_cycle_psnr", header="AtoB cycle PSNR"),
           EvalColumn(name="ab_change", header="AtoB change", format=".4f"),
           EvalColumn(name="ba_cycle_psnr", header="BtoA cycle PSNR"),
           EvalColumn(name="ba_change", header="BtoA change", format=".4f"))


def test_folders(data: Path) -> tuple[Path, Path]:
    """``(testA, testB)``, or ``(A, B)`` for an unsplit folder."""
    for a, b in (("testA", "testB"), ("A", "B")):
        if (data / a).is_dir() and (data / b).is_dir():
            return data / a, data / b
    raise InputError(f"'{data}' has neither testA/ + testB/ nor A/ + B/ folders of images")


def evaluate_domains(task: CycleGAN, networks: dict[str, nn.Module] | None, data: Path,
                     options: CycleGANEvalOptions | None, context: EvalContext) -> EvalResult:
    """Score a CycleGAN model on both test domains; rows for every A image, then every B image, then the mean.

    Args:
        task: The task rebuilt from the model file.
        networks: Both generators on ``context.device``.
        data: A CycleGAN dataset folder (``testA/``, ``testB/``; or ``A/``, ``B/``).
        options: ``size``, the square side each image is resized to first (0: as stored).
        context: The device.
    """
    from gantool.lib.data import list_images, load_image

    if networks is None:
        raise UsageError("cyclegan evaluation needs a model (--model)")
    size = (options if options is not None else CycleGANEvalOptions()).size
    forward, backward = TranslateOptions(direction="AtoB"), TranslateOptions(direction="BtoA")
    rows = []
    for domain, folder in zip("AB", test_folders(Path(data)), strict=True):
        paths = list_images(folder)
        if not paths:
            raise InputError(f"no images in '{folder}'")
        there, back = (forward, backward) if domain == "A" else (backward, forward)
        for path in paths:
            image = _resized(load_image(path)[None], size).to(context.device)
            with torch.no_grad():
                translated = task.predict(networks, image, there)
                cycled = task.predict(networks, translated, back)
            image, translated, cycled = (to_8bit(t.float().cpu()) for t in (image, translated, cycled))
            scores = (float(psnr(cycled, image)), float((translated - image).abs().mean()))
            name = f"{folder.name}/{path.stem}"
            rows.append(CycleRow(name, *scores) if domain == "A" else CycleRow(name, None, None, *scores))
    return EvalResult(rows=[*rows, mean_row(rows)], columns=COLUMNS)


def _resized(image: Tensor, size: int) -> Tensor:
    if not size:
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
