"""gantool-superres: single-image super-resolution (SRResNet/SRGAN, RRDB/ESRGAN and a compact CPU network).

This is the plugin's cheap side, imported on every CLI start through the ``gantool`` entry point: it builds
the task card (whose ``eval_options`` make ``gantool eval superres``) and imports neither torch nor the
networks. The heavy side is :mod:`gantool_superres.task`, named by the card's ``implementation`` string.

Inference note: the card's ``scale`` (4) is only the default; a model file's ``gantool.scale`` metadata
carries the scale it was trained for (2, 3 or 4), and the rebuilt task reads it from the stored options.
"""

from __future__ import annotations

from collections.abc import Callable

from gantool import TaskSpec, WeightsLayout, hookimpl
from gantool.weights import bundled_models_resolver, package_models
from gantool_superres.options import SuperResEvalOptions, SuperResTrainOptions, UpscaleOptions

__version__ = "0.1.0"

#: The bundled models ship in this package (package data); this plugin's own resolver finds them, exactly as a
#: third-party plugin would ship default weights.
MODELS = package_models(__name__)
gantool_resolve_weights = bundled_models_resolver(MODELS)

SPEC = TaskSpec(
    name="superres",
    verb="upscale",
    summary="Upscale photos 2x, 3x or 4x with a super-resolution GAN (compact, SRResNet or RRDB generator).",
    implementation="gantool_superres.task:SuperResolution",
    infer_options=UpscaleOptions,
    train_options=SuperResTrainOptions,
    scale=4,
    default_weights="superres-x{scale}",
    eval_options=SuperResEvalOptions,
    eval_without_model=True,  # `gantool eval superres --data Set5` measures bicubic alone
    weights_layouts=(  # `gantool models import`: published files, renamed by gantool_superres.imports
        WeightsLayout("esrgan", ("conv_first.weight", "body.0.rdb1.conv1.weight"), "gantool_superres.imports:esrgan"),
        WeightsLayout("esrgan-old", ("model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"),
                      "gantool_superres.imports:esrgan_old"),
        WeightsLayout("srvgg", ("body.0.weight", "body.1.weight"), "gantool_superres.imports:srvgg"),
    ),
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``superres`` task card."""
    register(SPEC)
