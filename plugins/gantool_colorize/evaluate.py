"""``gantool eval colorize``: how close colourised gray photos come to the originals, and how colourful.

Protocol, per photo of a folder (e.g. ``../shared/data/photos/Kodak24``):

1. the gray input is the photo's Rec. 601 luma rounded to 8 bits (what a gray file of it holds);
2. the model colourises it (:meth:`Colorize.predict`, at ``render_size``) and the result is rounded to 8 bits;
3. PSNR (peak 1, mean squared error over all three channels) and SSIM (11x11 Gaussian window, sigma 1.5,
   per channel on [0, 1], averaged over the valid region and the channels) of the result against the
   original, and the same for the gray input itself: the *gray baseline* that a colouriser must beat;
4. Hasler and Suesstrunk's colourfulness of the result and of the original, and their ratio per image: a
   model can buy PSNR by predicting timid, grayish colour, and these columns show it. The mean row's ratio
   is the mean of the per-image ratios; a note also gives the ratio of the means;
5. when the Inception file is installed (:mod:`gantool.lib.inception`), FID and KID of the colourised set
   and of the gray inputs against the originals (whole images resized to 299 px), in the mean row: a
   plausible colouriser lands well below the gray baseline's. At 24 images both are noisy and FID is
   biased upwards: compare only at equal N.

The gray baseline on Kodak24 is 22.73 dB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

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
    colorfulness_ratio: float | None
    fid: float | None = None
    gray_fid: float | None = None
    kid: float | None = None
    gray_kid: float | None = None


COLUMNS = (EvalColumn(name="psnr", header="PSNR"), EvalColumn(name="ssim", header="SSIM", format=".4f"),
           EvalColumn(name="gray_psnr", header="gray PSNR"),
           EvalColumn(name="gray_ssim", header="gray SSIM", format=".4f"),
           EvalColumn(name="colorfulness", header="colourfulness", format=".1f"),
           EvalColumn(name="original_colorfulness", header="original colourfulness", format=".1f"),
           EvalColumn(name="colorfulness_ratio", header="colourfulness ratio", format=".2f"))
INCEPTION_COLUMNS = (EvalColumn(name="fid", header="FID"), EvalColumn(name="gray_fid", header="gray FID"),
                     EvalColumn(name="kid", header="KID x1e3", format=".1f"),
                     EvalColumn(name="gray_kid", header="gray KID x1e3", format=".1f"))


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
    options = options if options is not None else ColorizeEvalOptions()
    predict_options = ColorizeOptions(render_size=options.render_size, temperature=options.temperature,
                                      prior_correction=options.prior_correction)
    rows = []
    sets: dict[str, list[Tensor]] = {"result": [], "gray": [], "original": []}
    for path in paths:
        original = load_image(path)[None]
        gray = rec601_gray(original).expand(-1, 3, -1, -1)
        with torch.no_grad():
            result = task.predict(networks, gray.to(context.device), predict_options)
        result = to_8bit(result.float().cpu())
        result_colour, original_colour = float(colorfulness(result)), float(colorfulness(original))
        rows.append(ColorizeRow(
            image=path.stem, psnr=float(psnr(result, original)), ssim=float(ssim(result, original)),
            gray_psnr=float(psnr(gray, original)), gray_ssim=float(ssim(gray, original)),
            colorfulness=result_colour, original_colorfulness=original_colour,
            colorfulness_ratio=result_colour / original_colour if original_colour > 0 else None))
        if options.inception:
            for name, image in (("result", result), ("gray", gray), ("original", original)):
                sets[name].append(image)
    mean = mean_row(rows)
    notes = ([f"colourfulness: mean of per-image ratios {mean.colorfulness_ratio:.2f}, ratio of means "
              f"{mean.colorfulness / mean.original_colorfulness:.2f} "
              f"({100 * mean.colorfulness / mean.original_colorfulness:.0f}% of the originals')"]
             if mean.original_colorfulness > 0 else [])
    columns = list(COLUMNS)
    if options.inception:
        notes += _inception_scores(mean, sets, context, columns)
    return EvalResult(rows=[*rows, mean], columns=columns, notes=notes)


def _inception_scores(mean: ColorizeRow, sets: dict[str, list[Tensor]], context: EvalContext,
                      columns: list[EvalColumn]) -> list[str]:
    """FID and KID (x1e3) of the results and of the gray inputs against the originals, into the mean row;
    without the Inception file, a note saying how to get it."""
    from gantool.lib import inception

    path = inception.inception_path()
    if path is None:
        return [inception.HOW_TO_GET]
    if len(sets["original"]) < 4:
        return ["FID/KID need at least 4 images; skipped"]
    from gantool.lib.featuredist import whole_set_distances

    network = inception.load_inception(context.device)
    features = {name: inception.image_features(images, network) for name, images in sets.items()}
    count = len(sets["original"])
    for name, prefix in (("result", ""), ("gray", "gray_")):
        fid, kid = whole_set_distances(features[name], features["original"])
        setattr(mean, f"{prefix}fid", fid)
        setattr(mean, f"{prefix}kid", 1e3 * kid)
    columns.extend(INCEPTION_COLUMNS)
    return [inception.protocol_line(path, f"unbiased, on all {count} images", f"of the results and of the gray "
                                    f"inputs against the {count} originals (whole images)")]
