"""The seam between the CLI and the engine: the only place CLI commands reach torch-heavy code.

Each function imports its engine module when called, so building the CLI stays torch-free. Tests of the
CLI wiring replace these functions; the engine's own tests call the engine directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gantool.plugin.common import InferenceOptions, SampleOptions, TrainingOptions
from gantool.plugin.spec import TaskSpec


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
