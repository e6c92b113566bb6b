"""gantool-cyclegan: unpaired image-to-image translation (CycleGAN, Zhu et al. 2017; CUT, Park et al. 2020).

The cheap side, imported on every CLI start through the ``gantool`` entry point: the task cards only, no
torch. ``gantool train cyclegan --data horse2zebra`` trains both directions at once from ``trainA/`` and
``trainB/`` folders; ``gantool translate IMAGES --model M.safetensors [--direction BtoA]`` runs one of the
two generators (without ``--model``, ``--direction BtoA`` runs the bundled zebra to horse). pix2pix shares
the ``translate`` verb: the model file's ``gantool.task`` says which runs. ``cut`` is the one-sided
alternative (one generator A to B, one critic, a patch-wise contrastive loss instead of the cycle):
``gantool train cut``, and the same ``translate`` verb. The heavy sides are :mod:`gantool_cyclegan.task`
and :mod:`gantool_cyclegan.cut`.
"""

from __future__ import annotations

from collections.abc import Callable

from gantool import TaskSpec, WeightsLayout, hookimpl
from gantool.weights import bundled_models_resolver, package_models
from gantool_cyclegan.options import (
    CUTTrainOptions,
    CycleGANEvalOptions,
    CycleGANTrainOptions,
    OneWayTranslateOptions,
    TranslateOptions,
)

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
    # `gantool translate --direction BtoA` without --model: the bundled zebra -> horse (cut has no --direction);
    # a bare `gantool translate` runs cut's default, marked verb_default.
    default_weights="cyclegan-horse2zebra",
    inference_networks=("generator_ab", "generator_ba"),
    eval_options=CycleGANEvalOptions,
    train_defaults={"batch_size": 1},  # the paper's batch; 16 would need ~20 GB at 256x256
    weights_layouts=(WeightsLayout("cyclegan-resnet", ("model.1.weight", "model.10.conv_block.1.weight"),
                                   "gantool_cyclegan.imports:cyclegan_resnet", takes_reverse=True),),
)

CUT_SPEC = TaskSpec(
    name="cut",
    verb="translate",
    summary="Translate images one way (A to B) with one generator and a patch-wise contrastive loss (CUT).",
    implementation="gantool_cyclegan.cut:CUT",
    train_options=CUTTrainOptions,
    infer_options=OneWayTranslateOptions,
    scale=1,
    default_weights="cut-horse2zebra",  # `gantool translate` without --model: the bundled horse -> zebra
    verb_default=True,  # of the translate tasks with default weights, this one answers a bare call
    inference_networks=("generator",),
    eval_options=CycleGANEvalOptions,
    train_defaults={"batch_size": 1},  # the paper's
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``cyclegan`` and ``cut`` task cards."""
    register(SPEC)
    register(CUT_SPEC)
