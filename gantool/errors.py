"""Error types that the CLI turns into one red line and an exit code.

Library code raises these; only ``gantool.cli.main`` catches them. Each message should say what was
expected, what arrived, and what to do, naming the file or plugin involved.
"""

from __future__ import annotations

from collections.abc import Sequence


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


class Interrupted(GantoolError):
    """A signal stopped a command after it saved what it could: exit 130 (SIGINT) or 143 (SIGTERM), as a
    shell reports a process killed by that signal, so scripts and schedulers do not take it for success."""

    exit_code = 130

    def __init__(self, message: str, *, signal: int = 2) -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signal)


def one_line(error: BaseException, *, location: bool = False) -> str:
    """An exception as one line for a report: the first line of its message.

    A ``GantoolError`` is already written for users, so it is shown as is; any other exception gets its
    type name in front (``RuntimeError: boom``) because the message alone rarely says what failed. With
    ``location``, the file and line where it was raised are appended, which helps a plugin author find a
    crash the report otherwise hides.
    """
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    line = text if isinstance(error, GantoolError) else f"{type(error).__name__}: {text}".rstrip(": ")
    if location:
        import traceback

        frames = traceback.extract_tb(error.__traceback__)
        if frames:
            line += f" ({frames[-1].filename}:{frames[-1].lineno})"
    return line


def few(names: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` names, comma-separated, and how many more there are: keeps error lines short."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
