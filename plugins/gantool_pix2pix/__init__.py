"""gantool-pix2pix: paired image-to-image translation (pix2pix: U-Net generator, PatchGAN critic, GAN + L1).

The plugin's cheap side, imported on every CLI start through the ``gantool`` entry point: the task card
only (its ``eval_options`` make ``gantool eval pix2pix``), no torch. The heavy side is
:mod:`gantool_pix2pix.task`, named by the card's ``implementation``.

``translate`` is shared with CycleGAN: the verb takes both tasks' options, and the model file's
``gantool.task`` metadata decides which task runs it.
"""

from __future__ import annotations

from collections.abc import Callable

from gantool import TaskSpec, WeightsLayout, hookimpl
from gantool_pix2pix.options import Pix2PixEvalOptions, Pix2PixTrainOptions, TranslateOptions

__version__ = "0.1.0"

SPEC = TaskSpec(
    name="pix2pix",
    verb="translate",
    summary="Translate images with a paired pix2pix model (U-Net generator, PatchGAN critic), e.g. label maps "
            "to facade photos.",
    implementation="gantool_pix2pix.task:Pix2Pix",
    infer_options=TranslateOptions,
    train_options=Pix2PixTrainOptions,
    scale=1,
    default_weights=None,
    eval_options=Pix2PixEvalOptions,
    train_defaults={"batch_size": 1},  # the paper's batch; 16 would need ~20 GB at 256x256
    weights_layouts=(WeightsLayout("pix2pix-unet", ("model.model.0.weight", "model.model.1.model.1.weight"),
                                   "gantool_pix2pix.imports:pix2pix_unet"),),
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``pix2pix`` task card."""
    register(SPEC)
