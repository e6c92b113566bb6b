"""``gantool eval colorize``: how close colourised gray photos come to the originals, and how colourful.

Protocol, per photo of a folder (e.g. ``../shared/data/photos/Kodak24``):

1. the gray input is the photo's Rec. 601 luma rounded to 8 bits (what a gray file of it holds);
2. the model colourises it (:meth:`Colorize.predict`, at ``render_size``) and the result is rounded to 8 bits;
3. PSNR (peak 1, mean squared error over all three channels) and SSIM (11x11 Gaussian window, sigma 1.5,
   per channel on [0, 1], averaged over the valid region and the channels) of the result against the
   original, and the same for the gray input itself: the *gray baseline* that a colouriser must beat;
4. Hasler and Suesstrunk's colourfulness of the result and of the original: a model can buy PSNR by
   predicting timid, grayish colour, and this column shows it.

The gray baseline on Kodak24 is 22.73 dB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gantool.errors import InputError
from gantool.lib.color import colorfulness, rec601_gray
from gantool.lib.metrics import MEAN_ROW, Column, mean_row, print_table, psnr, rows_as_json, ssim, to_8bit

__all__ = ["MEAN_ROW", "ColorizeRow", "evaluate", "print_rows", "psnr", "rows_as_json"]


@dataclass
class ColorizeRow:
    """Scores of one image (or of the mean row)."""

    image: str
    psnr: float
    ssim: float
    gray_psnr: float
    gray_ssim: float
    colorfulness: float
    original_colorfulness: float


def evaluate(model: str | Path | Any, data_dir: str | Path, *, render_size: int | None = None,
             device: str | torch.device = "cpu") -> list[ColorizeRow]:
    """Score a colorize model on every image of a folder; one row per image (sorted), then the mean.

    Args:
        model: A model file, or an already loaded ``gantool.engine.export.LoadedModel``.
        data_dir: Folder of colour photos (not searched recursively).
        render_size: The network's working size (``gantool colorize --render-size``; None: the model's).
        device: Where the model runs.
    """
    from gantool.engine.export import load_model
    from gantool.engine.runtime import resolve_device
    from gantool.lib.data import list_images, load_image
    from gantool_colorize import SPEC
    from gantool_colorize.options import ColorizeOptions

    torch_device = resolve_device(str(device)) if isinstance(device, str) else device
    loaded = load_model(Path(model), SPEC, device=torch_device) if isinstance(model, str | Path) else model
    paths = list_images(data_dir)
    if not paths:
        raise InputError(f"no images in '{data_dir}': expected colour photos such as Kodak24")
    options = ColorizeOptions(render_size=render_size)
    rows = []
    for path in paths:
        original = load_image(path)[None]
        gray = rec601_gray(original).expand(-1, 3, -1, -1)
        with torch.no_grad():
            result = loaded.task.predict(loaded.networks, gray.to(torch_device), options)
        result = to_8bit(result.float().cpu())
        rows.append(ColorizeRow(
            image=path.stem, psnr=float(psnr(result, original)), ssim=float(ssim(result, original)),
            gray_psnr=float(psnr(gray, original)), gray_ssim=float(ssim(gray, original)),
            colorfulness=float(colorfulness(result)), original_colorfulness=float(colorfulness(original))))
    rows.append(mean_row(rows))
    return rows


_COLUMNS = [Column("PSNR", "psnr"), Column("SSIM", "ssim", ".4f"), Column("gray PSNR", "gray_psnr"),
            Column("gray SSIM", "gray_ssim", ".4f"), Column("colourfulness", "colorfulness", ".1f"),
            Column("original colourfulness", "original_colorfulness", ".1f")]


def print_rows(rows: list[ColorizeRow], *, title: str = "colorize") -> None:
    """A rich table on stdout, then the mean colourfulness as a share of the originals'."""
    from rich.console import Console

    print_table(rows, _COLUMNS, title=title)
    console = Console(soft_wrap=False)
    mean = rows[-1]
    if mean.original_colorfulness > 0:
        console.print(f"mean colourfulness: {100 * mean.colorfulness / mean.original_colorfulness:.0f}% of the "
                      "originals'")
