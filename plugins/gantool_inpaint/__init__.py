"""gantool-inpaint: fill holes in photos (gated-convolution generator refining OpenCV's TELEA fill).

The plugin's cheap side, imported on every CLI start: the task card only, no torch. The heavy side is
:mod:`gantool_inpaint.task`. Masks follow IOPaint: white (>127 as gray) is a hole; ``--invert-mask`` for
white-is-kept masks, and a transparent area of the photo is the hole when no ``--mask`` is given.
"""

from __future__ import annotations

from collections.abc import Callable

from gantool import InputSpec, TaskSpec, hookimpl
from gantool.weights import bundled_models_resolver, package_models
from gantool_inpaint.options import InpaintEvalOptions, InpaintOptions, InpaintTrainOptions

__version__ = "0.1.0"

#: The bundled models ship in this package (package data); this plugin's own resolver finds them, exactly as a
#: third-party plugin would ship default weights.
MODELS = package_models(__name__)
gantool_resolve_weights = bundled_models_resolver(MODELS)

SPEC = TaskSpec(
    name="inpaint",
    verb="inpaint",
    summary="Fill the holes of photos given by a mask (white = hole) or by transparency.",
    implementation="gantool_inpaint.task:Inpaint",
    infer_options=InpaintOptions,
    train_options=InpaintTrainOptions,
    default_weights="inpaint",  # the photo model; `-m inpaint-faces` for faces (see the cards)
    inputs=(InputSpec("image", "Photos to repair; without --mask their transparent areas are the holes.",
                      alpha="as-mask"),
            InputSpec("mask", "Masks, white = hole (read as gray, > 127; one of another size is resized, "
                      "nearest).", channels=1, resize="nearest")),
    eval_options=InpaintEvalOptions,
    eval_without_model=True,
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``inpaint`` task card."""
    register(SPEC)
