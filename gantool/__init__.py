"""gantool: a plugin-based GAN toolkit for images.

This module is imported by every CLI call, so it must stay cheap: no torch, no cv2.

**The Python API.** ``gantool.load("superres-x4")`` returns a model to call on NumPy arrays or image
files, ``gantool.generate(...)`` draws from a generation model (:mod:`gantool.api`; docs/api.md).

**The public API.** What plugin authors may import, and what the compatibility policy in
:mod:`gantool.plugin.hookspecs` covers, is:

- the names re-exported here (``__all__``): the hook marker, the task card and its ``InputSpec``, the
  ``Task`` base class (and the ``SampleRequest`` its ``sample`` receives), ``flag()`` for option fields,
  the evaluation result types and the error classes;
- the modules listed in :data:`PUBLIC_MODULES`: the shared building blocks (``gantool.lib.*``), image
  conventions (``gantool.image.*``), the training-step handle and the test kit.

Everything else (``gantool.cli``, ``gantool.engine`` internals, ``gantool.plugin.manager`` ...) may change
between minor releases. ``docs/plugins.md`` documents the same list; a test keeps the two in sync.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gantool import _compat
from gantool.errors import (
    CheckpointError,
    GantoolError,
    InputError,
    OutputError,
    PluginError,
    TrainingError,
    UsageError,
)
from gantool.plugin.evaluation import EvalColumn, EvalContext, EvalResult
from gantool.plugin.hookspecs import hookimpl
from gantool.plugin.options import flag
from gantool.plugin.spec import InputSpec, TaskSpec, WeightsLayout
from gantool.plugin.task import SampleRequest, Task

__version__ = "0.1.0"

if TYPE_CHECKING:
    from gantool.api import generate, load

__all__ = [
    "CheckpointError",
    "EvalColumn",
    "EvalContext",
    "EvalResult",
    "GantoolError",
    "InputError",
    "InputSpec",
    "OutputError",
    "PluginError",
    "SampleRequest",
    "Task",
    "TaskSpec",
    "TrainingError",
    "UsageError",
    "WeightsLayout",
    "__version__",
    "flag",
    "generate",
    "hookimpl",
    "load",
]

#: Modules plugin authors may import from (besides this package itself). Import them where they are used:
#: most import torch.
PUBLIC_MODULES: tuple[str, ...] = (
    "gantool.plugin.common",
    "gantool.engine.step",
    "gantool.image.color",
    "gantool.image.io",
    "gantool.image.tensor",
    "gantool.lib.color",
    "gantool.lib.conditional",
    "gantool.lib.data",
    "gantool.lib.losses",
    "gantool.lib.metrics",
    "gantool.lib.nets.geometry",
    "gantool.lib.nets.layers",
    "gantool.lib.nets.patchgan",
    "gantool.lib.nets.resnet",
    "gantool.lib.nets.unet",
    "gantool.lib.options",
    "gantool.lib.pool",
    "gantool.lib.ranges",
    "gantool.modelimport",
    "gantool.testing",
    "gantool.weights",
)

_compat.install()


def __getattr__(name: str) -> Any:
    """``gantool.load`` and ``gantool.generate`` (the Python API), imported on first use: torch only then."""
    if name in ("load", "generate"):
        from gantool import api

        return getattr(api, name)
    raise AttributeError(f"module 'gantool' has no attribute {name!r}")
