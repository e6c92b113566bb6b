"""The ``gantool`` command line: one verb per registered task, ``train TASK``, ``eval TASK``, and listing tools.

``build_app`` turns a loaded plugin system into a Typer app; nothing here imports torch. Command bodies
hand over to :mod:`gantool.cli.launch`, which imports the engine only when a command really runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any, cast

import typer

from gantool import __version__
from gantool.cli.command import TASKS_PANEL, TOOLS_PANEL
from gantool.cli.data import build_data_app
from gantool.cli.eval import EVAL_NAME, build_eval_app
from gantool.cli.exporting import add_export_command
from gantool.cli.listing import add_models_commands, add_plugins_commands
from gantool.cli.report import report_error, report_warning
from gantool.cli.serve import add_serve_command
from gantool.cli.verbs import add_train_command, add_verb
from gantool.errors import PluginError
from gantool.plugin.manager import PluginSystem, build_plugin_system, call_each_plugin


def _add_plugin_commands(app: typer.Typer, system: PluginSystem) -> list[str]:
    """Let each plugin add commands; a plugin whose commands break the app is dropped with a warning.

    Typer reads a command's annotations only when the app runs, so each plugin's additions are checked
    right away by building the click command; otherwise one bad plugin would break every command. A
    command named like one that already exists (a generated ``eval TASK``, a verb) is left out with a
    warning too: click would otherwise let the later one silently replace the earlier.
    """
    problems = []
    known = _entry_ids(app)
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
        problems.extend(f"plugin {plugin!r}: its command `gantool {path}` clashes with an existing command of "
                        "that name; left out" for path in _drop_clashes(app, known))
        known = _entry_ids(app)
    return problems


def _entry_name(info: Any) -> str | None:
    """The name a registered command or group gets on the command line, when it can be told without Typer."""
    name = info.name
    if not isinstance(name, str) and getattr(info, "typer_instance", None) is not None:
        name = info.typer_instance.info.name
    if not isinstance(name, str) and callable(getattr(info, "callback", None)):
        name = typer.main.get_command_name(info.callback.__name__)
    return name if isinstance(name, str) else None


def _entry_ids(app: typer.Typer) -> set[int]:
    """Identities of every command and group registered in ``app`` and its sub-apps."""
    found = {id(info) for info in [*app.registered_commands, *app.registered_groups]}
    for group in app.registered_groups:
        if group.typer_instance is not None:
            found |= _entry_ids(group.typer_instance)
    return found


def _drop_clashes(app: typer.Typer, known: set[int], prefix: str = "") -> list[str]:
    """Remove commands and groups not in ``known`` that reuse a name taken in the same app; their paths."""
    dropped: list[str] = []
    taken = {_entry_name(info) for info in [*app.registered_commands, *app.registered_groups] if id(info) in known}
    for entries in (cast(list[Any], app.registered_commands), cast(list[Any], app.registered_groups)):
        clashing = [info for info in entries if id(info) not in known and _entry_name(info) in taken - {None}]
        dropped.extend(f"{prefix}{_entry_name(info)}" for info in clashing)
        entries[:] = [info for info in entries if info not in clashing]
    for group in app.registered_groups:
        if group.typer_instance is not None and id(group) in known:
            dropped.extend(_drop_clashes(group.typer_instance, known, f"{prefix}{_entry_name(group)} "))
    return dropped


def _remove_additions_of(app: typer.Typer, module_name: str) -> int:
    """Remove the commands with a callback defined in ``module_name`` (or below it), also inside sub-apps.

    A sub-app shared by several plugins keeps the other plugins' commands; a sub-app that the removal left
    empty, or whose own callback came from the module, goes (one that was empty before stays).
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
        removed_inside = _remove_additions_of(sub_app, module_name)
        removed += removed_inside
        own_callback = getattr(sub_app.registered_callback, "callback", None)
        if (own_callback is not None and from_module(own_callback)) or (removed_inside and not (
                sub_app.registered_commands or sub_app.registered_groups)):
            removed += 1
            continue
        kept_groups.append(group)
    app.registered_groups[:] = kept_groups
    return removed


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"gantool {__version__}")
        raise typer.Exit()


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
            add_verb(app, system, verb, specs)
        except (PluginError, ValueError) as error:
            problems.append(f"verb {verb!r} left out: {error}")

    train_app = typer.Typer(help="Train a task's networks (see `gantool train TASK --help`).",
                            no_args_is_help=True)
    for spec in system.registry.specs():
        try:
            add_train_command(train_app, system, spec)
        except (PluginError, ValueError) as error:
            problems.append(f"`train {spec.name}` left out: {error}")
    app.add_typer(train_app, name="train", rich_help_panel=TASKS_PANEL)
    eval_app, eval_problems = build_eval_app(system)
    problems.extend(eval_problems)
    app.add_typer(eval_app, name=EVAL_NAME, rich_help_panel=TASKS_PANEL)
    add_plugins_commands(app, system)
    add_models_commands(app, system)
    add_export_command(app, system)
    add_serve_command(app, system)
    app.add_typer(build_data_app(), name="data", rich_help_panel=TOOLS_PANEL)

    problems.extend(_add_plugin_commands(app, system))
    if not (eval_app.registered_commands or eval_app.registered_groups):  # no task declares eval_options
        app.registered_groups[:] = [group for group in app.registered_groups if group.typer_instance is not eval_app]
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
            context = getattr(error, "ctx", None)
            typer.echo(context.get_help() if context is not None else message)
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
