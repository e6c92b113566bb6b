"""gantool-sharpen: a small third-party gantool plugin that learns to undo Gaussian blur.

This module is the plugin's cheap side. gantool imports it on every CLI start (through the ``gantool``
entry point in ``pyproject.toml``) just to read the task card, so it must not import torch, kornia or
the networks: those live in ``gantool_sharpen.task`` and are imported only when a command runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gantool import TaskSpec, hookimpl
from gantool.settings import flag

__version__ = "0.1.0"


@dataclass(kw_only=True)
class SharpenOptions:
    """Inference flags of ``gantool sharpen`` (each field becomes a ``--flag``)."""

    strength: float = flag(1.0, "Blend between input (0) and full sharpening (1).", min=0.0)


@dataclass(kw_only=True)
class SharpenTrainOptions:
    """Flags of ``gantool train sharpen``.

    ``width`` and ``blocks`` shape the generator; they are saved in the exported model and read back at
    inference, so changing their defaults would change how old models load: don't.
    """

    width: int = flag(32, "Feature channels of the generator.", min=4, panel="Architecture")
    blocks: int = flag(4, "Residual blocks of the generator.", min=1, panel="Architecture")
    critic_width: int = flag(32, "Feature channels of the first critic layer.", min=4, panel="Architecture")
    crop: int = flag(96, "Side of the square training crops, in pixels.", min=16, panel="Data")
    blur_min: float = flag(0.5, "Smallest Gaussian blur sigma applied to training crops.", min=0.1, panel="Data")
    blur_max: float = flag(2.0, "Largest Gaussian blur sigma applied to training crops.", min=0.1, panel="Data")
    lr: float = flag(2e-4, "Learning rate of the generator and the critic.", panel="Optimisation")
    l1_weight: float = flag(1.0, "Weight of the L1 loss to the sharp original.", min=0.0, panel="Losses")
    adversarial_weight: float = flag(0.01, "Weight of the adversarial loss.", min=0.0, panel="Losses")


SPEC = TaskSpec(
    name="sharpen",
    verb="sharpen",
    summary="Sharpen blurry photos with a small residual GAN (example plugin).",
    implementation="gantool_sharpen.task:Sharpen",
    infer_options=SharpenOptions,
    train_options=SharpenTrainOptions,
    scale=1,
    inference_networks=("generator",),
)


@hookimpl
def gantool_register_tasks(register: Callable[[TaskSpec], None]) -> None:
    """Hand gantool the task card; nothing heavy happens here."""
    register(SPEC)
