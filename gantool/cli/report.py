"""How every command reports a failure: one red line on stderr and an exit code, never a traceback.

Torch-free and Typer-light, so library modules that own a command body (``gantool data``, ``gantool eval``)
can use it without importing the app.
"""

from __future__ import annotations

from collections.abc import Callable

import typer
from rich.console import Console
from rich.markup import escape

from gantool.errors import GantoolError


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def report_error(message: str) -> None:
    """Print one red line on stderr: the only way gantool reports a failure to a user.

    The message is escaped: a ``[ui]`` or ``[0, 1]`` in it is text, not rich markup to swallow."""
    _stderr().print(f"[bold red]error:[/] {escape(message)}", markup=True, emoji=False)


def report_warning(message: str) -> None:
    _stderr().print(f"[yellow]warning:[/] {escape(message)}", markup=True, emoji=False)


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
