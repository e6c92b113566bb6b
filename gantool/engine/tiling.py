"""Tiled inference for fully convolutional image networks, independent of any task.

A generator that fits in memory may still run out of it on a large image, because activations grow with
the pixel count. Running it tile by tile bounds memory by the tile size. Tiles overlap and are blended
with a feathered window so that no seam shows: each tile's output is weighted 0 in a margin of
``overlap // 4`` input pixels along its inner borders (where zero padding makes it wrong), then ramps up
with a raised cosine to 1, and stays 1 along the image's outer border (so edges are not darkened). The
weighted sum is divided by the sum of weights. For a network whose receptive radius is at most
``overlap // 4`` input pixels the tiled result equals the untiled one up to float rounding; beyond that,
the blend hides the (small) differences.

A task with several aligned inputs (an image and its mask) is tiled in lockstep: ``image`` may be a dict
of ``(B, C_i, H, W)`` tensors, every one is sliced with the same window, and ``fn`` gets the dict of slices.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from gantool.engine.progress import tile_done
from gantool.errors import GantoolError

logger = logging.getLogger(__name__)

class TilingOutOfMemoryError(GantoolError):
    """Even the smallest tile ran out of memory, so tiled inference gave up."""


#: What a tiled function takes: one ``(B, C, H, W)`` tensor, or a dict of aligned ones (same B, H, W).
Inputs = Tensor | Mapping[str, Tensor]

#: A tile: one side for both axes, or ``(height, width)`` planned per axis (0: no tiling).
TileSize = int | tuple[int, int]


def tile_sides(tile: TileSize) -> tuple[int, int]:
    """``(height, width)`` of a tile given as one side or as a pair."""
    return (tile, tile) if isinstance(tile, int) else (int(tile[0]), int(tile[1]))


def _reference(image: Tensor | Mapping[str, Tensor]) -> Tensor:
    """The tensor whose batch, size, device and dtype stand for all inputs; checks that they align."""
    if isinstance(image, Tensor):
        tensors = {"image": image}
    elif isinstance(image, Mapping) and image and all(isinstance(t, Tensor) for t in image.values()):
        tensors = dict(image)
    else:
        raise ValueError(f"tiled_apply expects a tensor or a non-empty dict of tensors, got {type(image).__name__}")
    first = next(iter(tensors.values()))
    for name, tensor in tensors.items():
        if tensor.ndim != 4:
            raise ValueError(f"tiled_apply expects (B, C, H, W) inputs, got {name} of shape {tuple(tensor.shape)}")
        if (tensor.shape[0], *tensor.shape[-2:]) != (first.shape[0], *first.shape[-2:]) or (
                tensor.device != first.device):
            shapes = ", ".join(f"{n} {tuple(t.shape)} on {t.device}" for n, t in tensors.items())
            raise ValueError(f"tiled_apply needs aligned inputs (same batch, height, width, device); got {shapes}")
    return first


def _each(image: Inputs, fn: Callable[[Tensor], Tensor]) -> Inputs:
    """``fn`` applied to the tensor, or to every tensor of the dict."""
    if isinstance(image, Tensor):
        return fn(image)
    return {name: fn(tensor) for name, tensor in image.items()}


def tiled_apply(
    fn: Callable[[Any], Tensor],
    image: Inputs,
    *,
    scale: int = 1,
    tile: TileSize = 0,
    overlap: int = 16,
    device: torch.device | str | None = None,
    out_dtype: torch.dtype | None = None,
) -> Tensor:
    """Apply a fully convolutional ``fn`` to ``image`` tile by tile and blend the tiles seamlessly.

    Runs under ``torch.no_grad()``: it is meant for inference, and a graph over every tile would defeat
    the memory saving. Only one tile's input and output live on ``device`` at a time; the blend is
    accumulated in float32 on ``image.device`` (so a huge image may stay in CPU RAM while ``fn`` runs on
    a GPU).

    Args:
        fn: Maps ``(B, C, h, w)`` to ``(B, C', h * scale, w * scale)`` for any ``h, w`` (or a dict of such
            slices, when ``image`` is a dict).
        image: ``(B, C, H, W)`` floating-point batch; every tile keeps the whole batch. Or a dict of such
            tensors with the same ``B, H, W`` (channels may differ), all sliced with the same windows.
        scale: Integer upscaling factor of ``fn``.
        tile: Tile side in input pixels, or ``(height, width)``; 0 (or a tile covering the image) means one
            call on the whole image. An axis the tile covers is not split.
        overlap: Minimum overlap between neighbouring tiles in input pixels; must be smaller than the tile
            along every axis that is split.
        device: Where ``fn`` runs; tiles are moved there one by one. Defaults to ``image.device``.
        out_dtype: Dtype of the result; defaults to ``image.dtype``.

    Returns:
        ``(B, C', H * scale, W * scale)`` tensor on ``image.device``.

    Raises:
        ValueError: On a malformed image or arguments, or when ``fn`` returns the wrong shape.
    """
    reference = _reference(image)
    tile_h, tile_w = tile_sides(tile)
    if scale < 1 or min(tile_h, tile_w) < 0 or overlap < 0 or (tile_h == 0) != (tile_w == 0):
        raise ValueError(f"need scale >= 1, tile >= 0 on both axes (or 0), overlap >= 0; got {scale=}, {tile=}, "
                         f"{overlap=}")
    home = reference.device
    device = home if device is None else torch.device(device)
    out_dtype = reference.dtype if out_dtype is None else out_dtype
    height, width = reference.shape[-2:]
    with torch.no_grad():
        if tile_h == 0 or (height <= tile_h and width <= tile_w):
            out = fn(_each(image, lambda t: t.to(device)))
            _check_output(out, reference, height, width, scale)
            tile_done(1, 1)
            return out.to(home, out_dtype)
        if any(overlap >= side for side, length in ((tile_h, height), (tile_w, width)) if length > side):
            raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
        th, tw = min(tile_h, height), min(tile_w, width)
        ys, xs = _tile_starts(height, tile_h, overlap), _tile_starts(width, tile_w, overlap)
        wys = [_window(y, th, height, scale, overlap).to(home) for y in ys]
        wxs = [_window(x, tw, width, scale, overlap).to(home) for x in xs]
        acc: Tensor | None = None
        done = 0
        for y, wy in zip(ys, wys, strict=True):
            for x, wx in zip(xs, wxs, strict=True):
                part = _each(image, _window_of(y, x, th, tw, device))
                out = fn(part)
                _check_output(out, reference, th, tw, scale)
                done += 1
                tile_done(done, len(ys) * len(xs))
                out = out.to(home, torch.float32)
                if acc is None:
                    shape = (*out.shape[:2], height * scale, width * scale)
                    acc = torch.zeros(shape, dtype=torch.float32, device=home)
                acc[..., y * scale : (y + th) * scale, x * scale : (x + tw) * scale] += out * wy[:, None] * wx
                del out
        assert acc is not None
        # The grid is separable, so the weight sum is the outer product of the 1-D sums: no (H, W) map.
        wsum_y, wsum_x = _weight_sum(ys, wys, scale), _weight_sum(xs, wxs, scale)
        acc /= wsum_y[:, None] * wsum_x
        return acc.to(out_dtype)


def tiled_apply_with_backoff(
    fn: Callable[[Any], Tensor],
    image: Inputs,
    *,
    scale: int = 1,
    tile: TileSize = 0,
    overlap: int = 16,
    device: torch.device | str | None = None,
    out_dtype: torch.dtype | None = None,
    min_tile: int = 32,
) -> Tensor:
    """Like :func:`tiled_apply`, but on out-of-memory halve the tile and redo the whole image.

    A tile of 0 (whole image) first falls back to half the image on each axis. The overlap is clamped to
    half the tile so that small tiles stay valid. The tile is never made smaller than ``min_tile``; when
    that size fails too, a :class:`TilingOutOfMemoryError` says so. Each new tile size is logged.

    Args:
        fn, image, scale, tile, overlap, device, out_dtype: As for :func:`tiled_apply`.
        min_tile: Smallest tile to try before giving up.

    Returns:
        The result of :func:`tiled_apply` with the first tile size that fit.

    Raises:
        TilingOutOfMemoryError: When even ``min_tile`` runs out of memory (chained to the original error).
    """
    reference = _reference(image)
    height, width = reference.shape[-2:]
    tile_h, tile_w = tile_sides(tile)
    current = (min(tile_h, height), min(tile_w, width)) if tile_h > 0 else (height, width)
    while True:
        try:
            whole = current[0] >= height and current[1] >= width
            return tiled_apply(
                fn,
                image,
                scale=scale,
                tile=0 if whole else current,
                overlap=min(overlap, min(current) // 2),
                device=device,
                out_dtype=out_dtype,
            )
        except Exception as err:  # anything but an OOM is re-raised untouched
            if not is_out_of_memory(err):
                raise
            if max(current) <= min_tile:
                raise TilingOutOfMemoryError(
                    f"Out of memory even with {current[0]}x{current[1]}px tiles (image {tuple(reference.shape)}, "
                    f"scale {scale}, "
                    f"device {device or reference.device}). Free memory on that device, run on another one "
                    f"(e.g. the CPU), or use a smaller model."
                ) from err
        # Retry outside the except block, so the traceback (and the tensors its frames hold) is freed first.
        _empty_cuda_cache()
        current = (max(current[0] // 2, min_tile), max(current[1] // 2, min_tile))
        logger.warning("Out of memory during tiled inference; retrying with %dx%dpx tiles", *current)


_OOM_MESSAGES = ("out of memory", "can't allocate memory")  # CUDA/MPS wording, the CPU allocator's


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` says memory ran out: CUDA's error type, or a RuntimeError worded so (CPU, MPS)."""
    if isinstance(err, torch.OutOfMemoryError | MemoryError):
        return True
    return isinstance(err, RuntimeError) and any(text in str(err) for text in _OOM_MESSAGES)


def _window_of(y: int, x: int, height: int, width: int, device: torch.device) -> Callable[[Tensor], Tensor]:
    """Cuts the same window out of every input (lockstep) and moves it to ``device``."""
    return lambda tensor: tensor[..., y : y + height, x : x + width].to(device)


def _tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread tile starts: first at 0, last flush with the far edge, neighbours overlap >= overlap."""
    if size <= tile:
        return [0]
    count = math.ceil((size - overlap) / (tile - overlap))
    return [i * (size - tile) // (count - 1) for i in range(count)]


def _window(start: int, length: int, size: int, scale: int, overlap: int) -> Tensor:
    """1-D blending weights (output pixels) of a tile: 0 near inner borders, raised cosine, 1 elsewhere."""
    n = length * scale
    margin = (overlap // 4) * scale
    ramp = overlap * scale - 2 * margin
    dist = torch.arange(n, dtype=torch.float32)

    def rise(d: Tensor) -> Tensor:
        if ramp <= 0:
            return (d >= margin).float()
        t = ((d + 0.5 - margin) / ramp).clamp(0.0, 1.0)
        return 0.5 - 0.5 * torch.cos(math.pi * t)

    w = torch.ones(n)
    if start > 0:
        w = w * rise(dist)
    if start + length < size:
        w = w * rise(n - 1 - dist)
    return w


def _weight_sum(starts: list[int], windows: list[Tensor], scale: int) -> Tensor:
    # The last tile is flush with the far edge, so it tells the full length.
    total = torch.zeros(starts[-1] * scale + len(windows[-1]), device=windows[0].device)
    for start, w in zip(starts, windows, strict=True):
        total[start * scale : start * scale + len(w)] += w
    return total


def _check_output(out: Tensor, reference: Tensor, h: int, w: int, scale: int) -> None:
    expected = (reference.shape[0], h * scale, w * scale)
    if not isinstance(out, Tensor) or out.ndim != 4 or (out.shape[0], *out.shape[-2:]) != expected:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ValueError(
            f"fn mapped a {(reference.shape[0], reference.shape[1], h, w)} input to {shape}; expected "
            f"({expected[0]}, C', {expected[1]}, {expected[2]}). Is scale={scale} right?"
        )


def _empty_cuda_cache() -> None:
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
