"""``gantool eval TASK``: load the model, hand it to ``Task.evaluate``, check the declared result.

Task-agnostic: what is measured, on which folder layout, is the task's; the engine owns the device, the
model loading and the check that the result can be shown. Scores are computed in fp32 (no autocast), so
they do not depend on the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gantool.engine.export import load_model, train_options_from_metadata
from gantool.engine.runtime import Runtime
from gantool.errors import PluginError, UsageError
from gantool.plugin.evaluation import EvalContext, EvalResult
from gantool.plugin.task import Task

if TYPE_CHECKING:
    from gantool.plugin.common import EvalOptions
    from gantool.plugin.spec import TaskSpec


def run_evaluation(*, spec: TaskSpec, model_path: Path | None, options: EvalOptions,
                   task_options: Any) -> EvalResult:
    """Run ``task.evaluate(networks, data, task_options, context)`` on the runtime device.

    Args:
        spec: The task's card; it must declare ``eval_options``.
        model_path: The model file, or ``None`` for a baseline-only run (``spec.eval_without_model``):
            the task is then built with its default training options and gets ``networks=None``.
        options: The common eval options; ``options.data`` is the evaluation folder.
        task_options: An instance of ``spec.eval_options``.

    Raises:
        UsageError: no model for a task that cannot evaluate without one.
        PluginError: the task does not implement ``evaluate`` or returned something that is not a valid
            ``EvalResult`` (all problems in one line).
    """
    if options.data is None:
        raise UsageError(f"`gantool eval {spec.name}` needs --data DIR")
    if model_path is None and not spec.eval_without_model:
        raise UsageError(f"`gantool eval {spec.name}` needs --model (the task cannot evaluate without one)")
    with Runtime.from_options(options, distributed=False) as runtime:
        if model_path is None:
            task = spec.load_implementation()(spec, train_options_from_metadata(spec, {}))
            networks = None
        else:
            model = load_model(Path(model_path), spec, device=runtime.device)
            task, networks = model.task, model.networks
        if getattr(type(task), "evaluate", None) is Task.evaluate:
            raise PluginError(f"task {spec.name!r} declares eval_options, but {type(task).__name__} does not "
                              "implement evaluate()")
        context = EvalContext(device=runtime.device, model=None if model_path is None else Path(model_path))
        with torch.no_grad():
            result = task.evaluate(networks, Path(options.data), task_options, context)
    where = f"task {spec.name!r}: {type(task).__name__}.evaluate()"
    if not isinstance(result, EvalResult):
        raise PluginError(f"{where} returned {type(result).__name__}, not a gantool.EvalResult")
    problems = result.problems()
    if problems:
        raise PluginError(f"{where} returned an unusable EvalResult: " + "; ".join(problems))
    return result
