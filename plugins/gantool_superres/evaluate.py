"""Benchmark evaluation for ``superres``: PSNR/SSIM on Set5/Set14-style folders, model next to bicubic.

Layout of a benchmark folder (the usual Set5/Set14/B100/Urban100 packaging)::

    DATA/HR/name.png                  ground truth
    DATA/LR_bicubic/X4/name.png       optional MATLAB-made inputs; made with imresize when absent

The protocol of the papers: HR is cropped to a multiple of the scale, the LR input is
``imresize(HR, 1/s)`` rounded to 8 bits, outputs are rounded to 8 bits, and PSNR/SSIM are measured on Y
with ``s`` border pixels removed. The bicubic baseline is MATLAB-style ``imresize(LR, s)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from gantool import EvalColumn, EvalContext, EvalResult
from gantool.errors import InputError, UsageError
from gantool.lib.metrics import mean_row, to_8bit
from gantool_superres.metrics import psnr_y, ssim_y
from gantool_superres.options import EVAL_TILE_OVERLAP, SuperResEvalOptions
from gantool_superres.resize import imresize

if TYPE_CHECKING:
    from gantool_superres.task import SuperResolution

__all__ = ["COLUMNS", "EvalRow", "evaluate_benchmark"]


@dataclass
class EvalRow:
    """Scores of one image (or of the mean row): bicubic always, the model when one was given."""

    image: str
    bicubic_psnr: float
    bicubic_ssim: float
    model_psnr: float | None = None
    model_ssim: float | None = None


COLUMNS = (EvalColumn(name="bicubic_psnr", header="bicubic PSNR"),
           EvalColumn(name="bicubic_ssim", header="bicubic SSIM", format=".4f"),
           EvalColumn(name="model_psnr", header="model PSNR"),
           EvalColumn(name="model_ssim", header="model SSIM", format=".4f"))


def _read(path: Path) -> Tensor:
    from gantool.lib.data import load_image

    return load_image(path)[None]  # (1, 3, H, W), gray repeated to RGB


def evaluate_benchmark(task: SuperResolution, networks: dict[str, nn.Module] | None, data: Path,
                       options: SuperResEvalOptions | None, context: EvalContext) -> EvalResult:
    """Score the generator (when given) and bicubic on every image of a benchmark folder.

    Args:
        task: The task rebuilt from the model file; its scale is the model's.
        networks: ``{"generator": ...}`` on ``context.device`` in eval mode, or ``None`` for bicubic only.
        data: Folder with ``HR/`` and optionally ``LR_bicubic/X{scale}/``.
        options: ``scale`` (default: the model's, 4 without a model) and ``tile`` (0: whole images).
        context: The device, and the model file for messages.

    Returns:
        One row per image (sorted by name), then a ``"mean"`` row.

    Raises:
        InputError: ``HR/`` is missing or empty, or an LR file has the wrong size.
        UsageError: ``options.scale`` disagrees with the model's.
    """
    options = options if options is not None else SuperResEvalOptions()
    scale = options.scale
    generator = None if networks is None else networks["generator"]
    if generator is not None:
        if scale is not None and scale != task.scale:
            model = f"model '{context.model}'" if context.model is not None else "the model"
            raise UsageError(f"{model} upscales x{task.scale}, but --scale {scale} was asked for")
        scale = task.scale
    scale = 4 if scale is None else int(scale)

    from gantool.lib.data import list_images

    hr_paths = list_images(data / "HR") if (data / "HR").is_dir() else []
    if not hr_paths:
        raise InputError(f"no images in '{data / 'HR'}': expected a benchmark folder with HR/ "
                         f"(and optionally LR_bicubic/X{scale}/)")
    lr_dir = data / "LR_bicubic" / f"X{scale}"
    rows = []
    for hr_path in hr_paths:
        hr = _read(hr_path)
        height, width = hr.shape[-2:]
        smallest = -(-(2 * scale + 11) // scale) * scale  # cropped to x{scale} and shaved, SSIM's 11x11 must fit
        if min(height, width) < smallest:
            raise InputError(f"'{hr_path}' is {width}x{height} pixels: too small to score at x{scale} "
                             f"(at least {smallest}x{smallest})")
        hr = hr[..., : height - height % scale, : width - width % scale]
        lr = _lr_for(hr_path, lr_dir, hr, scale)
        bicubic = imresize(lr.double(), float(scale), quantize=255)  # MATLAB on uint8: rounds each pass
        row = EvalRow(hr_path.stem, float(psnr_y(bicubic, hr, scale)), float(ssim_y(bicubic, hr, scale)))
        if generator is not None:
            sr = to_8bit(_run(generator, lr, scale, context.device, options.tile))
            row.model_psnr, row.model_ssim = float(psnr_y(sr, hr, scale)), float(ssim_y(sr, hr, scale))
        rows.append(row)
    return EvalResult(rows=[*rows, mean_row(rows)], columns=COLUMNS)


def _lr_for(hr_path: Path, lr_dir: Path, hr: Tensor, scale: int) -> Tensor:
    """The stored LR file for ``hr_path`` (any supported extension), else MATLAB-style imresize of ``hr``."""
    expected = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    candidates = sorted(lr_dir.glob(f"{hr_path.stem}.*")) if lr_dir.is_dir() else []
    if candidates:
        lr = _read(candidates[0])
        if tuple(lr.shape[-2:]) != expected:
            raise InputError(f"'{candidates[0]}' is {tuple(lr.shape[-2:])}, expected {expected} for x{scale} "
                             f"of '{hr_path}'")
        return lr
    return imresize(hr.double(), 1.0 / scale, quantize=255).float()


def _run(generator: nn.Module, lr: Tensor, scale: int, device: torch.device, tile: int) -> Tensor:
    from gantool.engine.tiling import tiled_apply

    parameter = next(generator.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.float32
    with torch.no_grad():
        out = tiled_apply(lambda x: generator(x.to(dtype)).float(), lr.float(), scale=scale, tile=tile,
                          overlap=EVAL_TILE_OVERLAP, device=device)
    return out.cpu().clamp(0, 1)
