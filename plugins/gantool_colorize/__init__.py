"""gantool-colorize: colourise gray photos with a conditional GAN in Lab space (L in, ab out).

The plugin's cheap side, imported on every CLI start through the ``gantool`` entry point: the task card
and the ``gantool eval colorize`` command, no torch. The heavy side is :mod:`gantool_colorize.task`; the
networks and the training step are pix2pix's (:mod:`gantool.cgan`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer  # already loaded by the CLI; needed at module level because Typer resolves the annotations

from gantool import TaskSpec, hookimpl
from gantool.cli.eval import DeviceOption, JsonOption, ModelOption
from gantool_colorize.options import ColorizeOptions, ColorizeTrainOptions

__version__ = "0.1.0"

DEFAULT_MODEL = "colorize"

SPEC = TaskSpec(
    name="colorize",
    verb="colorize",
    summary="Colourise gray photos (Lab-space pix2pix): colour at the original resolution, alpha and 16-bit kept.",
    implementation="gantool_colorize.task:Colorize",
    infer_options=ColorizeOptions,
    train_options=ColorizeTrainOptions,
    scale=1,
    default_weights=DEFAULT_MODEL,
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``colorize`` task card."""
    register(SPEC)


@hookimpl
def gantool_register_commands(app: typer.Typer) -> None:
    """Add ``gantool eval colorize``: RGB PSNR/SSIM and colourfulness, model next to the gray baseline."""
    from gantool.cli.eval import eval_app, run_eval

    @eval_app(app).command("colorize")
    def eval_colorize(
        data: Annotated[Path, typer.Option("--data", help="Folder of colour photos (e.g. Kodak24); each is "
                                           "made gray, colourised and compared with the original.")],
        model: ModelOption = DEFAULT_MODEL,
        render_size: Annotated[int | None, typer.Option("--render-size", help="Working size of the network "
                                                        "(shorter side; default: the model's training size).",
                                                        min=16)] = None,
        device: DeviceOption = "auto",
        as_json: JsonOption = False,
    ) -> None:
        """Per image and mean: PSNR and SSIM (RGB) of the result and of the gray input, and colourfulness."""
        run_eval("gantool_colorize.evaluate", model, data, as_json=as_json, title=f"colorize on {data}",
                 render_size=render_size, device=device)
