"""``gantool eval pix2pix``: how close a paired model's translations come to the held-out targets.

Protocol, per pair of the evaluation split (``DATA/test/`` when the folder is split, as pix2pix's
releases are, else ``DATA`` itself):

1. A and B are read in the model's own layout and direction (both stored in the model file) and resized
   to a square ``size``, by default the crop size the model was trained on (a U-Net's receptive field is
   the whole image, so it is judged at the scale it learned; ``size=0`` keeps the files' size);
2. the model translates A (deterministically: dropout off), and the result is rounded to 8 bits;
3. mean absolute error (on [0, 1]), PSNR and SSIM (as in :mod:`gantool.lib.metrics`) against B, rounded alike.

For label-to-photo tasks such as facades these measure fidelity to one particular photo, which a GAN
need not reproduce: read them next to the sample grid, not instead of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from gantool import EvalColumn, EvalContext, EvalResult
from gantool.errors import UsageError
from gantool.lib.metrics import mean_row, psnr, ssim, to_8bit
from gantool_pix2pix.options import Pix2PixEvalOptions

if TYPE_CHECKING:
    from gantool_pix2pix.task import Pix2Pix

__all__ = ["COLUMNS", "PairRow", "evaluate_pairs", "evaluation_root"]

_SPLITS = ("test", "val")


@dataclass
class PairRow:
    """Scores of one pair (or of the mean row)."""

    image: str
    l1: float
    psnr: float
    ssim: float


COLUMNS = (EvalColumn(name="l1", header="L1", format=".4f"), EvalColumn(name="psnr", header="PSNR"),
           EvalColumn(name="ssim", header="SSIM", format=".4f"))


def evaluation_root(data: Path) -> Path:
    """``data/test`` (or ``data/val``) when the folder is split into train/test/val, else ``data``."""
    if (data / "A").is_dir() and (data / "B").is_dir():
        return data
    for split in _SPLITS:
        if (data / split).is_dir():
            return data / split
    return data


def evaluate_pairs(task: Pix2Pix, networks: dict[str, nn.Module] | None, data: Path,
                   options: Pix2PixEvalOptions | None, context: EvalContext) -> EvalResult:
    """Score a pix2pix model on every pair of a folder's evaluation split; one row per pair, then the mean.

    Args:
        task: The task rebuilt from the model file: its layout, direction and crop are the model's.
        networks: The loaded generator (``{"generator": ...}``) on ``context.device``.
        data: A paired folder (side-by-side A|B files or A/ and B/), or one split into train/ and test/.
        options: ``size``, the square side pairs are resized to (``None``: the model's training crop;
            0: as stored).
        context: The device.
    """
    from gantool.lib.data import PairedImages

    if networks is None:
        raise UsageError("pix2pix evaluation needs a model (--model)")
    size = (options if options is not None else Pix2PixEvalOptions()).size
    if size is not None and size < 0:
        raise UsageError(f"--size must be 0 (as stored) or a side in pixels, got {size}")
    model_options = task.options
    side = model_options.crop if size is None else size
    pairs = PairedImages(evaluation_root(Path(data)), layout=model_options.layout,
                         direction=model_options.direction, load_size=side or None, recursive=True)
    rows = []
    for index, (path, _) in enumerate(pairs.pairs):
        item = pairs[index]
        source, target = item["A"][None], to_8bit(item["B"][None])
        with torch.no_grad():
            result = to_8bit(task.predict(networks, source.to(context.device)).float().cpu())
        rows.append(PairRow(image=path.stem, l1=float((result - target).abs().mean()),
                            psnr=float(psnr(result, target)), ssim=float(ssim(result, target))))
    return EvalResult(rows=[*rows, mean_row(rows)], columns=COLUMNS)
