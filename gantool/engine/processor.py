"""The batch pipeline's ``process`` for image-to-image tasks: gray, alpha, tiling, whole-image statistics.

What happens around ``task.predict``, the same for every task:

- **Gray** (``(H, W, 1)``) inputs are repeated to 3 channels for the network (networks are RGB), and a
  3-channel result is turned back into one channel (Rec. 601 luma), so gray stays gray, unless the task
  sets ``output_gray_for_gray_input = False`` (colourisation).
- **Alpha** never goes through the network (:mod:`gantool.image.alpha`); each input's ``alpha`` policy
  (:class:`~gantool.plugin.spec.InputSpec`) says whether it is filled and re-attached (``keep``), ignored
  (``drop``) or becomes the task's mask input (``as-mask``).
- **Several inputs** (an image and its mask): ``predict`` gets a dict of tensors keyed by input name, all
  tiled in lockstep (:func:`network_inputs`).
- **Tiling**: ``predict`` runs tile by tile, ``postprocess`` once on the stitched image; the tile comes
  from a :class:`~gantool.engine.tileplan.TilePlan`; out-of-memory halves the tile and retries.
- **Instance norm** in a tiled run uses statistics measured once on the whole image
  (:mod:`gantool.engine.normstats`), so tiles do not differ in tone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from gantool.engine.normstats import whole_image_norm_statistics
from gantool.engine.runtime import Runtime, tune_cpu_allocator
from gantool.engine.tileplan import TilePlan, plan_tiles
from gantool.engine.tiling import tile_sides, tiled_apply_with_backoff
from gantool.errors import InputError
from gantool.image.alpha import fill_transparent, resize_alpha
from gantool.image.color import LUMA
from gantool.image.io import Image
from gantool.image.limits import check_aspect, check_work_size
from gantool.image.tensor import hwc_array, to_tensor
from gantool.plugin.spec import InputSpec, mask_input

if TYPE_CHECKING:
    from gantool.plugin.task import Task



def make_processor(task: Task, networks: Mapping[str, nn.Module], task_options: Any, *, scale: int,
                   tile: int | None | TilePlan, overlap: int, runtime: Runtime,
                   inputs: Sequence[InputSpec] | None = None) -> Callable[..., Image]:
    """The batch pipeline's ``process``: one decoded image in, one result image out (CPU arrays).

    The networks must already be on ``runtime.device`` in eval mode and in the runtime's memory format
    (:func:`prepare_networks`; ``load_model`` + ``_load`` do that). ``tile`` is :func:`resolve_tile`'s
    answer (``None`` for auto, which measures the network once here) or a ready :class:`TilePlan`.

    ``inputs`` are the task's named inputs (default: ``task.spec.inputs``, or one RGB image). With one,
    ``process(image)`` hands ``predict`` one ``(1, 3, H, W)`` tensor, as always. With several, it is
    ``process(image, companions)`` (``companions``: the other inputs' images by name, each of the image's
    size) and ``predict`` gets a dict of ``(1, C, H, W)`` tensors keyed by input name, tiled in lockstep.
    """
    specs = tuple(inputs) if inputs is not None else task_inputs(task)
    primary, several = specs[0], len(specs) > 1
    masks = {spec.name for spec in specs[1:] if spec.channels == 1}  # shrunk so holes survive (normstats)
    keep_gray = bool(getattr(task, "output_gray_for_gray_input", True))
    tileable = bool(getattr(task, "tileable", True))  # False: predict sees the whole image (pix2pix, colorize)
    postprocess = getattr(task, "postprocess", None)
    nets = dict(networks)
    on_accelerator = runtime.device.type != "cpu"
    if not on_accelerator:
        tune_cpu_allocator()  # Runtime.from_options did it already; a hand-built Runtime did not

    def on_tile(x: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        # The tile stays NCHW: channels_last weights make each conv compute in channels_last anyway (PyTorch
        # picks it when input or weight has it), and ops on the image itself, such as a bicubic skip, are
        # faster in NCHW (146 vs 216 ms from 512 to 2048 pixels; the compact x4 model gained 2-5% overall).
        x = x.contiguous() if isinstance(x, torch.Tensor) else {k: v.contiguous() for k, v in x.items()}
        with runtime.autocast():
            y = task.predict(nets, x, task_options)
        if on_accelerator:  # what hwc_array would do on the host copy, here where it costs ~nothing
            return y.float().nan_to_num_(nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0)
        return y.float()

    def probe(x: torch.Tensor) -> torch.Tensor:  # --tile auto measures on an RGB probe: give each input one
        return on_tile({spec.name: x[:, : spec.channels] for spec in specs}) if several else on_tile(x)

    plan = tile if isinstance(tile, TilePlan) else plan_tiles(tile, probe, scale=scale, runtime=runtime)

    def process(image: Image, companions: Mapping[str, Image] | None = None) -> Image:
        size = (image.height, image.width)
        check_aspect(*size)  # before anything is allocated: a 3 x 100000 strip or a x4 output past the limit
        check_work_size(size[0] * scale, size[1] * scale, what=f"the x{scale} output")
        tile = plan.tile_for(*size, scale=scale, overlap=overlap) if tileable else 0
        if several:
            x: torch.Tensor | dict[str, torch.Tensor] = network_inputs(image, companions or {}, specs)
        else:
            x = network_input(image) if primary.alpha == "keep" else to_tensor(image.rgb())
        with torch.inference_mode():
            tile_h, tile_w = tile_sides(tile)
            tiled = tile_h > 0 and (tile_h < size[0] or tile_w < size[1])
            statistics = (whole_image_norm_statistics(nets, lambda small: on_tile(_to_device(small, runtime)), x,
                                                      max_side=max(tile_h, tile_w), masks=masks)
                          if tiled else contextlib.nullcontext())
            with statistics:  # instance norm: one set of statistics for all tiles of the image
                y = tiled_apply_with_backoff(on_tile, x, scale=scale, tile=tile, overlap=overlap,
                                             device=runtime.device, out_dtype=torch.float32)
            del x
            if postprocess is not None:
                y = postprocess(y, size, task_options)
            # A view of y, not a copy. One clean pass on the accelerator is the clean result (a tiled one is a
            # blend, clean but for rounding; a postprocess may make anything): then hwc_array skips its pass.
            color = hwc_array(y, clean=on_accelerator and not tiled and postprocess is None)
        if image.is_gray and keep_gray and color.shape[2] == 3:
            color = (color @ LUMA)[..., None]
        # "drop" gives an opaque output, and so does "as-mask" when the alpha was the mask
        alpha = image.alpha if primary.alpha == "keep" or (primary.alpha == "as-mask" and _mask_given(
            specs, companions)) else None
        return Image(color, resize_alpha(alpha, color.shape[:2]), image.bit_depth)

    return process


def task_inputs(task: Any) -> tuple[InputSpec, ...]:
    """The task's declared inputs; one RGB ``image`` for a task object without a card (tests, benchmarks)."""
    declared = getattr(getattr(task, "spec", None), "inputs", None)
    return tuple(declared) if declared else (InputSpec("image"),)


def network_input(image: Image) -> torch.Tensor:
    """``(1, 3, H, W)`` RGB for the network: gray repeated, fully transparent pixels filled from visible ones."""
    x = to_tensor(image.rgb())
    if image.alpha is not None:
        with torch.inference_mode():
            x = fill_transparent(x, to_tensor(image.alpha))
    return x


def network_inputs(image: Image, companions: Mapping[str, Image],
                   specs: Sequence[InputSpec]) -> dict[str, torch.Tensor]:
    """A multi-input task's tensors by input name, each ``(1, C, H, W)`` with ``C`` from its spec.

    The primary image's alpha fills the task's mask input when no file was given for it and the image
    says ``alpha="as-mask"`` (``1 - alpha``: transparent = 1 = hole). A required input that is still
    missing, or a companion of another size than the image, raises ``InputError`` (that item fails).
    """
    primary, *others = specs
    found = {primary.name: input_tensor(image, primary)}
    mask = mask_input(tuple(specs))
    for spec in others:
        source = companions.get(spec.name)
        if source is None:
            if spec is mask and image.alpha is not None:
                found[spec.name] = 1.0 - to_tensor(image.alpha)
            elif spec.required:
                hint = ", or an image with transparent areas" if spec is mask else ""
                raise InputError(f"no {spec.name} for this image (pass --{spec.name} FILE|DIR|GLOB{hint})")
            continue
        if (source.height, source.width) != (image.height, image.width) and spec.resize == "nearest":
            source = source.resized_nearest(image.height, image.width)
        if (source.height, source.width) != (image.height, image.width):
            raise InputError(f"the {spec.name} is {source.width}x{source.height} pixels but the image is "
                             f"{image.width}x{image.height}; they must match")
        found[spec.name] = input_tensor(source, spec)
    return found


def _is_flat(color: Any) -> bool:
    """Whether every pixel of ``color`` (an ``(H, W, C)`` array) has the same value."""
    return bool((color == color[:1, :1]).all())


def _mask_given(specs: Sequence[InputSpec], companions: Mapping[str, Image] | None) -> bool:
    mask = mask_input(tuple(specs))
    return mask is not None and companions is not None and companions.get(mask.name) is not None


def input_tensor(image: Image, spec: InputSpec) -> torch.Tensor:
    """One input as its spec wants it: ``(1, 3, H, W)`` RGB (gray repeated) or ``(1, 1, H, W)`` (RGB reduced
    to Rec. 601 luma); transparent pixels filled from visible ones unless the spec drops alpha.

    A one-channel input drawn as a painted layer (strokes in the alpha channel over one flat colour, as image
    editors and IOPaint's brush save masks) is its alpha: the paint is the signal, its flat colour means
    nothing. (Flat colour and flat alpha: the colour's luma, as for any other file.)
    """
    if spec.channels == 1 and image.alpha is not None and _is_flat(image.color) and not _is_flat(image.alpha):
        return to_tensor(image.alpha)
    if spec.channels == 3:
        x = to_tensor(image.rgb())
    else:
        x = to_tensor(image.color if image.is_gray else (image.color @ LUMA)[..., None])
    if image.alpha is not None and spec.alpha != "drop":
        with torch.inference_mode():
            x = fill_transparent(x, to_tensor(image.alpha))
    return x


def _to_device(x: torch.Tensor | Mapping[str, torch.Tensor], runtime: Runtime) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(runtime.device)
    return {name: tensor.to(runtime.device) for name, tensor in x.items()}


def prepare_networks(networks: Mapping[str, nn.Module], runtime: Runtime) -> dict[str, nn.Module]:
    """Networks as inference runs them: on the device, in its memory format (channels_last on the CPU and
    CUDA), compiled with ``--compile``. Benchmarks use this too, so they time the real path."""
    return {name: runtime.maybe_compile(runtime.prepare_module(net, training=False))
            for name, net in networks.items()}
