"""``gantool eval TASK``: one command per task whose card declares ``eval_options``, generated like the verbs.

Flags: the common :class:`~gantool.plugin.common.EvalOptions` (``--data``, ``--model``, ``--device``,
``--json``), then the task's own ``eval_options``, and ``--config``. ``--model`` is resolved the way the
verbs resolve it (:func:`gantool.cli.verbs.choose_task`, through the ``gantool_resolve_weights`` hook); the
engine runs ``Task.evaluate`` (:func:`gantool.cli.launch.run_evaluation`) and the rows come back here to be
printed as a table or as JSON. Torch-free, like everything the CLI imports at start-up.

Deprecated (0.2, removed in 0.3): plugins that add ``gantool eval TASK`` from ``gantool_register_commands``
through :func:`eval_app` and :func:`run_eval` keep working, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from gantool.cli import launch
from gantool.cli.command import make_command, merged_fields, resolve_values, resolved_data
from gantool.cli.verbs import choose_task
from gantool.errors import PluginError
from gantool.plugin.common import EvalOptions
from gantool.plugin.manager import PluginSystem
from gantool.plugin.options import build
from gantool.plugin.spec import TaskSpec

EVAL_NAME = "eval"
EVAL_HELP = "Measure models on benchmark image sets (`gantool eval TASK --help`)."

_DEPRECATED = ("is deprecated and will be removed in gantool 0.3; declare TaskSpec.eval_options and implement "
               "Task.evaluate, and gantool makes `gantool eval TASK` (see docs/plugins.md, Evaluation)")


def build_eval_app(system: PluginSystem) -> tuple[typer.Typer, list[str]]:
    """The ``eval`` group with one command per task that declares ``eval_options``, and the problems met.

    A task whose eval options cannot become flags (a name clashing with the common ones) is left out with
    a problem line; the other tasks' commands are still made.
    """
    app = typer.Typer(help=EVAL_HELP, no_args_is_help=True)
    problems = []
    for spec in system.registry.specs():
        if spec.eval_options is None:
            continue
        try:
            add_eval_command(app, system, spec)
        except (PluginError, ValueError) as error:
            problems.append(f"`eval {spec.name}` left out: {error}")
    return app, problems


def add_eval_command(eval_app: typer.Typer, system: PluginSystem, spec: TaskSpec) -> None:
    """Add ``gantool eval NAME`` for one task: common flags, the task's ``eval_options``, ``--config``."""
    fields = merged_fields(EvalOptions, [spec], "eval")

    def body(ctx: typer.Context, kwargs: dict[str, Any]) -> None:
        from gantool.cli.table import print_result, result_as_json

        values = resolve_values(ctx, fields, kwargs)
        options = resolved_data(build(EvalOptions, values), f"eval {spec.name}")
        chosen, model_path = choose_model(system, spec, options.model, values)
        result = launch.run_evaluation(spec=chosen, model_path=model_path, options=options,
                                       task_options=build(spec.eval_options, values))
        if options.json:
            typer.echo(result_as_json(result))
        else:
            print_result(result, title=f"{spec.name} on {options.data}")

    summary = eval_summary(spec)
    eval_app.command(spec.name, help=summary)(make_command(fields, body, [], summary))


def choose_model(system: PluginSystem, spec: TaskSpec, model: str | None,
                 values: dict[str, Any]) -> tuple[TaskSpec, Path | None]:
    """The task and model file to evaluate: ``(spec, None)`` for a baseline-only run without ``--model``."""
    if model is None and spec.eval_without_model:
        return system.registry.get(spec.name), None
    # Default weights may name inference options ("superres-x{scale}"); unset eval values must not fill them.
    given = {name: value for name, value in values.items() if value is not None}
    return choose_task(system, f"eval {spec.name}", [spec], model, given, evaluating=True)


def eval_summary(spec: TaskSpec) -> str:
    """The command's help: the ``eval_options`` docstring, or a generic line when it has none."""
    doc = inspect.getdoc(spec.eval_options) or ""
    if not doc or doc.startswith(f"{getattr(spec.eval_options, '__name__', '')}("):  # the signature dataclass() writes
        return f"Evaluate a {spec.name} model on a folder of images."
    return doc


# ------------------------------------------------------------------------------------------ deprecated

#: Deprecated option annotations of the 0.1 eval commands (kept so that old plugin cards still import).
ModelOption = Annotated[str, typer.Option("--model", "-m", help="Model name or .safetensors path.")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the rows as JSON on stdout.")]


def eval_app(app: typer.Typer) -> typer.Typer:
    """Deprecated: the ``eval`` sub-app of ``app`` (the generated one, or a new one added now)."""
    warnings.warn(f"gantool.cli.eval.eval_app {_DEPRECATED}", DeprecationWarning, stacklevel=2)
    for group in app.registered_groups:
        if group.name == EVAL_NAME and group.typer_instance is not None:
            return group.typer_instance
    group_app = typer.Typer(help=EVAL_HELP, no_args_is_help=True)
    app.add_typer(group_app, name=EVAL_NAME, rich_help_panel="Plugins")
    return group_app


def run_eval(module: str, model: str | None, data: object, *, as_json: bool, title: str, **options: object) -> None:
    """Deprecated: the body of a 0.1-style ``gantool eval TASK`` command.

    ``module`` provides ``evaluate(model_path, data, **options)`` returning score rows, and
    ``print_rows(rows, title=...)``. ``--model`` is found on the model search path only (this protocol does
    not know the task, so the ``gantool_resolve_weights`` hook cannot be asked).
    """
    from gantool.cli.report import run_reporting_errors

    warnings.warn(f"gantool.cli.eval.run_eval {_DEPRECATED}", DeprecationWarning, stacklevel=2)

    def body() -> None:
        import importlib

        from gantool.lib.metrics import rows_as_json
        from gantool.weights import resolve_model_path

        implementation = importlib.import_module(module)
        rows = implementation.evaluate(resolve_model_path(model) if model else None, data, **options)
        if as_json:
            typer.echo(rows_as_json(rows))
        else:
            implementation.print_rows(rows, title=title)

    run_reporting_errors(body)
