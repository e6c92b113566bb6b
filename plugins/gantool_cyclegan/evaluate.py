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
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gantool.errors import InputError
from gantool.lib.metrics import MEAN_ROW, Column, mean_row, print_table, psnr, rows_as_json, to_8bit

__all__ = ["MEAN_ROW", "CycleRow", "evaluate", "print_rows", "rows_as_json", "test_folders"]


@dataclass
class CycleRow:
    """Scores of one test image (A images fill the AtoB columns, B images the BtoA ones), or the means."""

    image: str
    ab_cycle_psnr: float | None = None
    ab_change: float | None = None
    ba_cycle_psnr: float | None = None
    ba_change: float | None = None


def test_folders(data: Path) -> tuple[Path, Path]:
    """``(testA, testB)``, or ``(A, B)`` for an unsplit folder."""
    for a, b in (("testA", "testB"), ("A", "B")):
        if (data / a).is_dir() and (data / b).is_dir():
            return data / a, data / b
    raise InputError(f"'{data}' has neither testA/ + testB/ nor A/ + B/ folders of images")


def evaluate(model: str | Path | Any, data_dir: str | Path, *, size: int = 0,
             device: str | torch.device = "cpu") -> list[CycleRow]:
    """Score a CycleGAN model on both test domains; rows for every A image, then every B image, then the mean.

    Args:
        model: A model file, or an already loaded ``gantool.engine.export.LoadedModel``.
        data_dir: A CycleGAN dataset folder (``testA/``, ``testB/``; or ``A/``, ``B/``).
        size: Resize each image to this square side first (0: as stored).
        device: Where the model runs.
    """
    from gantool.engine.export import load_model
    from gantool.engine.runtime import resolve_device
    from gantool.lib.data import list_images, load_image
    from gantool_cyclegan import SPEC
    from gantool_cyclegan.options import TranslateOptions

    torch_device = resolve_device(str(device)) if isinstance(device, str) else device
    loaded = load_model(Path(model), SPEC, device=torch_device) if isinstance(model, str | Path) else model
    forward, backward = TranslateOptions(direction="AtoB"), TranslateOptions(direction="BtoA")
    rows = []
    for domain, folder in zip("AB", test_folders(Path(data_dir)), strict=True):
        paths = list_images(folder)
        if not paths:
            raise InputError(f"no images in '{folder}'")
        there, back = (forward, backward) if domain == "A" else (backward, forward)
        for path in paths:
            image = _resized(load_image(path)[None], size).to(torch_device)
            with torch.no_grad():
                translated = loaded.task.predict(loaded.networks, image, there)
                cycled = loaded.task.predict(loaded.networks, translated, back)
            image, translated, cycled = (to_8bit(t.float().cpu()) for t in (image, translated, cycled))
            scores = (float(psnr(cycled, image)), float((translated - image).abs().mean()))
            name = f"{folder.name}/{path.stem}"
            rows.append(CycleRow(name, *scores) if domain == "A" else CycleRow(name, None, None, *scores))
    rows.append(mean_row(rows))
    return rows


def _resized(image: Tensor, size: int) -> Tensor:
    if not size:
        return image
    return F.interpolate(image, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


_COLUMNS = [Column("AtoB cycle PSNR", "ab_cycle_psnr"), Column("AtoB change", "ab_change", ".4f"),
            Column("BtoA cycle PSNR", "ba_cycle_psnr"), Column("BtoA change", "ba_change", ".4f")]


def print_rows(rows: list[CycleRow], *, title: str = "cyclegan") -> None:
    """A rich table on stdout: per test image and mean, cycle PSNR and change in each direction."""
    print_table(rows, _COLUMNS, title=title)
