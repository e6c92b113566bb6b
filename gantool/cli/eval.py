"""The shared ``gantool eval`` command group, so that several plugins can each add ``gantool eval TASK``.

Typer gives every sub-app its own name slot: two plugins that each ``app.add_typer(..., name="eval")``
would produce two groups of the same name, and only one would be reachable. A plugin's
``gantool_register_commands`` therefore asks for the group here and adds its command to it::

    from gantool.cli.eval import eval_app

    @hookimpl
    def gantool_register_commands(app):
        @eval_app(app).command("mytask")
        def eval_mytask(...): ...

Cheap to import (typer only), as everything the CLI imports at start-up must be.
"""

from __future__ import annotations

from typing import Annotated

import typer

#: Options every ``gantool eval TASK`` takes, as annotations to reuse in a command's signature (import them
#: at module level: Typer resolves the annotations in the plugin module's namespace).
ModelOption = Annotated[str, typer.Option("--model", "-m", help="Model name or .safetensors path.")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the rows as JSON on stdout.")]

EVAL_NAME = "eval"
EVAL_HELP = "Measure models on benchmark image sets (`gantool eval TASK --help`)."
PANEL = "Plugins"


def eval_app(app: typer.Typer) -> typer.Typer:
    """The ``eval`` sub-app of ``app``: the one already added, or a new one added now."""
    for group in app.registered_groups:
        if group.name == EVAL_NAME and group.typer_instance is not None:
            return group.typer_instance
    group_app = typer.Typer(help=EVAL_HELP, no_args_is_help=True)
    app.add_typer(group_app, name=EVAL_NAME, rich_help_panel=PANEL)
    return group_app


def run_eval(module: str, model: str | None, data: object, *, as_json: bool, title: str, **options: object) -> None:
    """The body of a ``gantool eval TASK`` command, the same for every task.

    ``module`` (imported only now, so the CLI stays fast to start) provides ``evaluate(model_path, data,
    **options)`` returning score rows, and ``print_rows(rows, title=...)``. The model name or path is
    resolved first (``None`` is passed on: some tasks have a baseline-only mode); the rows are printed as
    the task's table or, with ``as_json``, as JSON. Errors become one red line and an exit code.
    """
    from gantool.cli.report import run_reporting_errors

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
