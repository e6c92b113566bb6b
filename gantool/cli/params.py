"""Option dataclass fields as Typer parameters: how ``flag()`` fields become ``--flags``.

A field ``lambda_pixel: float = flag(1.0, "Weight of the L1 loss.")`` becomes ``--lambda-pixel FLOAT``
with its help text; a ``bool`` becomes ``--name/--no-name``; a ``Literal`` becomes a choice; a
``tuple[int, ...]`` becomes a comma list (``--attention-at 16,32``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer

from gantool.plugin.options import OptionField, format_list, parse_list, tuple_element

_METAVARS = {int: "INT,...", float: "FLOAT,...", str: "TEXT,..."}


def cli_parameters(fields: Iterable[OptionField], default_panel: str | None = None) -> list[inspect.Parameter]:
    """``inspect.Parameter`` objects, annotated for Typer, one per option field."""
    parameters = []
    for option in fields:
        extra = option.field.metadata
        dashed = option.name.replace("_", "-")
        # A bool gets its off switch too (Typer gives an explicitly named flag none): --flip/--no-flip.
        on_off = f"--{dashed}/--no-{dashed}" if option.annotation is bool else f"--{dashed}"
        declarations = [extra["flags"]] if "flags" in extra else [on_off]
        if "short" in extra:
            declarations.append(extra["short"])
        annotation: Any = option.annotation
        more: dict[str, Any] = {"show_default": True, "min": extra.get("min"), "max": extra.get("max")}
        element = tuple_element(option.annotation)
        if element is not None:
            # Typer reads a tuple annotation as a fixed number of values; a comma list is parsed here instead.
            annotation = Any
            default = option.default
            more = {"parser": _list_parser(element, extra.get("min"), extra.get("max")),
                    "metavar": _METAVARS[element],
                    "show_default": format_list(default) if default else ("none" if default == () else True)}
        typer_option = typer.Option(
            *declarations,
            help=extra.get("help"),
            rich_help_panel=extra.get("panel", default_panel),
            **more,
        )
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=option.default,
                annotation=Annotated[annotation, typer_option],
            )
        )
    return parameters


def _list_parser(element: type, low: float | None, high: float | None) -> Callable[[Any], tuple[Any, ...]]:
    """Typer parser of one comma-list flag (``min``/``max`` bound every element); defaults pass through."""

    def parse(value: Any) -> tuple[Any, ...]:
        if isinstance(value, tuple):
            return value
        try:
            values = parse_list(str(value), element)
        except ValueError as error:
            raise typer.BadParameter(f"{error}; expected a comma list such as {_example(element)}") from None
        for index, item in enumerate(values, start=1):
            if (low is not None and item < low) or (high is not None and item > high):
                bounds = " and ".join(f"{word} {bound}" for word, bound in (("at least", low), ("at most", high))
                                      if bound is not None)
                raise typer.BadParameter(f"element {index} ({item}) must be {bounds}")
        return values

    return parse


def _example(element: type) -> str:
    return {int: "16,32", float: "0.5,1.0", str: "a,b"}[element]
