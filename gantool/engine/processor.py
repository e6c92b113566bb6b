"""The batch pipeline's ``process`` for image-to-image tasks: gray, alpha, tiling, whole-image statistics.

What happens around ``task.predict``, the same for every task:

- **Gray** (``(H, W, 1)``) inputs are repeated to 3 channels for the network (networks are RGB), and a
  3-channel result is turned back into one channel (Rec. 601 luma), so gray stays gray, unless the task
  sets ``output_gray_for_gray_input = False`` (colourisation).
- **Alpha** never goes through the network (:mod:`gantool.image.alpha`).
- **Tiling**: ``predict`` runs tile by tile, ``postprocess`` once on the stitched image; the tile comes
  from a :class:`~gantool.engine.tileplan.TilePlan`; out-of-memory halves the tile and retries.
- **Instance norm** in a tiled run uses statistics measured once on the whole image
  (:mod:`gantool.engine.normstats`), so tiles do not differ in tone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gantool.engine.normstats import whole_image_norm_statistics
from gantool.engine.runtime import Runtime, tune_cpu_allocator
from gantool.engine.tileplan import TilePlan, plan_tiles
from gantool.engine.tiling import tiled_apply_with_backoff
from gantool.image.alpha import fill_transparent, resize_alpha
from gantool.image.color import LUMA
from gantool.image.io import Image
from gantool.image.tensor import hwc_array, to_tensor

if TYPE_CHECKING:
    from gantool.plugin.task import Task



def make_processor(task: Task, networks: Mapping[str, nn.Module], task_options: Any, *, scale: int,
                   tile: int | None | TilePlan, overlap: int, runtime: Runtime) -> Callable[[Image], Image]:
    """The batch pipeline's ``process``: one decoded image in, one result image out (CPU arrays).

    The networks must already be on ``runtime.device`` in eval mode and in the runtime's memory format
    (:func:`prepare_networks`; ``load_model`` + ``_load`` do that). ``tile`` is :func:`resolve_tile`'s
    answer (``None`` for auto, which measures the network once here) or a ready :class:`TilePlan`.
    """
    keep_gray = bool(getattr(task, "output_gray_for_gray_input", True))
    tileable = bool(getattr(task, "tileable", True))  # False: predict sees the whole image (pix2pix, colorize)
    postprocess = getattr(task, "postprocess", None)
    nets = dict(networks)
    if runtime.device.type == "cpu":
        tune_cpu_allocator()  # Runtime.from_options did it already; a hand-built Runtime did not

    def on_tile(x: torch.Tensor) -> torch.Tensor:
        # The tile stays NCHW: channels_last weights make each conv compute in channels_last anyway (PyTorch
        # picks it when input or weight has it), and ops on the image itself, such as a bicubic skip, are
        # faster in NCHW (146 vs 216 ms from 512 to 2048 pixels; the compact x4 model gained 2-5% overall).
        with runtime.autocast():
            y = task.predict(nets, x.contiguous(), task_options)
        return y.float()

    plan = tile if isinstance(tile, TilePlan) else plan_tiles(tile, on_tile, scale=scale, runtime=runtime)

    def process(image: Image) -> Image:
        size = (image.height, image.width)
        tile_side = plan.tile_for(*size, scale=scale, overlap=overlap) if tileable else 0
        x = network_input(image)
        with torch.inference_mode():
            tiled = 0 < tile_side < max(size)
            statistics = (whole_image_norm_statistics(nets, lambda small: on_tile(small.to(runtime.device)), x,
                                                      max_side=tile_side) if tiled else contextlib.nullcontext())
            with statistics:  # instance norm: one set of statistics for all tiles of the image
                y = tiled_apply_with_backoff(on_tile, x, scale=scale, tile=tile_side, overlap=overlap,
                                             device=runtime.device, out_dtype=torch.float32)
            del x
            if postprocess is not None:
                y = postprocess(y, size, task_options)
            color = hwc_array(y)  # a view of y, not a copy
        if image.is_gray and keep_gray and color.shape[2] == 3:
            color = (color @ LUMA)[..., None]
        return Image(color, resize_alpha(image.alpha, color.shape[:2]), image.bit_depth)

    return process


def network_input(image: Image) -> torch.Tensor:
    """``(1, 3, H, W)`` RGB for the network: gray repeated, fully transparent pixels filled from visible ones."""
    x = to_tensor(image.rgb())
    if image.alpha is not None:
        with torch.inference_mode():
            x = fill_transparent(x, to_tensor(image.alpha))
    return x


def prepare_networks(networks: Mapping[str, nn.Module], runtime: Runtime) -> dict[str, nn.Module]:
    """Networks as inference runs them: on the device, in its memory format (channels_last on the CPU and
    CUDA), compiled with ``--compile``. Benchmarks use this too, so they time the real path."""
    return {name: runtime.maybe_compile(runtime.prepare_module(net, training=False))
            for name, net in networks.items()}
