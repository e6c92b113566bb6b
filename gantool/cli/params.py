"""Option dataclass fields as Typer parameters: how ``flag()`` fields become ``--flags``.

A field ``lambda_pixel: float = flag(1.0, "Weight of the L1 loss.")`` becomes ``--lambda-pixel FLOAT``
with its help text; a ``bool`` becomes ``--name/--no-name``; a ``Literal`` becomes a choice.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Annotated

import typer

from gantool.plugin.options import OptionField


def cli_parameters(fields: Iterable[OptionField], default_panel: str | None = None) -> list[inspect.Parameter]:
    """``inspect.Parameter`` objects, annotated for Typer, one per option field."""
    parameters = []
    for option in fields:
        extra = option.field.metadata
        declarations = [extra["flags"]] if "flags" in extra else [f"--{option.name.replace('_', '-')}"]
        if "short" in extra:
            declarations.append(extra["short"])
        typer_option = typer.Option(
            *declarations,
            help=extra.get("help"),
            rich_help_panel=extra.get("panel", default_panel),
            min=extra.get("min"),
            max=extra.get("max"),
            show_default=True,
        )
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=option.default,
                annotation=Annotated[option.annotation, typer_option],
            )
        )
    return parameters
