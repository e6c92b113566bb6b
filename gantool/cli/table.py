"""Evaluation results on the terminal: the rich table of ``gantool eval TASK``, or its JSON (torch-free)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gantool.plugin.evaluation import MEAN_ROW, EvalColumn, EvalResult, records_as_json, row_value


def result_as_json(result: EvalResult) -> str:
    """The rows as a JSON list of objects with the label and every declared column (``null``: not measured)."""
    return records_as_json(result.records())


def print_result(result: EvalResult, *, title: str) -> None:
    """The table on stdout (see :func:`print_rows`), then the result's notes."""
    print_rows(result.rows, result.columns, label=result.label, title=title)
    console = Console(soft_wrap=False)
    for note in result.notes:
        console.print(note, markup=False, highlight=False, emoji=False)


def print_rows(rows: Sequence[Any], columns: Sequence[EvalColumn], *, label: str = "image", title: str) -> None:
    """A rich table on stdout: the row's label, then ``columns``; the mean row in its own section.

    Columns that are ``None`` in every row (not measured this time) are left out.
    """
    shown = [c for c in columns if any(row_value(row, c.name) is not None for row in rows)]
    cells = [[_cell(row_value(row, c.name), c.format) for c in shown] for row in rows]
    table = Table(title=title)
    table.add_column(label)
    for index, column in enumerate(shown):  # a number is never cut to fit: its column is at least that wide
        table.add_column(column.header, justify="right", no_wrap=True,
                         min_width=max((len(line[index]) for line in cells), default=1))
    for row, line in zip(rows, cells, strict=True):
        name = str(row_value(row, label))
        if name == MEAN_ROW:
            table.add_section()
        table.add_row(escape(name), *line)
    print_table_fitted(table)


def print_table_fitted(table: Table) -> None:
    """``table`` on stdout; into a file or a pipe at its natural width (rich would assume 80 columns and
    squeeze it), on a terminal at the terminal's."""
    console = Console(soft_wrap=False)
    if not console.is_terminal:
        natural = console.measure(table, options=console.options.update_width(100_000)).maximum
        console = Console(soft_wrap=False, width=max(console.width, natural))
    console.print(table)


def _cell(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


# ------------------------------------------------------------------ 0.1 API, removed in 0.3


@dataclass(frozen=True)
class Column:
    """Deprecated (0.2, removed in 0.3): declare ``gantool.EvalColumn`` in an ``EvalResult`` instead."""

    header: str
    field: str
    format: str = ".2f"


def print_table(rows: Sequence[Any], columns: Sequence[Column], *, title: str) -> None:
    """Deprecated (0.2, removed in 0.3): return an ``EvalResult`` from ``Task.evaluate``; the CLI prints it."""
    warnings.warn("gantool.scores.print_table is deprecated and will be removed in gantool 0.3; return a "
                  "gantool.EvalResult from Task.evaluate and let `gantool eval` print it", DeprecationWarning,
                  stacklevel=2)
    label = dataclasses.fields(rows[0])[0].name if rows and dataclasses.is_dataclass(rows[0]) else "image"
    print_rows(rows, [EvalColumn(name=c.field, header=c.header, format=c.format) for c in columns], label=label,
               title=title)
