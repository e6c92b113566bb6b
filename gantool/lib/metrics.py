"""Shared pieces of every ``Task.evaluate``: image scores, the mean row, JSON.

Each task's evaluation decides *what* it compares (upscaled vs ground truth, colourised vs original,
translated vs target); how a score is computed and averaged is the same everywhere, so it lives here
instead of in every plugin. Rows are dataclasses (or dicts) whose first field is the image name; the last
row of a result is the mean row (:data:`MEAN_ROW`). Showing rows is the CLI's job
(``gantool.plugin.evaluation.EvalResult`` declares the columns).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

import torch
from torch import Tensor

from gantool.plugin.evaluation import MEAN_ROW, records_as_json

__all__ = ["MEAN_ROW", "mean_row", "psnr", "rows_as_json", "ssim", "to_8bit"]

Row = TypeVar("Row")


def to_8bit(image: Tensor) -> Tensor:
    """Round ``[0, 1]`` floats to the nearest of 256 levels (clamped), as saving a PNG would."""
    return (image.clamp(0, 1) * 255.0).round() / 255.0


def psnr(prediction: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB (peak 1) per image over all channels, ``(B,)`` float64; ``inf`` for identical images."""
    mse = (prediction.double() - target.double()).square().flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


def ssim(prediction: Tensor, target: Tensor) -> Tensor:
    """SSIM per image, ``(B,)``: Gaussian 11x11 window (sigma 1.5), per channel, mean over valid positions."""
    import kornia

    window = kornia.metrics.ssim(prediction.double(), target.double(), 11, max_val=1.0, padding="valid")
    return window.flatten(1).mean(dim=1)


def mean_row(rows: Sequence[Row]) -> Row:
    """A row of the same type whose image is :data:`MEAN_ROW` and whose scores are the column means.

    Rows are dataclass instances or dicts; the first field (or key) is the image name. ``None`` cells (a
    score not measured for some images) are left out of their column's mean; an infinite PSNR (identical
    images) makes its mean infinite, which is the honest answer.
    """
    if not rows:
        raise ValueError("no rows to average")
    first = rows[0]
    names = list(first) if isinstance(first, Mapping) else [f.name for f in dataclasses.fields(first)]  # type: ignore[arg-type]

    def value(row: Any, name: str) -> Any:
        return row.get(name) if isinstance(row, Mapping) else getattr(row, name)

    means: dict[str, Any] = {names[0]: MEAN_ROW}
    for name in names[1:]:
        present = [cell for row in rows if (cell := value(row, name)) is not None]
        means[name] = sum(present) / len(present) if present else None
    if isinstance(first, Mapping):
        return cast(Row, dict(means))
    return type(first)(**means)


def rows_as_json(rows: Sequence[Any]) -> str:
    """Rows (dataclasses or dicts) as a JSON list of objects (``inf`` becomes the string ``"inf"``)."""
    return records_as_json([dict(row) if isinstance(row, Mapping) else dataclasses.asdict(row) for row in rows])
