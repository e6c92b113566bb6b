"""The Python API: ``gantool.load(name_or_path)`` and ``gantool.generate(...)``, the CLI's work on arrays.

Torch-free until a model is loaded: this module resolves the name exactly as the verbs do (the
``gantool_resolve_weights`` hook, asked for each installed task; the file's ``gantool.task`` then picks
the task), checks the task's options, and only then imports the engine (:mod:`gantool.engine.session`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool.errors import CheckpointError, UsageError
from gantool.plugin.common import InferenceOptions
from gantool.plugin.options import build
from gantool.weights import MODEL_SUFFIX, read_metadata

if TYPE_CHECKING:
    import numpy as np

    from gantool.engine.session import Model
    from gantool.plugin.manager import PluginSystem
    from gantool.plugin.spec import TaskSpec

_RUNTIME_NAMES = ("device", "precision", "compile", "tile", "tile_overlap")


def load(model: str | os.PathLike[str], *, plugins: PluginSystem | None = None, **options: Any) -> Model:
    """Load a model by name (``gantool models list``) or ``.safetensors`` path, ready to call on images.

    ``options`` are the verb's flags as keywords: the runtime ones (``device``, ``precision``, ``compile``,
    ``tile``, ``tile_overlap``) and the task's own (``outscale=2`` for superres, ``direction="BtoA"`` for
    translate ...). ``plugins``: a plugin system to use instead of the installed plugins (tests).

    Raises:
        CheckpointError: no such model, or a model of a task no installed plugin provides.
        UsageError: an option the task does not have.
    """
    from gantool.plugin.manager import build_plugin_system

    system = plugins if plugins is not None else build_plugin_system()
    spec, path = resolve_model(system, model)
    runtime = {name: options.pop(name) for name in _RUNTIME_NAMES if name in options}
    known = {field.name for field in dataclasses.fields(spec.infer_options)} if spec.infer_options else set()
    unknown = sorted(set(options) - known)
    if unknown:
        takes = ", ".join(sorted(known | set(_RUNTIME_NAMES)))
        raise UsageError(f"task {spec.name!r} has no option {unknown[0]!r} (it takes {takes})")
    if "tile" in runtime:
        runtime["tile"] = str(runtime["tile"])
    from gantool.engine.session import Model

    return Model(spec, path, InferenceOptions(**runtime), build(spec.infer_options, options))


def generate(model: str | os.PathLike[str], count: int = 1, *, seed: int = 0, label: str | int | None = None,
             truncation: float | None = None, dtype: Any = "uint8", plugins: PluginSystem | None = None,
             **options: Any) -> list[np.ndarray]:
    """Images ``0 .. count - 1`` of ``seed`` from a generation model, as ``gantool generate`` would write them.

    ``label`` picks a class (name or index) of a class-conditional model; ``dtype`` is ``"uint8"`` or
    ``"float32"`` (in [0, 1]); ``options`` as for :func:`load`.
    """
    return load(model, plugins=plugins, **options).generate(count, seed=seed, label=label, truncation=truncation,
                                                           dtype=dtype)


def resolve_model(system: PluginSystem, model: str | os.PathLike[str]) -> tuple[TaskSpec, Path]:
    """The task and file of a model name or path, through the ``gantool_resolve_weights`` hook."""
    name = os.fspath(model)
    hook = system.manager.hook.gantool_resolve_weights
    path = next((p for p in (hook(task=spec, name=name) for spec in system.registry.specs()) if p is not None),
                None)
    if path is None:
        as_path = Path(name).expanduser()
        if as_path.suffix == MODEL_SUFFIX and as_path.is_file():  # no task is installed to ask the hook with
            path = as_path
        else:
            hint = " (no such file)" if "/" in name or name.endswith(MODEL_SUFFIX) else ""
            raise CheckpointError(f"model {name!r} not found{hint}; see `gantool models list`")
    task = read_metadata(Path(path)).get("gantool.task", "")
    if task not in system.registry:
        raise CheckpointError(f"model '{path}' names task {task!r}, which no installed plugin provides")
    return system.registry.get(task), Path(path)
