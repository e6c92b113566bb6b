"""gantool-cyclegan: unpaired image-to-image translation (CycleGAN, Zhu et al. 2017).

The cheap side, imported on every CLI start through the ``gantool`` entry point: the task card only, no
torch. ``gantool train cyclegan --data horse2zebra`` trains both directions at once from ``trainA/`` and
``trainB/`` folders; ``gantool translate IMAGES --model M.safetensors [--direction BtoA]`` runs one of the
two generators. pix2pix shares the ``translate`` verb: the model file's ``gantool.task`` says which runs.
The heavy side is :mod:`gantool_cyclegan.task`.
"""

from __future__ import annotations

from collections.abc import Callable

from gantool import TaskSpec, hookimpl
from gantool.weights import bundled_models_resolver, package_models
from gantool_cyclegan.options import CycleGANEvalOptions, CycleGANTrainOptions, TranslateOptions

__version__ = "0.1.0"

#: The bundled models ship in this package (package data); this plugin's own resolver finds them, exactly as a
#: third-party plugin would ship default weights.
MODELS = package_models(__name__)
gantool_resolve_weights = bundled_models_resolver(MODELS)

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
