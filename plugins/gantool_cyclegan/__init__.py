"""gantool-cyclegan: unpaired image-to-image translation (CycleGAN, Zhu et al. 2017).

The cheap side, imported on every CLI start through the ``gantool`` entry point: the task card only, no
torch. ``gantool train cyclegan --data horse2zebra`` trains both directions at once from ``trainA/`` and
``trainB/`` folders; ``gantool translate IMAGES --model M.safetensors [--direction BtoA]`` runs one of the
two generators. pix2pix shares the ``translate`` verb: the model file's ``gantool.task`` says which runs.
The heavy side is :mod:`gantool_cyclegan.task`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gantool import TaskSpec, hookimpl
from gantool.weights import package_models
from gantool_cyclegan.options import CycleGANEvalOptions, CycleGANTrainOptions, TranslateOptions

__version__ = "0.1.0"

#: The bundled models, shipped as package data in ``models/`` (weights and their cards).
MODELS = package_models(__name__)

SPEC = TaskSpec(
    name="cyclegan",
    verb="translate",
    summary="Translate images between two styles learnt from unpaired examples (CycleGAN), e.g. horse <-> zebra.",
    implementation="gantool_cyclegan.task:CycleGAN",
    infer_options=TranslateOptions,
    train_options=CycleGANTrainOptions,
    scale=1,
    default_weights="cyclegan-horse2zebra",  # `gantool translate` without --model: the bundled horse <-> zebra
    inference_networks=("generator_ab", "generator_ba"),
    eval_options=CycleGANEvalOptions,
    train_defaults={"batch_size": 1},  # the paper's batch; 16 would need ~20 GB at 256x256
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``cyclegan`` task card."""
    register(SPEC)


@hookimpl(trylast=True)
def gantool_resolve_weights(task: TaskSpec, name: str) -> Path | None:
    """The bundled models, found the way a third-party plugin finds its own; ``trylast`` so a user's
    ``$GANTOOL_MODELS`` or another plugin's resolver can override a bundled name."""
    del task  # a bundled model is found by name; the verb checks its gantool.task
    return MODELS.find(name)
