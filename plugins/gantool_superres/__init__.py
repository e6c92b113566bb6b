"""gantool-superres: single-image super-resolution (SRResNet/SRGAN, RRDB/ESRGAN and a compact CPU network).

This is the plugin's cheap side, imported on every CLI start through the ``gantool`` entry point: it builds
the task card and the ``gantool eval superres`` command and imports neither torch nor the networks. The
heavy side is :mod:`gantool_superres.task`, named by the card's ``implementation`` string.

Inference note: the card's ``scale`` (4) is only the default; a model file's ``gantool.scale`` metadata
carries the scale it was trained for (2, 3 or 4), and the rebuilt task reads it from the stored options.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer  # already loaded by the CLI; needed at module level because Typer resolves the annotations

from gantool import TaskSpec, hookimpl
from gantool.cli.eval import DeviceOption, JsonOption
from gantool_superres.options import SuperResTrainOptions, UpscaleOptions

__version__ = "0.1.0"

SPEC = TaskSpec(
    name="superres",
    verb="upscale",
    summary="Upscale photos 2x, 3x or 4x with a super-resolution GAN (compact, SRResNet or RRDB generator).",
    implementation="gantool_superres.task:SuperResolution",
    infer_options=UpscaleOptions,
    train_options=SuperResTrainOptions,
    scale=4,
    default_weights="superres-x{scale}",
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``superres`` task card."""
    register(SPEC)


@hookimpl
def gantool_register_commands(app: typer.Typer) -> None:
    """Add ``gantool eval superres``: PSNR/SSIM on a Set5/Set14-style folder, model next to bicubic.

    ``eval`` is a sub-app shared with other plugins through :func:`gantool.evalcmd.eval_app`, so that each
    can add its own ``gantool eval TASK``.
    """
    from gantool.cli.eval import eval_app, run_eval

    @eval_app(app).command("superres")
    def eval_superres(
        data: Annotated[Path, typer.Option("--data", help="Benchmark folder with HR/ and optionally "
                                           "LR_bicubic/X{scale}/ (Set5/Set14 layout).")],
        scale: Annotated[int | None, typer.Option("--scale", help="2, 3 or 4 (default: the model's scale, "
                                                  "or 4 without --model).")] = None,
        model: Annotated[str | None, typer.Option("--model", "-m", help="Model name or .safetensors path; "
                                                  "without it only bicubic is measured.")] = None,
        device: DeviceOption = "auto",
        tile: Annotated[int, typer.Option("--tile", help="Tile size in input pixels (0: whole images).",
                                          min=0)] = 0,
        as_json: JsonOption = False,
    ) -> None:
        """PSNR and SSIM (Y channel, border of SCALE pixels cropped), per image and mean, model vs bicubic."""
        run_eval("gantool_superres.evaluate", model, data, as_json=as_json, title=f"superres on {data}",
                 scale=scale, device=device, tile=tile)
