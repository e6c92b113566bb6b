"""Benchmark evaluation for ``superres``: PSNR/SSIM on Set5/Set14-style folders, model next to bicubic.

Layout of a benchmark folder (the usual Set5/Set14/B100/Urban100 packaging)::

    DATA/HR/name.png                  ground truth
    DATA/LR_bicubic/X4/name.png       optional MATLAB-made inputs; made with imresize when absent

The protocol of the papers: HR is cropped to a multiple of the scale, the LR input is
``imresize(HR, 1/s)`` rounded to 8 bits, outputs are rounded to 8 bits, and PSNR/SSIM are measured on Y
with ``s`` border pixels removed. The bicubic baseline is MATLAB-style ``imresize(LR, s)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gantool.errors import InputError, UsageError
from gantool.lib.metrics import MEAN_ROW, Column, mean_row, print_table, rows_as_json, to_8bit
from gantool_superres.metrics import psnr_y, ssim_y
from gantool_superres.resize import imresize

__all__ = ["MEAN_ROW", "EvalRow", "evaluate", "print_rows", "rows_as_json"]


@dataclass
class EvalRow:
    """Scores of one image (or of the mean row): bicubic always, the model when one was given."""

    image: str
    bicubic_psnr: float
    bicubic_ssim: float
    model_psnr: float | None = None
    model_ssim: float | None = None


def _load(model: str | Path, device: torch.device) -> tuple[Any, nn.Module, int]:
    """(task, generator, scale) from a model file, via the engine's loader."""
    from gantool.engine.export import load_model
    from gantool_superres import SPEC

    loaded = load_model(Path(model), SPEC, device=device)
    return loaded.task, loaded.networks["generator"], int(loaded.task.scale)


def _read(path: Path) -> Tensor:
    from gantool.lib.data import load_image

    return load_image(path)[None]  # (1, 3, H, W), gray repeated to RGB


def evaluate(
    model: str | Path | Mapping[str, nn.Module] | nn.Module | None,
    data_dir: str | Path,
    scale: int | None = None,
    *,
    device: str | torch.device = "cpu",
    tile: int = 0,
) -> list[EvalRow]:
    """Score a super-resolution model and bicubic on every image of a benchmark folder.

    Args:
        model: A model file (path), a networks dict with ``"generator"``, a generator module, or ``None``
            for bicubic only. Modules are used as they are (put them in eval mode and on ``device``).
        data_dir: Folder with ``HR/`` and optionally ``LR_bicubic/X{scale}/``.
        scale: 2, 3 or 4; default: the model file's scale (4 without a file).
        device: Where the model runs (``auto`` picks CUDA/MPS when available).
        tile: Run the model in tiles of this many input pixels (0: whole images).

    Returns:
        One row per image (sorted by name), then a ``"mean"`` row.

    Raises:
        InputError: ``HR/`` is missing or empty, or an LR file has the wrong size.
        UsageError: ``scale`` disagrees with the model file's.
    """
    from gantool.engine.runtime import resolve_device, tune_cpu_allocator

    torch_device = resolve_device(str(device)) if isinstance(device, str) else device
    tune_cpu_allocator()  # large CPU tensors otherwise spend much of their time in page faults
    generator: nn.Module | None = None
    if isinstance(model, str | Path):
        _, generator, model_scale = _load(model, torch_device)
        if scale is not None and scale != model_scale:
            raise UsageError(f"model '{model}' upscales x{model_scale}, but --scale {scale} was asked for")
        scale = model_scale
    elif isinstance(model, Mapping):
        generator = model["generator"]
    elif isinstance(model, nn.Module):
        generator = model
    scale = 4 if scale is None else int(scale)
    if scale not in (2, 3, 4):
        raise UsageError(f"--scale must be 2, 3 or 4, got {scale}")

    data_dir = Path(data_dir)
    from gantool.lib.data import list_images

    hr_paths = list_images(data_dir / "HR") if (data_dir / "HR").is_dir() else []
    if not hr_paths:
        raise InputError(f"no images in '{data_dir / 'HR'}': expected a benchmark folder with HR/ "
                         f"(and optionally LR_bicubic/X{scale}/)")
    lr_dir = data_dir / "LR_bicubic" / f"X{scale}"
    rows = []
    for hr_path in hr_paths:
        hr = _read(hr_path)
        height, width = hr.shape[-2:]
        hr = hr[..., : height - height % scale, : width - width % scale]
        lr = _lr_for(hr_path, lr_dir, hr, scale)
        bicubic = imresize(lr.double(), float(scale), quantize=255)  # MATLAB on uint8: rounds each pass
        row = EvalRow(hr_path.stem, float(psnr_y(bicubic, hr, scale)), float(ssim_y(bicubic, hr, scale)))
        if generator is not None:
            sr = to_8bit(_run(generator, lr, scale, torch_device, tile))
            row.model_psnr, row.model_ssim = float(psnr_y(sr, hr, scale)), float(ssim_y(sr, hr, scale))
        rows.append(row)
    rows.append(mean_row(rows))
    return rows


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
                          device=device)
    return out.cpu().clamp(0, 1)


_COLUMNS = [Column("bicubic PSNR", "bicubic_psnr"), Column("bicubic SSIM", "bicubic_ssim", ".4f"),
            Column("model PSNR", "model_psnr"), Column("model SSIM", "model_ssim", ".4f")]


def print_rows(rows: list[EvalRow], *, title: str = "superres") -> None:
    """A rich table on stdout: image, bicubic PSNR/SSIM, model PSNR/SSIM (when measured)."""
    print_table(rows, _COLUMNS, title=title)
