"""gantool-cyclegan: unpaired image-to-image translation (CycleGAN, Zhu et al. 2017).

The cheap side, imported on every CLI start through the ``gantool`` entry point: the task card only, no
torch. ``gantool train cyclegan --data horse2zebra`` trains both directions at once from ``trainA/`` and
``trainB/`` folders; ``gantool translate IMAGES --model M.safetensors [--direction BtoA]`` runs one of the
two generators. pix2pix shares the ``translate`` verb: the model file's ``gantool.task`` says which runs.
The heavy side is :mod:`gantool_cyclegan.task`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer  # already loaded by the CLI; needed at module level because Typer resolves the annotations

from gantool import TaskSpec, hookimpl
from gantool.cli.eval import DeviceOption, JsonOption, ModelOption
from gantool_cyclegan.options import CycleGANTrainOptions, TranslateOptions

__version__ = "0.1.0"

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
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the ``cyclegan`` task card."""
    register(SPEC)


@hookimpl
def gantool_register_commands(app: typer.Typer) -> None:
    """Add ``gantool eval cyclegan``: cycle consistency and amount of change on testA/ and testB/."""
    from gantool.cli.eval import eval_app, run_eval

    @eval_app(app).command("cyclegan")
    def eval_cyclegan(
        data: Annotated[Path, typer.Option("--data", help="CycleGAN dataset folder with testA/ and testB/ "
                                           "(or A/ and B/).")],
        model: ModelOption,
        size: Annotated[int, typer.Option("--size", help="Resize images to this square side first (0: as "
                                          "stored).", min=0)] = 0,
        device: DeviceOption = "auto",
        as_json: JsonOption = False,
    ) -> None:
        """Per test image and mean: cycle PSNR and how much the translation changes the image, both ways."""
        run_eval("gantool_cyclegan.evaluate", model, data, as_json=as_json, title=f"cyclegan on {data}",
                 size=size, device=device)
