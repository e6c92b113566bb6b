"""Error types that the CLI turns into one red line and an exit code.

Library code raises these; only ``gantool.cli.main`` catches them. Each message should say what was
expected, what arrived, and what to do, naming the file or plugin involved.
"""

from __future__ import annotations


class GantoolError(Exception):
    """Base class for every error gantool reports to a user. Exit code 1 unless a subclass says so."""

    exit_code: int = 1


class UsageError(GantoolError):
    """The command line or a config file asked for something impossible (exit code 2)."""

    exit_code = 2


class InputError(GantoolError):
    """An input file or folder is missing, unreadable or not what it should be."""


class OutputError(GantoolError):
    """An output could not be written (folder not writable, would overwrite an input, ...)."""


class PluginError(GantoolError):
    """A plugin is broken or conflicts with another one."""


class CheckpointError(GantoolError):
    """A checkpoint or weights file is missing, corrupt or belongs to another task."""


class TrainingError(GantoolError):
    """Training cannot go on (for example a NaN or Inf loss)."""
