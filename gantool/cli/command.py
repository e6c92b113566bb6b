"""The generic command builder: option dataclasses in, a Typer command out (plugins write no Typer code).

Values merge as defaults < ``--config`` file < flags typed on the command line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from gantool.catalog import resolve_data
from gantool.cli.params import cli_parameters
from gantool.cli.report import run_reporting_errors
from gantool.errors import PluginError, UsageError
from gantool.plugin.options import OptionField, load_config, merge_values, option_fields
from gantool.plugin.spec import InputSpec, TaskSpec

RESERVED_NAMES = {"ctx", "inputs", "config"}


TASKS_PANEL = "Tasks"


TOOLS_PANEL = "Tools"


INPUTS_PANEL = "Inputs"


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


def typed_on_command_line(ctx: typer.Context, names: Sequence[str]) -> set[str]:
    """Which of ``names`` the user typed (not defaults, not --config values)."""
    typed = set()
    for name in names:
        source = ctx.get_parameter_source(name)
        if source is not None and source.name == "COMMANDLINE":
            typed.add(name)
    return typed


def resolve_values(ctx: typer.Context, fields: list[OptionField], kwargs: dict[str, Any]) -> dict[str, Any]:
    config_path = kwargs.get("config")
    config = load_config(config_path) if config_path is not None else None
    typed = typed_on_command_line(ctx, [option.name for option in fields])
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


def companion_inputs(specs: list[TaskSpec], fields: list[OptionField]) -> dict[str, str]:
    """The other inputs of the tasks of one verb (everything after the primary image): name -> help text.

    Raises ``PluginError`` naming both when an input name is also an option of the verb.
    """
    options = {option.name: option for option in fields}
    found: dict[str, str] = {}
    for spec in specs:
        for item in spec.inputs[1:]:
            clash = options.get(item.name)
            if clash is not None or item.name in RESERVED_NAMES:
                owner = f"{clash.owner.__name__}.{item.name}" if clash is not None else "a gantool parameter"
                raise PluginError(f"task {spec.name!r}: input {item.name!r} clashes with option {owner}; "
                                  "rename one")
            if item.name not in found:
                found[item.name] = _companion_help(item, optional=not item.required or spec.mask_input() is item)
    return found


def _companion_help(item: InputSpec, *, optional: bool) -> str:
    text = f"{item.help.rstrip('.')}. " if item.help else ""
    text += "A file for every image, a folder paired by relative path and stem, or a glob paired by stem."
    if optional:
        text += " Optional" + (" (default: the image's transparent areas)." if item.channels == 1 and item.required
                               else ".")
    return text


def companion_parameters(companions: dict[str, str]) -> list[Any]:
    """One ``--NAME FILE|DIR|GLOB`` option per companion input, in declaration order."""
    import inspect

    parameters = []
    for name, help_text in companions.items():
        option = typer.Option(f"--{name.replace('_', '-')}", metavar="FILE|DIR|GLOB", help=help_text,
                              rich_help_panel=INPUTS_PANEL, show_default=False)
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=Annotated[str | None, option]))
    return parameters


def resolved_data(options: Any, command: str) -> Any:
    """``options`` with ``data`` resolved to a folder (a path, or a known dataset name); a one-line error
    naming ``command`` when it is missing."""
    if options.data is None:
        raise UsageError(f"`gantool {command}` needs --data DIR (or `data = ...` in --config)")
    return dataclasses.replace(options, data=resolve_data(options.data))


def refuse_foreign_options(ctx: typer.Context, chosen: TaskSpec, specs: Sequence[TaskSpec],
                           which: Literal["infer", "train", "eval"]) -> None:
    """On a verb shared by several tasks, a flag typed for another task than the one the model file picked
    is a usage error, not silently ignored (``translate --direction BtoA`` on a pix2pix model)."""
    if len(specs) < 2:
        return
    own = {option.name for option in option_fields(chosen.options_of(which))}
    others = {option.name: spec.name for spec in specs if spec is not chosen
              for option in option_fields(spec.options_of(which)) if option.name not in own}
    typed = sorted(typed_on_command_line(ctx, list(others)))
    if typed:
        flags = ", ".join(f"--{name.replace('_', '-')} (an option of {others[name]})" for name in typed)
        raise UsageError(f"{flags} does not apply to a {chosen.name} model; leave it out or pass another --model")
