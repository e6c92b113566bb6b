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
from typing import TYPE_CHECKING

import torch
from torch import nn

from gantool import EvalColumn, EvalContext, EvalResult
from gantool.errors import InputError, UsageError
from gantool.lib.color import colorfulness, rec601_gray
from gantool.lib.metrics import mean_row, psnr, ssim, to_8bit
from gantool_colorize.options import ColorizeEvalOptions, ColorizeOptions

if TYPE_CHECKING:
    from gantool_colorize.task import Colorize

__all__ = ["COLUMNS", "ColorizeRow", "evaluate_photos"]


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


COLUMNS = (EvalColumn(name="psnr", header="PSNR"), EvalColumn(name="ssim", header="SSIM", format=".4f"),
           EvalColumn(name="gray_psnr", header="gray PSNR"),
           EvalColumn(name="gray_ssim", header="gray SSIM", format=".4f"),
           EvalColumn(name="colorfulness", header="colourfulness", format=".1f"),
           EvalColumn(name="original_colorfulness", header="original colourfulness", format=".1f"))


def evaluate_photos(task: Colorize, networks: dict[str, nn.Module] | None, data: Path,
                    options: ColorizeEvalOptions | None, context: EvalContext) -> EvalResult:
    """Score a colorize model on every image of a folder; one row per image (sorted), then the mean.

    Args:
        task: The task rebuilt from the model file.
        networks: The loaded generator on ``context.device``.
        data: Folder of colour photos (not searched recursively).
        options: ``render_size``, the network's working size (``gantool colorize --render-size``; None: the
            model's).
        context: The device.

    Returns:
        The rows, and a note giving the mean colourfulness as a share of the originals'.
    """
    from gantool.lib.data import list_images, load_image

    if networks is None:
        raise UsageError("colorize evaluation needs a model (--model)")
    paths = list_images(data)
    if not paths:
        raise InputError(f"no images in '{data}': expected colour photos such as Kodak24")
    render_size = (options if options is not None else ColorizeEvalOptions()).render_size
    predict_options = ColorizeOptions(render_size=render_size)
    rows = []
    for path in paths:
        original = load_image(path)[None]
        gray = rec601_gray(original).expand(-1, 3, -1, -1)
        with torch.no_grad():
            result = task.predict(networks, gray.to(context.device), predict_options)
        result = to_8bit(result.float().cpu())
        rows.append(ColorizeRow(
            image=path.stem, psnr=float(psnr(result, original)), ssim=float(ssim(result, original)),
            gray_psnr=float(psnr(gray, original)), gray_ssim=float(ssim(gray, original)),
            colorfulness=float(colorfulness(result)), original_colorfulness=float(colorfulness(original))))
    mean = mean_row(rows)
    notes = ([f"mean colourfulness: {100 * mean.colorfulness / mean.original_colorfulness:.0f}% of the "
              "originals'"] if mean.original_colorfulness > 0 else [])
    return EvalResult(rows=[*rows, mean], columns=COLUMNS, notes=notes)
