"""``gantool plugins list`` and ``gantool models list``: what is installed, read without torch."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gantool.cli.command import TOOLS_PANEL
from gantool.cli.table import print_table_fitted
from gantool.plugin.manager import PluginSystem
from gantool.weights import list_models


def add_plugins_commands(app: typer.Typer, system: PluginSystem) -> None:
    plugins_app = typer.Typer(help="Inspect installed plugins.", no_args_is_help=True)

    @plugins_app.command("list")
    def list_plugins(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False) -> None:
        """List plugins: name, version, distribution, tasks, and status or load error."""
        rows = [info for info in system.plugins if not info.essential]
        if as_json:
            typer.echo(json.dumps([info.as_dict() for info in rows], indent=2))
            return
        _print_table("gantool plugins", ("name", "version", "distribution", "tasks", "status"), [
            (info.name, info.version or "-", info.distribution or "-", ", ".join(info.tasks) or "-",
             info.status if info.error is None else f"[red]{info.status}: {info.error}[/]") for info in rows])

    app.add_typer(plugins_app, name="plugins", rich_help_panel=TOOLS_PANEL)


def add_models_commands(app: typer.Typer, system: PluginSystem | None = None) -> None:
    models_app = typer.Typer(help="Inspect available model files.", no_args_is_help=True)

    @models_app.command("list")
    def list_available(as_json: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False) -> None:
        """List model files: $GANTOOL_MODELS, the models plugins ship, the user cache."""
        entries = list_models()
        if as_json:
            typer.echo(json.dumps([{"name": e.name, "task": e.task, "path": str(e.path), "bytes": e.size_bytes,
                                    "summary": e.summary, "error": e.error} for e in entries], indent=2))
            return
        _print_table("gantool models", ("name", "task", "size", "summary", "path"), [
            (entry.name, entry.task, f"{entry.size_bytes / 1e6:.1f} MB",
             entry.summary if entry.error is None else f"[red]{entry.error}[/]", str(entry.path))
            for entry in entries])

    if system is not None:
        add_import_command(models_app, system)
    app.add_typer(models_app, name="models", rich_help_panel=TOOLS_PANEL)


def add_import_command(models_app: typer.Typer, system: PluginSystem) -> None:
    """``gantool models import``: the layouts it knows are the installed task cards' ``weights_layouts``."""
    layouts = sorted({layout.name: spec.name for spec in system.registry.specs() for layout in spec.weights_layouts
                      }.items())
    known = ", ".join(f"{name} ({task})" for name, task in layouts) or "none installed"

    @models_app.command("import", help="Import published generator weights as a gantool model. Layouts the "
                        f"installed tasks can import: {known}.")
    def import_model(
        source: Annotated[Path, typer.Argument(help="A .pth/.pt state dict (read with weights_only) or .safetensors.",
                                               show_default=False)],
        arch: Annotated[str | None, typer.Option(help="Layout, when it cannot be told from the tensor names: "
                                                 "one of the layouts listed above.")] = None,
        name: Annotated[str | None, typer.Option(help="Model name (default: the file's stem).")] = None,
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write the .safetensors "
                                                    "(default: NAME in the user cache, found by name).")] = None,
        reverse: Annotated[Path | None, typer.Option(help="A second generator's file, for layouts that take one "
                                                     "(CycleGAN: the BtoA generator).")] = None,
        overwrite: Annotated[bool, typer.Option(help="Replace an existing model file.")] = False,
    ) -> None:
        """Import published generator weights as a gantool model (the help text lists the known layouts)."""
        from gantool.cli.report import run_reporting_errors
        from gantool.errors import OutputError

        def body() -> None:
            from gantool.modelimport import import_model as convert_and_export
            from gantool.weights import MODEL_SUFFIX, user_model_folder

            target = output or user_model_folder() / f"{name or source.stem}{MODEL_SUFFIX}"
            if target.suffix != MODEL_SUFFIX:
                target = target.with_name(target.name + MODEL_SUFFIX)
            if target.exists() and not overwrite:
                raise OutputError(f"'{target}' exists; pass --overwrite to replace it or --name to choose another")
            written, converted = convert_and_export(system, source, target, arch=arch, reverse=reverse)
            verb = system.registry.get(converted.task).verb
            typer.echo(f"imported '{source}' ({converted.description}) as a {converted.task} model: {written}")
            typer.echo(f"run it with: gantool {verb} IMAGE --model {written.stem if output is None else written}")

        run_reporting_errors(body)


def _print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """One rich table on stdout; cells may hold rich markup (a red error)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    print_table_fitted(table)  # piped into grep or a file: one line per row
