"""The seam between the CLI and the engine: the only place CLI commands reach torch-heavy code.

Each function imports its engine module when called, so building the CLI stays torch-free. Tests of the
CLI wiring replace these functions; the engine's own tests call the engine directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool.plugin.common import EvalOptions, InferenceOptions, SampleOptions, TrainingOptions
from gantool.plugin.spec import TaskSpec

if TYPE_CHECKING:
    from gantool.plugin.evaluation import EvalResult


def run_inference(*, spec: TaskSpec, model_path: Path, options: InferenceOptions, task_options: Any,
                  inputs: list[str], companions: dict[str, str] | None = None) -> None:
    """Run an image-to-image task over files, folders or globs through the batch pipeline.

    ``companions``: a multi-input task's other inputs by name (``{"mask": "masks/"}``), each a file,
    folder or glob paired with the images.
    """
    from gantool.engine.inference import run_inference as engine_run_inference

    engine_run_inference(spec=spec, model_path=model_path, options=options, task_options=task_options,
                         inputs=inputs, companions=companions)


def run_sampling(*, spec: TaskSpec, model_path: Path, options: SampleOptions, task_options: Any) -> None:
    """Generate images with a sampling task (resumable, reproducible per seed)."""
    from gantool.engine.sampling import run_sampling as engine_run_sampling

    engine_run_sampling(spec=spec, model_path=model_path, options=options, task_options=task_options)


def run_training(*, spec: TaskSpec, options: TrainingOptions, task_options: Any, command: str) -> None:
    """Train a task with the shared training loop (DDP when launched by torchrun)."""
    from gantool.engine.training import run_training as engine_run_training

    engine_run_training(spec=spec, options=options, task_options=task_options, command=command)


def run_evaluation(*, spec: TaskSpec, model_path: Path | None, options: EvalOptions,
                   task_options: Any) -> EvalResult:
    """Score a model (or, with ``model_path=None``, the task's baselines) through ``Task.evaluate``."""
    from gantool.engine.evaluation import run_evaluation as engine_run_evaluation

    return engine_run_evaluation(spec=spec, model_path=model_path, options=options, task_options=task_options)


def export_onnx(*, spec: TaskSpec, model_path: Path, output: Path, task_options: Any, tolerance: float) -> list[Any]:
    """Export a model to ONNX and check it against PyTorch (a list of ``Parity`` measurements)."""
    from gantool.engine.onnxexport import export_onnx as engine_export_onnx

    return list(engine_export_onnx(spec, model_path, output, task_options, tolerance=tolerance))
