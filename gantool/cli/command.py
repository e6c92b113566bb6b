"""The generic command builder: option dataclasses in, a Typer command out (plugins write no Typer code).

Values merge as defaults < ``--config`` file < flags typed on the command line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from gantool.cli.params import cli_parameters
from gantool.cli.report import run_reporting_errors
from gantool.errors import PluginError
from gantool.plugin.options import OptionField, load_config, merge_values, option_fields
from gantool.plugin.spec import TaskSpec

RESERVED_NAMES = {"ctx", "inputs", "config"}


TASKS_PANEL = "Tasks"


TOOLS_PANEL = "Tools"


def _config_parameter() -> Any:
    import inspect

    return inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, default=None,
        annotation=Annotated[Path | None, typer.Option("--config", help="TOML file of option values; "
                                                       "flags typed on the command line win.")],
    )


def _context_parameter() -> Any:
    import inspect

    return inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)


def _typed_on_command_line(ctx: typer.Context, names: Sequence[str]) -> set[str]:
    typed = set()
    for name in names:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "COMMANDLINE":
            typed.add(name)
    return typed


def resolve_values(ctx: typer.Context, fields: list[OptionField], kwargs: dict[str, Any]) -> dict[str, Any]:
    config_path = kwargs.get("config")
    config = load_config(config_path) if config_path is not None else None
    typed = _typed_on_command_line(ctx, [option.name for option in fields])
    return merge_values(fields, kwargs, typed, config, config_path)


def make_command(
    fields: list[OptionField], body: Callable[[typer.Context, dict[str, Any]], None], extra: list[Any],
    doc: str,
) -> Callable[..., None]:
    """A function whose signature Typer reads as the command's parameters (plugins write no Typer code)."""
    import inspect

    def command(ctx: typer.Context, **kwargs: Any) -> None:
        run_reporting_errors(lambda: body(ctx, kwargs))

    parameters = [_context_parameter(), *extra, _config_parameter(), *cli_parameters(fields, "Task options")]
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__doc__ = doc
    return command


def merged_fields(common: type, specs: list[TaskSpec], which: Literal["infer", "train", "eval"]) -> list[OptionField]:
    """Common fields, then each task's own; tasks sharing a verb may repeat an identical field."""
    fields = option_fields(common)
    taken = {option.name: option for option in fields}
    for spec in specs:
        for option in option_fields(spec.options_of(which)):
            if option.name in RESERVED_NAMES:
                raise PluginError(f"task {spec.name!r}: option name {option.name!r} is reserved by gantool")
            previous = taken.get(option.name)
            if previous is None:
                taken[option.name] = option
                fields.append(option)
            elif previous.owner in (common,) or previous.annotation != option.annotation:
                raise PluginError(f"task {spec.name!r}: option {option.name!r} clashes with "
                                  f"{previous.owner.__name__}.{option.name}; rename it")
    return fields
