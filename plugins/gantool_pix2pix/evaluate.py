"""``gantool eval pix2pix``: how close a paired model's translations come to the held-out targets.

Protocol, per pair of the evaluation split (``DATA/test/`` when the folder is split, as pix2pix's
releases are, else ``DATA`` itself):

1. A and B are read in the model's own layout and direction (both stored in the model file) and resized
   to a square ``size``, by default the crop size the model was trained on (a U-Net's receptive field is
   the whole image, so it is judged at the scale it learned; ``size=0`` keeps the files' size);
2. the model translates A (deterministically: dropout off), and the result is rounded to 8 bits;
3. mean absolute error (on [0, 1]), PSNR and SSIM (as in :mod:`gantool.scores`) against B, rounded alike.

For label-to-photo tasks such as facades these measure fidelity to one particular photo, which a GAN
need not reproduce: read them next to the sample grid, not instead of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gantool.errors import UsageError
from gantool.lib.metrics import MEAN_ROW, Column, mean_row, print_table, psnr, rows_as_json, ssim, to_8bit

__all__ = ["MEAN_ROW", "PairRow", "evaluation_root", "evaluate", "print_rows", "rows_as_json"]

_SPLITS = ("test", "val")


@dataclass
class PairRow:
    """Scores of one pair (or of the mean row)."""

    image: str
    l1: float
    psnr: float
    ssim: float


def evaluation_root(data: Path) -> Path:
    """``data/test`` (or ``data/val``) when the folder is split into train/test/val, else ``data``."""
    if (data / "A").is_dir() and (data / "B").is_dir():
        return data
    for split in _SPLITS:
        if (data / split).is_dir():
            return data / split
    return data


def evaluate(model: str | Path | Any, data_dir: str | Path, *, size: int | None = None,
             device: str | torch.device = "cpu") -> list[PairRow]:
    """Score a pix2pix model on every pair of a folder's evaluation split; one row per pair, then the mean.

    Args:
        model: A model file, or an already loaded ``gantool.engine.export.LoadedModel``.
        data_dir: A paired folder (side-by-side A|B files or A/ and B/), or one split into train/ and test/.
        size: Square side the pairs are resized to; ``None``: the model's training crop; 0: as stored.
        device: Where the model runs.
    """
    from gantool.engine.export import load_model
    from gantool.engine.runtime import resolve_device
    from gantool.lib.data import PairedImages
    from gantool_pix2pix import SPEC

    if size is not None and size < 0:
        raise UsageError(f"--size must be 0 (as stored) or a side in pixels, got {size}")
    torch_device = resolve_device(str(device)) if isinstance(device, str) else device
    loaded = load_model(Path(model), SPEC, device=torch_device) if isinstance(model, str | Path) else model
    options = loaded.task.options
    side = options.crop if size is None else size
    pairs = PairedImages(evaluation_root(Path(data_dir)), layout=options.layout, direction=options.direction,
                         load_size=side or None, recursive=True)
    rows = []
    for index, (path, _) in enumerate(pairs.pairs):
        item = pairs[index]
        source, target = item["A"][None], to_8bit(item["B"][None])
        with torch.no_grad():
            result = to_8bit(loaded.task.predict(loaded.networks, source.to(torch_device)).float().cpu())
        rows.append(PairRow(image=path.stem, l1=float((result - target).abs().mean()),
                            psnr=float(psnr(result, target)), ssim=float(ssim(result, target))))
    rows.append(mean_row(rows))
    return rows


_COLUMNS = [Column("L1", "l1", ".4f"), Column("PSNR", "psnr"), Column("SSIM", "ssim", ".4f")]


def print_rows(rows: list[PairRow], *, title: str = "pix2pix") -> None:
    """A rich table on stdout: image, L1, PSNR and SSIM against the target."""
    print_table(rows, _COLUMNS, title=title)
