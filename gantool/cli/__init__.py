"""The Typer command line, torch-free: the app, verbs, eval and data commands, and the seam to the engine.

``main`` is the ``gantool`` script's entry point; it imports the app only when called.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``gantool`` script (see :func:`gantool.cli.app.main`)."""
    from gantool.cli.app import main as run

    run(argv)
