"""Shared pieces of the ``gantool eval TASK`` commands: image scores, the mean row, JSON and the table.

Each task's evaluation decides *what* it compares (upscaled vs ground truth, colourised vs original,
translated vs target); how a score is computed, averaged and shown is the same everywhere, so it lives
here instead of in every plugin. Rows are dataclasses whose first field is the image name; the last row
of a result is the mean row (:data:`MEAN_ROW`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor

MEAN_ROW = "mean"
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

    ``None`` cells (a score not measured for some images) are left out of their column's mean; an
    infinite PSNR (identical images) makes its mean infinite, which is the honest answer.
    """
    if not rows:
        raise ValueError("no rows to average")
    first, *_ = dataclasses.fields(rows[0])  # type: ignore[arg-type]
    means: dict[str, Any] = {first.name: MEAN_ROW}
    for field in dataclasses.fields(rows[0])[1:]:  # type: ignore[arg-type]
        present = [value for row in rows if (value := getattr(row, field.name)) is not None]
        means[field.name] = sum(present) / len(present) if present else None
    return type(rows[0])(**means)


def rows_as_json(rows: Sequence[Any]) -> str:
    """Rows as a JSON list of objects (``inf`` becomes the string ``"inf"``, which JSON cannot hold)."""
    def clean(value: Any) -> Any:
        return "inf" if isinstance(value, float) and math.isinf(value) else value

    return json.dumps([{k: clean(v) for k, v in dataclasses.asdict(row).items()} for row in rows], indent=2)


@dataclass(frozen=True)
class Column:
    """One score column of a printed table: its header, the row attribute, and the number format."""

    header: str
    field: str
    format: str = ".2f"


def print_table(rows: Sequence[Any], columns: Sequence[Column], *, title: str) -> None:
    """A rich table on stdout: the image name, then ``columns``; the mean row in its own section.

    Columns that are ``None`` in every row (not measured this time) are left out.
    """
    from rich.console import Console
    from rich.table import Table

    shown = [c for c in columns if any(getattr(row, c.field) is not None for row in rows)]
    table = Table(title=title)
    table.add_column("image")
    for column in shown:
        table.add_column(column.header, justify="right")
    for row in rows:
        name = getattr(row, dataclasses.fields(row)[0].name)
        if name == MEAN_ROW:
            table.add_section()
        cells = [_cell(getattr(row, c.field), c.format) for c in shown]
        table.add_row(name, *cells)
    Console(soft_wrap=False).print(table)


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
