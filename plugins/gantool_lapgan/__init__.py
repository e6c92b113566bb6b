"""gantool-lapgan: unconditional and class-conditional image generation (LapGAN and DCGAN).

The cheap side, imported on every CLI start: two task cards, no torch. Both share ``gantool generate``
(the model file picks the task) and have ``gantool eval lapgan|dcgan``:

- ``lapgan`` (Denton et al. 2015): a Laplacian pyramid of generators; a DCGAN makes the coarsest level
  from noise and each finer level adds the band-pass detail to the upsampled coarser image.
- ``dcgan`` (Radford et al. 2016): one generator at the full size, the single-scale baseline.

The heavy side is :mod:`gantool_lapgan.task`.
"""

from __future__ import annotations

from collections.abc import Callable

from gantool import TaskSpec, hookimpl
from gantool.weights import bundled_models_resolver, package_models
from gantool_lapgan.options import DCGANTrainOptions, GenerateOptions, GenerationEvalOptions, LapGANTrainOptions

__version__ = "0.1.0"

#: The bundled models ship in this package (package data); this plugin's own resolver finds them, exactly as a
#: third-party plugin would ship default weights.
MODELS = package_models(__name__)
gantool_resolve_weights = bundled_models_resolver(MODELS)

LAPGAN = TaskSpec(
    name="lapgan",
    verb="generate",
    summary="Generate images coarse to fine with a Laplacian pyramid of GANs (LapGAN).",
    implementation="gantool_lapgan.task:LapGAN",
    train_options=LapGANTrainOptions,
    infer_options=GenerateOptions,
    eval_options=GenerationEvalOptions,
    kind="sample",
    default_weights="lapgan-faces64",  # `gantool generate` without --model: the bundled 64 px faces
    inference_networks=("generator16",),
)

DCGAN = TaskSpec(
    name="dcgan",
    verb="generate",
    summary="Generate images with a single-scale DCGAN (the baseline LapGAN is compared with).",
    implementation="gantool_lapgan.task:DCGAN",
    train_options=DCGANTrainOptions,
    infer_options=GenerateOptions,
    eval_options=GenerationEvalOptions,
    kind="sample",
    inference_networks=("generator",),
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``lapgan`` and ``dcgan`` task cards."""
    register(LAPGAN)
    register(DCGAN)
