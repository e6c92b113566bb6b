"""``gantool plugins list`` and ``gantool models list``: what is installed, read without torch."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gantool.cli.command import TOOLS_PANEL
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


def add_models_commands(app: typer.Typer) -> None:
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

    app.add_typer(models_app, name="models", rich_help_panel=TOOLS_PANEL)


def _print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """One rich table on stdout; cells may hold rich markup (a red error)."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=False).print(table)
