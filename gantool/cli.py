"""The ``gantool`` command line: one verb per registered task, ``train TASK``, and listing tools.

``build_app`` turns a loaded plugin system into a Typer app; nothing here imports torch. Command bodies
hand over to ``gantool.launch``, which imports the engine only when a command really runs.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gantool import __version__, launch
from gantool.datasets import build_data_app
from gantool.errors import CheckpointError, GantoolError, PluginError, UsageError
from gantool.options import OptionField, build, cli_parameters, load_config, merge_values, option_fields
from gantool.plugins import PluginSystem, build_plugin_system, call_each_plugin
from gantool.settings import InferenceOptions, SampleOptions, TrainingOptions
from gantool.spec import TaskSpec
from gantool.weights import list_models, read_metadata

RESERVED_NAMES = {"ctx", "inputs", "config"}
TASKS_PANEL = "Tasks"
TOOLS_PANEL = "Tools"


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def report_error(message: str) -> None:
    """Print one red line on stderr: the only way gantool reports a failure to a user."""
    _stderr().print(f"[bold red]error:[/] {message}", markup=True, emoji=False)


def report_warning(message: str) -> None:
    _stderr().print(f"[yellow]warning:[/] {message}", markup=True, emoji=False)


def run_reporting_errors(body: Callable[[], None]) -> None:
    """Run a command body; a ``GantoolError`` becomes one red line and its exit code, no traceback.

    Plugins' own commands (``gantool eval TASK``) wrap their bodies in it too, so every command fails alike.
    """
    try:
        body()
    except GantoolError as error:
        report_error(str(error))
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        report_error("interrupted")
        raise typer.Exit(130) from None


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


def _resolve_values(ctx: typer.Context, fields: list[OptionField], kwargs: dict[str, Any]) -> dict[str, Any]:
    config_path = kwargs.get("config")
    config = load_config(config_path) if config_path is not None else None
    typed = _typed_on_command_line(ctx, [option.name for option in fields])
    return merge_values(fields, kwargs, typed, config, config_path)


def _make_command(
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


def _merged_fields(common: type, specs: list[TaskSpec], which: str) -> list[OptionField]:
    """Common fields, then each task's own; tasks sharing a verb may repeat an identical field."""
    fields = option_fields(common)
    taken = {option.name: option for option in fields}
    for spec in specs:
        for option in option_fields(spec.infer_options if which == "infer" else spec.train_options):
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


# ---------------------------------------------------------------------------------------------- verbs


def _choose_task(
    system: PluginSystem, verb: str, specs: list[TaskSpec], model: str | None, values: dict[str, Any]
) -> tuple[TaskSpec, Path]:
    """Pick the task and weights file for a verb: the model file's metadata decides for shared verbs."""
    hook = system.manager.hook.gantool_resolve_weights
    if model is None:
        defaults = [spec for spec in specs if spec.default_weights]
        if len(defaults) != 1:
            names = " and ".join(spec.name for spec in specs)
            raise UsageError(f"'{verb}' needs --model (it runs {names} models; see `gantool models list`)")
        spec = defaults[0]
        name = spec.default_weights_for(build(spec.infer_options, values))
        path = hook(task=spec, name=name)
        if path is None:
            raise CheckpointError(f"bundled model {name!r} for task {spec.name!r} was not found; "
                                  "pass --model PATH or set GANTOOL_MODELS to the folder holding it")
        return spec, Path(path)
    path = next((p for p in (hook(task=spec, name=model) for spec in specs) if p is not None), None)
    if path is None:
        hint = " (no such file)" if "/" in model or model.endswith(".safetensors") else ""
        raise CheckpointError(f"model {model!r} not found{hint}; see `gantool models list`")
    task_name = read_metadata(Path(path)).get("gantool.task")
    for spec in specs:
        if spec.name == task_name:
            return system.registry.get(spec.name), Path(path)
    if task_name in system.registry:
        other = system.registry.get(task_name)
        raise UsageError(f"model '{path}' is a {task_name!r} model; run it with `gantool {other.verb}`")
    raise CheckpointError(f"model '{path}' names task {task_name!r}, which no installed plugin provides")


def _add_image_verb(app: typer.Typer, system: PluginSystem, verb: str, specs: list[TaskSpec]) -> None:
    fields = _merged_fields(InferenceOptions, specs, "infer")
    import inspect

    inputs = inspect.Parameter(
        "inputs", inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.",
                                                        show_default=False)],
    )

    def body(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
        values = _resolve_values(ctx, fields, kwargs)
        options = build(InferenceOptions, values)
        spec, model_path = _choose_task(system, verb, specs, options.model, values)
        launch.run_inference(spec=spec, model_path=model_path, options=options,
                             task_options=build(spec.infer_options, values), inputs=list(kwargs["inputs"]))

    summary = specs[0].summary if len(specs) == 1 else f"Run {', '.join(s.name for s in specs)} models."
    app.command(verb, rich_help_panel=TASKS_PANEL, help=summary)(_make_command(fields, body, [inputs], summary))


def _add_sample_verb(app: typer.Typer, system: PluginSystem, spec: TaskSpec) -> None:
    fields = _merged_fields(SampleOptions, [spec], "infer")

    def body(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
        values = _resolve_values(ctx, fields, kwargs)
        options = build(SampleOptions, values)
        chosen, model_path = _choose_task(system, spec.verb or spec.name, [spec], options.model, values)
        launch.run_sampling(spec=chosen, model_path=model_path, options=options,
                            task_options=build(spec.infer_options, values))

    app.command(spec.verb, rich_help_panel=TASKS_PANEL, help=spec.summary)(
        _make_command(fields, body, [], spec.summary))


def _add_train_command(train_app: typer.Typer, system: PluginSystem, spec: TaskSpec) -> None:
    fields = _merged_fields(TrainingOptions, [spec], "train")

    def body(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
        values = _resolve_values(ctx, fields, kwargs)
        options = build(TrainingOptions, values)
        if options.data is None:
            raise UsageError(f"`gantool train {spec.name}` needs --data DIR (or `data = ...` in --config)")
        launch.run_training(spec=system.registry.get(spec.name), options=options,
                            task_options=build(spec.train_options, values), command=_command_line())

    summary = f"Train a {spec.name} model: {spec.summary}"
    train_app.command(spec.name, help=summary)(_make_command(fields, body, [], summary))


def _command_line() -> str:
    return shlex.join(["gantool", *sys.argv[1:]])


# ---------------------------------------------------------------------------------------------- tools


def _add_plugins_commands(app: typer.Typer, system: PluginSystem) -> None:
    plugins_app = typer.Typer(help="Inspect installed plugins.", no_args_is_help=True)

    @plugins_app.command("list")
    def list_plugins(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False) -> None:
        """List plugins: name, version, distribution, tasks, and status or load error."""
        rows = [info for info in system.plugins if not info.essential]
        if as_json:
            typer.echo(json.dumps([info.as_dict() for info in rows], indent=2))
            return
        table = Table(title="gantool plugins")
        for column in ("name", "version", "distribution", "tasks", "status"):
            table.add_column(column)
        for info in rows:
            status = info.status if info.error is None else f"[red]{info.status}: {info.error}[/]"
            table.add_row(info.name, info.version or "-", info.distribution or "-",
                          ", ".join(info.tasks) or "-", status)
        Console(soft_wrap=False).print(table)

    app.add_typer(plugins_app, name="plugins", rich_help_panel=TOOLS_PANEL)


def _add_models_commands(app: typer.Typer) -> None:
    models_app = typer.Typer(help="Inspect available model files.", no_args_is_help=True)

    @models_app.command("list")
    def list_available(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False) -> None:
        """List model files on the search path ($GANTOOL_MODELS, models/, user cache)."""
        entries = list_models()
        if as_json:
            typer.echo(json.dumps([{"name": e.name, "task": e.task, "path": str(e.path), "bytes": e.size_bytes,
                                    "summary": e.summary, "error": e.error} for e in entries], indent=2))
            return
        table = Table(title="gantool models")
        for column in ("name", "task", "size", "summary", "path"):
            table.add_column(column)
        for entry in entries:
            summary = entry.summary if entry.error is None else f"[red]{entry.error}[/]"
            table.add_row(entry.name, entry.task, f"{entry.size_bytes / 1e6:.1f} MB", summary, str(entry.path))
        Console(soft_wrap=False).print(table)

    app.add_typer(models_app, name="models", rich_help_panel=TOOLS_PANEL)


def _add_plugin_commands(app: typer.Typer, system: PluginSystem) -> list[str]:
    """Let each plugin add commands; a plugin whose commands break the app is dropped with a warning.

    Typer reads a command's annotations only when the app runs, so each plugin's additions are checked
    right away by building the click command; otherwise one bad plugin would break every command.
    """
    problems = []
    for plugin, outcome in call_each_plugin(system.manager, "gantool_register_commands", lambda _: {"app": app}):
        error = outcome if isinstance(outcome, Exception) else None
        if error is None:
            try:
                typer.main.get_command(app)
            except Exception as build_error:
                error = build_error
        if error is not None:
            plugin_object = system.manager.get_plugin(plugin)
            module_name = getattr(plugin_object, "__name__", None) or type(plugin_object).__module__
            added = _remove_additions_of(app, module_name)
            problems.append(f"plugin {plugin!r}: gantool_register_commands failed ({type(error).__name__}: "
                            f"{error}); {added} command(s) left out")
    return problems


def _remove_additions_of(app: typer.Typer, module_name: str) -> int:
    """Remove the commands with a callback defined in ``module_name`` (or below it), also inside sub-apps.

    A sub-app shared by several plugins (``gantool eval``) keeps the other plugins' commands; a sub-app
    left empty, or whose own callback came from the module, goes.
    """

    def from_module(function: Any) -> bool:
        module = getattr(function, "__module__", "") or ""
        return module == module_name or module.startswith(f"{module_name}.")

    removed = 0
    kept_commands = [info for info in app.registered_commands if not from_module(info.callback)]
    removed += len(app.registered_commands) - len(kept_commands)
    app.registered_commands[:] = kept_commands
    kept_groups = []
    for group in app.registered_groups:
        sub_app = group.typer_instance
        if sub_app is None:
            kept_groups.append(group)
            continue
        removed += _remove_additions_of(sub_app, module_name)
        own_callback = getattr(sub_app.registered_callback, "callback", None)
        if (own_callback is not None and from_module(own_callback)) or not (
                sub_app.registered_commands or sub_app.registered_groups):
            removed += 1
            continue
        kept_groups.append(group)
    app.registered_groups[:] = kept_groups
    return removed


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"gantool {__version__}")
        raise typer.Exit()


# ---------------------------------------------------------------------------------------------- app


def build_app(system: PluginSystem) -> typer.Typer:
    """The whole CLI for one loaded plugin system; each call builds a new, independent app."""
    app = typer.Typer(
        name="gantool", no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False,
        help="A plugin-based GAN toolkit for images: upscale, colorize, translate, train.",
    )

    @app.callback()
    def root(
        version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                              help="Print the version and exit.")] = False,
    ) -> None:
        """A plugin-based GAN toolkit for images."""

    problems: list[str] = []
    for verb, specs in sorted(system.registry.by_verb().items()):
        try:
            if specs[0].kind == "sample":
                for spec in specs:
                    _add_sample_verb(app, system, spec)
            else:
                _add_image_verb(app, system, verb, specs)
        except (PluginError, ValueError) as error:
            problems.append(f"verb {verb!r} left out: {error}")

    train_app = typer.Typer(help="Train a task's networks (see `gantool train TASK --help`).",
                            no_args_is_help=True)
    for spec in system.registry.specs():
        try:
            _add_train_command(train_app, system, spec)
        except (PluginError, ValueError) as error:
            problems.append(f"`train {spec.name}` left out: {error}")
    app.add_typer(train_app, name="train", rich_help_panel=TASKS_PANEL)
    _add_plugins_commands(app, system)
    _add_models_commands(app)
    app.add_typer(build_data_app(), name="data", rich_help_panel=TOOLS_PANEL)

    problems.extend(_add_plugin_commands(app, system))
    app.problems = problems  # type: ignore[attr-defined]  # shown by main() as warnings
    return app


def system_from_environment() -> PluginSystem:
    """Load plugins as the environment says: GANTOOL_DISABLE_PLUGINS, GANTOOL_PLUGINS, GANTOOL_TRACE_PLUGINS."""
    blocked = [n.strip() for n in os.environ.get("GANTOOL_DISABLE_PLUGINS", "").split(",") if n.strip()]
    allowed_text = os.environ.get("GANTOOL_PLUGINS")
    allowed = [n.strip() for n in allowed_text.split(",") if n.strip()] if allowed_text is not None else None
    return build_plugin_system(blocked=blocked, allowed=allowed,
                               trace=os.environ.get("GANTOOL_TRACE_PLUGINS") == "1")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``gantool`` script: load plugins, build the app, run, exit with its code."""
    system = system_from_environment()
    app = build_app(system)
    for problem in [*system.problems, *app.problems]:  # type: ignore[attr-defined]
        report_warning(problem)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="gantool", standalone_mode=False)
    except typer.TyperException as error:  # usage errors from the parser: one line, exit 2
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        if type(error).__name__ == "NoArgsIsHelpError":
            typer.echo(error.ctx.get_help() if getattr(error, "ctx", None) else message)
            sys.exit(2)
        blocked = [info.name for info in system.plugins if info.status == "blocked"]
        if message.startswith("No such command") and blocked:
            message += f" Disabled plugins: {', '.join(blocked)}."
        report_error(f"{message} (see `gantool --help`)")
        sys.exit(getattr(error, "exit_code", 2))
    except typer.Abort:
        report_error("aborted")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
