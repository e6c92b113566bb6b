"""``gantool data list`` and ``gantool data download NAME``: the command side of :mod:`gantool.catalog`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gantool.catalog import KNOWN_DATASETS, data_root, download, is_complete, known_dataset
from gantool.cli.report import report_error
from gantool.errors import GantoolError


def build_data_app() -> typer.Typer:
    """``gantool data list`` and ``gantool data download NAME``, as a Typer sub-app."""
    app = typer.Typer(help="List and download known datasets (used by --data NAME).", no_args_is_help=True)

    @app.command("list")
    def list_datasets() -> None:
        """Known dataset names, their layout, and whether each is present under the data root."""
        from rich.table import Table

        from gantool.cli.table import print_table_fitted

        root = data_root()
        table = Table(title=f"datasets (data root: {root})")
        for column in ("name", "kind", "present", "summary"):
            table.add_column(column)
        for dataset in KNOWN_DATASETS.values():
            present = "yes" if is_complete(root / dataset.name, dataset) else "-"
            table.add_row(dataset.name, dataset.kind, present, dataset.summary)
        print_table_fitted(table)

    @app.command("download")
    def download_dataset(
        name: Annotated[str, typer.Argument(help="Dataset name (see `gantool data list`).", show_default=False)],
        root: Annotated[Path | None, typer.Option("--root", help="Data root (default: $GANTOOL_DATA or "
                                                  "~/.cache/gantool/data).")] = None,
    ) -> None:
        """Download a dataset's official archive and extract it to DATA_ROOT/NAME."""

        shown = {"mb": -1}

        def report(done: int, total: int | None) -> None:
            mb = done >> 20
            if mb // 10 != shown["mb"] // 10:  # a line every 10 MB
                shown["mb"] = mb
                of = f" of {total >> 20}" if total else ""
                typer.echo(f"  {mb}{of} MB", err=True)

        try:
            dataset = known_dataset(name)
            if is_complete((root or data_root()) / dataset.name, dataset):
                typer.echo(f"{dataset.name} is already present", err=True)
            else:
                typer.echo(f"downloading {dataset.name} from {dataset.url}", err=True)
            folder = download(name, root, progress=report)
        except GantoolError as error:
            report_error(str(error))
            raise typer.Exit(error.exit_code) from None
        typer.echo(str(folder))

    return app
