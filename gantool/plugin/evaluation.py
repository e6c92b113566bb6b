"""The evaluation contract: what ``Task.evaluate`` receives and returns (no torch, no Typer).

``gantool eval TASK`` exists for every task whose card sets ``eval_options``. The engine loads the model,
calls ``task.evaluate(networks, data, options, context)`` and gets an :class:`EvalResult` back: rows of
scores plus the declaration of their columns. The CLI prints the result as a table, or as JSON with
``--json``; the task itself never prints. Declaring the columns (instead of printing) is what lets one
command line serve every task, and lets scripts read the scores.

Rows are dataclass instances or dicts. Each names its image in the :attr:`EvalResult.label` field
(``"image"`` unless declared otherwise); the mean row, when a task adds one
(``gantool.lib.metrics.mean_row``), is named :data:`MEAN_ROW` and shown in its own table section.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: The name of the row holding the column means.
MEAN_ROW = "mean"


@dataclass(frozen=True, kw_only=True)
class EvalColumn:
    """One score column: the row field it reads, its table header, and the number format.

    Attributes:
        name: Field of each row (dataclass attribute or dict key); also its key in ``--json`` output.
        header: Column title of the printed table.
        format: Format spec of the numbers in the table (``".2f"``, ``".4f"``); JSON keeps full precision.
    """

    name: str
    header: str
    format: str = ".2f"


@dataclass(frozen=True, kw_only=True)
class EvalContext:
    """What the engine knows about the run that ``Task.evaluate`` may need besides the options.

    Attributes:
        device: The ``torch.device`` the networks are on; move inputs there.
        model: The model file the networks were loaded from, or ``None`` (a baseline-only run, or networks
            handed over directly, as tests do). For error messages.
    """

    device: torch.device | Any
    model: Path | None = None


@dataclass(frozen=True, kw_only=True)
class EvalResult:
    """What ``Task.evaluate`` returns: score rows and the declaration of their columns.

    Attributes:
        rows: One row per evaluated image (dataclass instances or dicts), usually followed by the mean
            row from ``gantool.lib.metrics.mean_row``.
        columns: The score columns, in display order. The table leaves out a column that is ``None`` in
            every row (not measured this time); ``--json`` always has every column.
        label: The field naming each row, shown as the table's first column.
        notes: Lines printed under the table (not part of ``--json``), e.g. a summary sentence.
    """

    rows: Sequence[Any]
    columns: Sequence[EvalColumn]
    label: str = "image"
    notes: Sequence[str] = field(default_factory=tuple)

    def problems(self) -> list[str]:
        """Every reason this result cannot be shown, all at once (empty when valid)."""
        found: list[str] = []
        if not self.columns or not all(isinstance(column, EvalColumn) for column in self.columns):
            found.append("columns must be a non-empty sequence of gantool.EvalColumn")
            return found
        names = [column.name for column in self.columns]
        if len(set(names)) != len(names) or self.label in names:
            found.append(f"column names {names} (and the label {self.label!r}) must be unique")
        for column in self.columns:
            try:
                format(1.0, column.format)
            except (TypeError, ValueError):
                found.append(f"column {column.name!r} has an invalid number format {column.format!r}")
        for index, row in enumerate(self.rows):
            if not (isinstance(row, Mapping) or (dataclasses.is_dataclass(row) and not isinstance(row, type))):
                found.append(f"row {index} is a {type(row).__name__}, not a dataclass instance or a dict")
                continue
            missing = [name for name in (self.label, *names) if not has_field(row, name)]
            if missing:
                found.append(f"row {index} has no field {', '.join(map(repr, missing))}")
        if isinstance(self.notes, str) or not all(isinstance(note, str) for note in self.notes):
            found.append("notes must be a sequence of strings")
        return found

    def records(self) -> list[dict[str, Any]]:
        """The rows as plain dicts holding the label and the declared columns, in order (for ``--json``)."""
        keys = (self.label, *(column.name for column in self.columns))
        return [{key: row_value(row, key) for key in keys} for row in self.rows]


def has_field(row: Any, name: str) -> bool:
    """Whether a row (dict or dataclass instance) has the field ``name``."""
    return name in row if isinstance(row, Mapping) else hasattr(row, name)


def row_value(row: Any, name: str) -> Any:
    """A row's field: a dict key or a dataclass attribute (``None`` when absent)."""
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def records_as_json(records: Sequence[Mapping[str, Any]]) -> str:
    """Records as an indented JSON list; infinities and NaN, which JSON cannot hold, become strings."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return value

    return json.dumps([{key: clean(value) for key, value in record.items()} for record in records], indent=2,
                      default=str)
