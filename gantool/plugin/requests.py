"""What the engine asks of a task beyond its networks: :class:`SampleRequest`, the arguments of ``Task.sample``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class SampleRequest:
    """What :meth:`Task.sample` is asked for besides the count: the user's ``--class``/``--truncation`` and flags.

    Attributes:
        label: Index into :meth:`Task.class_names` (``--class`` takes a name or an index; the engine has
            checked it), or ``None``: an unconditional task, or no ``--class`` given, in which case the task
            picks (for example draws a label per image from the ``generator`` it is given).
        truncation: ``--truncation`` in (0, 1], or ``None`` (off). Only ever set for a task with
            ``supports_truncation = True``; the task decides what it means (the usual "truncation trick"
            redraws or shrinks latent values beyond ``truncation`` times their spread: lower is more typical
            and less varied).
        task_options: An instance of ``spec.infer_options`` (or ``None``), as :meth:`Task.predict` receives.
    """

    label: int | None = None
    truncation: float | None = None
    task_options: Any = None
