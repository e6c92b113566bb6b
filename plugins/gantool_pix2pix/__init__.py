"""gantool-pix2pix: paired image-to-image translation (pix2pix: U-Net generator, PatchGAN critic, GAN + L1).

The plugin's cheap side, imported on every CLI start through the ``gantool`` entry point: the task card
only, no torch. The heavy side is :mod:`gantool_pix2pix.task`, named by the card's ``implementation``.

``translate`` is shared with CycleGAN: the verb takes both tasks' options, and the model file's
``gantool.task`` metadata decides which task runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from gantool import TaskSpec, hookimpl
from gantool.cli.eval import DeviceOption, JsonOption, ModelOption
from gantool_pix2pix.options import Pix2PixTrainOptions, TranslateOptions

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
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``pix2pix`` task card."""
    register(SPEC)


@hookimpl
def gantool_register_commands(app: typer.Typer) -> None:
    """Add ``gantool eval pix2pix``: L1, PSNR and SSIM of translations against the held-out targets."""
    from gantool.cli.eval import eval_app, run_eval

    @eval_app(app).command("pix2pix")
    def eval_pix2pix(
        data: Annotated[Path, typer.Option("--data", help="Paired folder (A|B side by side, or A/ and B/); "
                                           "its test/ split when it has one.")],
        model: ModelOption,
        size: Annotated[int | None, typer.Option("--size", help="Square side pairs are resized to (default: "
                                                 "the model's training crop; 0: as stored).", min=0)] = None,
        device: DeviceOption = "auto",
        as_json: JsonOption = False,
    ) -> None:
        """Per pair and mean: L1, PSNR and SSIM of the model's translation of A against B."""
        run_eval("gantool_pix2pix.evaluate", model, data, as_json=as_json, title=f"pix2pix on {data}",
                 size=size, device=device)
