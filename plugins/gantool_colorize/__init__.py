"""gantool-colorize: colourise gray photos with a conditional GAN in Lab space (L in, ab out).

The plugin's cheap side, imported on every CLI start through the ``gantool`` entry point: the task card
(its ``eval_options`` make ``gantool eval colorize``), no torch. The heavy side is
:mod:`gantool_colorize.task`; the networks and the training step are pix2pix's (:mod:`gantool.cgan`).
"""

from __future__ import annotations

from collections.abc import Callable

from gantool import TaskSpec, hookimpl
from gantool.weights import bundled_models_resolver, package_models
from gantool_colorize.options import ColorizeEvalOptions, ColorizeOptions, ColorizeTrainOptions

__version__ = "0.1.0"

DEFAULT_MODEL = "colorize"

#: The bundled models ship in this package (package data); this plugin's own resolver finds them, exactly as a
#: third-party plugin would ship default weights.
MODELS = package_models(__name__)
gantool_resolve_weights = bundled_models_resolver(MODELS)

SPEC = TaskSpec(
    name="colorize",
    verb="colorize",
    summary="Colourise gray photos (Lab-space pix2pix): colour at the original resolution, alpha and 16-bit kept.",
    implementation="gantool_colorize.task:Colorize",
    infer_options=ColorizeOptions,
    train_options=ColorizeTrainOptions,
    scale=1,
    default_weights=DEFAULT_MODEL,
    eval_options=ColorizeEvalOptions,  # `gantool eval colorize` scores DEFAULT_MODEL without --model
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``colorize`` task card."""
    register(SPEC)
