"""Inference for every task: image-to-image verbs through the batch pipeline, and sampling verbs.

Task-agnostic: the engine knows a task only through ``task.predict(networks, image, options)``,
``task.postprocess(output, source_size, options)`` (and ``task.sample(...)`` for ``kind="sample"``) and
``spec.scale``. What it does around that, the same for every task:

- **Gray** (``(H, W, 1)``) inputs are repeated to 3 channels for the network (networks are RGB), and a
  3-channel result is turned back into one channel (Rec. 601 luma, as OpenCV's RGB2GRAY), so gray stays
  gray. A task whose point is to add colour sets ``output_gray_for_gray_input = False`` on its Task class.
- **Alpha** never goes through the network; it is resized to the output size with bicubic interpolation
  (``torch.nn.functional.interpolate``, antialiased only when it shrinks) and clamped to [0, 1]. The
  colour under fully transparent pixels is arbitrary (often black) and a network mixes neighbours, so it
  would darken visible edges ("dark fringes"); those pixels are first given the colour of their visible
  neighbours (:func:`fill_transparent`). Visible pixels reach the network unchanged. OpenCV stays in
  ``gantool.io``.
- **Bit depth** is carried through: 16-bit in, 16-bit out (where the output format stores it).
- **Tiling**: ``predict`` runs tile by tile, ``postprocess`` once on the stitched image. ``--tile auto``
  picks a tile per image from free memory, the network's measured working set and the image's full-size
  buffers (:class:`TilePlan`); an integer is a maximum side, 0 runs whole images. Tiles are spread evenly
  and made no larger than their count needs (:func:`balanced_tile`); out-of-memory halves the tile and
  retries (``tiled_apply_with_backoff``).
- **Instance norm** in a tiled run normalises every tile with statistics measured once on the whole
  image, shrunk to a tile's size (:mod:`gantool.engine.normstats`), so tiles do not differ in tone.
- **Device/precision** come from :class:`~gantool.engine.runtime.Runtime` (fp32 and a tuned allocator on
  the CPU; autocast on CUDA); networks use channels_last where the runtime says it is faster (the CPU and
  CUDA), which makes their convolutions compute in it; image tiles are passed in NCHW.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from gantool.engine.batch import BatchResult, run_batch
from gantool.engine.batchplan import BatchPlan, collect_inputs
from gantool.engine.normstats import whole_image_norm_statistics
from gantool.engine.runtime import Runtime, tune_cpu_allocator
from gantool.engine.tiling import AUTO_TILE_MAX, AUTO_TILE_MIN, MEMORY_FRACTION, tiled_apply_with_backoff
from gantool.engine.tiling import _free_device_bytes as free_device_bytes
from gantool.errors import InputError, PluginError, UsageError
from gantool.imagetensor import to_array, to_tensor
from gantool.io import Image

if TYPE_CHECKING:
    from gantool.settings import InferenceOptions, SampleOptions
    from gantool.spec import TaskSpec
    from gantool.task import Task

logger = logging.getLogger(__name__)

#: Rec. 601 luma weights (OpenCV's RGB2GRAY), used to return a gray input's result as gray.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Images per ``task.sample`` call. Fixed (not device-dependent) so a seed gives the same images anywhere
#: the task's own random draws are reproducible.
SAMPLE_CHUNK = 8
#: Alpha at or below this is fully transparent (0 in an 8-bit file), so the colour stored there is arbitrary.
TRANSPARENT_ALPHA = 0.5 / 255
#: ``--tile auto`` on the CPU plans at most this much per image: its full-size buffers plus a tile's working
#: set. The compact x4 model ran at the same speed per pixel (6.2-6.9 us) with tiles from 192 to 640 pixels,
#: so larger tiles only cost memory. This still runs a 512x512 input whole (no overlap to recompute) and
#: kept a 4096x4096 result of that model at 1.2-1.3 GB of peak RSS, 0.7-0.8 GB of which is torch itself.
CPU_IMAGE_BYTES = 640 << 20
#: The CPU auto tile is not shrunk below this side to stay within CPU_IMAGE_BYTES: smaller tiles recompute
#: too much overlap for the memory they save (a 192-pixel tile does 19% more work with the default 16-pixel
#: overlap; 64-pixel tiles ran at half the speed). Free memory still limits it.
CPU_MIN_TILE = 192
#: A tile is planned at its measured live tensor bytes times this: oneDNN's scratch buffers and allocator
#: fragmentation are invisible to the measurement (the process's RSS grew by 1.4-2.4x of it).
WORKING_SET_MARGIN = 2.5
#: Side of the probe tile the working set is measured on; activations grow linearly with the pixel count.
PROBE_SIDE = 32


def run_inference(*, spec: TaskSpec, model_path: Path, options: InferenceOptions, task_options: Any,
                  inputs: list[str]) -> BatchResult:
    """Run an image-to-image task over files, folders or globs; raises ``InputError`` if any image failed.

    The journal's parameter hash covers the task, the model file (path, size, mtime), the task's options
    and the output quality, so changing any of them recomputes on a rerun; device, precision and tiling
    do not (they change how, not what, is computed).
    """
    if spec.kind != "image-to-image":
        raise UsageError(f"task {spec.name!r} generates images (kind {spec.kind!r}); it takes no input images")
    if not inputs:
        raise InputError("no input images given; pass files, folders or glob patterns")
    items = collect_inputs(inputs, recursive=options.recursive)
    with Runtime.from_options(options, distributed=False) as runtime:  # torchrun ranks shard the inputs
        model = _load(model_path, spec, runtime)
        scale = int(model.metadata.get("gantool.scale") or spec.scale)  # a task may export its own scale
        process = make_processor(model.task, model.networks, task_options, scale=scale,
                                 tile=resolve_tile(options.tile), overlap=options.tile_overlap, runtime=runtime)
        plan = BatchPlan.from_options(options, inference_params(spec, model_path, task_options, options.quality),
                                      default_suffix=f"_{spec.verb or spec.name}")
        result = run_batch(items, process, plan, workers=options.workers, description=spec.verb or spec.name)
    result.raise_if_failed()
    return result


def inference_params(spec: TaskSpec, model_path: Path, task_options: Any, quality: int) -> dict[str, Any]:
    """What determines an output's content, for the batch journal."""
    stat = Path(model_path).stat()
    options = dataclasses.asdict(task_options) if dataclasses.is_dataclass(task_options) else task_options
    return {"task": spec.name, "model": str(Path(model_path).resolve()), "model_size": stat.st_size,
            "model_mtime_ns": stat.st_mtime_ns, "task_options": options, "quality": quality}


def resolve_tile(tile: str | int) -> int | None:
    """``--tile``: ``auto`` (``None``: the processor picks per image), ``0`` (whole images) or a maximum side."""
    text = str(tile).strip().lower()
    if text == "auto":
        return None
    if not text.isdigit():
        raise UsageError(f"--tile {tile!r} must be auto, 0 or a size in pixels such as 512")
    return int(text)


# ------------------------------------------------------------------------------------------- processor


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


def hwc_array(tensor: torch.Tensor) -> np.ndarray:
    """:func:`gantool.imagetensor.to_array` for a ``(1, C, H, W)`` result we own: in place, no full-size copy.

    ``to_array`` converts, clamps and transposes into three separate copies; for a 4096x4096 output each is
    201 MB in float32, which decided the peak memory. The stitched result (of ``tiled_apply`` or a task's
    ``postprocess``) belongs to nobody else, so here NaN is zeroed and values are clamped to [0, 1] in place,
    and the ``(H, W, C)`` array is a view of it (contiguous when the result is channels_last). A result that
    is not dense (an expanded tensor), not float32 or not on the CPU is copied first. Call it inside the
    ``torch.inference_mode()`` block that made the tensor (in-place updates of its tensors need it).
    """
    if tensor.ndim != 4 or tensor.shape[0] != 1:
        return to_array(tensor)  # its error message
    dense = tensor.is_contiguous() or tensor.is_contiguous(memory_format=torch.channels_last)
    if not dense or tensor.dtype != torch.float32 or tensor.device.type != "cpu":
        tensor = tensor.to("cpu", torch.float32).contiguous()
    tensor = tensor.detach().nan_to_num_(nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0)
    return tensor[0].permute(1, 2, 0).numpy()


def resize_alpha(alpha: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """``(H, W, 1)`` alpha resized to ``size`` (bicubic, clamped to [0, 1]); unchanged when it fits.

    Antialiased only when it shrinks (``--outscale`` below 1): upscaling wants the plain bicubic kernel.
    """
    if alpha is None or alpha.shape[:2] == tuple(size):
        return alpha
    shrink = size[0] < alpha.shape[0] or size[1] < alpha.shape[1]
    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(alpha[..., 0]))[None, None]
        out = F.interpolate(t, size=tuple(size), mode="bicubic", align_corners=False, antialias=shrink)
        return out[0, 0].clamp_(0.0, 1.0).numpy()[..., None].copy()


# ------------------------------------------------------------------------------------------------ alpha


def fill_transparent(color: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Give fully transparent pixels the colour of the nearest visible ones; visible pixels are unchanged.

    Why not premultiply? The usual cure for dark fringes is to run the network on ``colour * alpha`` and
    divide its output by the resized alpha. That is exact for a linear resize, but a network is neither
    linear nor has the bicubic kernel the alpha is resized with, so the division leaves fringes (a red disc
    on transparent black, compact x4 model: red falls to 0.84 where alpha > 0.5 and to 0.46 where alpha > 0.1;
    0.59 / 0.05 without any treatment) and amplifies the network's own detail by ``1 / alpha`` in
    semi-transparent areas (uniform alpha 0.3 moved pixels by up to 0.18). Filling only changes pixels no one
    sees, keeps the network on the images it was trained on, and gave red 1.00 on that disc. It is exact for
    the edges of opaque shapes; where two semi-transparent colours meet, they mix by the kernel's weights
    rather than by alpha (a small hue shift, never a darkening).

    The fill is a push-pull pyramid (alpha-weighted 2x2 means going down, bilinear up), so it reaches across
    transparent areas of any size in linear time.

    Args:
        color: ``(B, C, H, W)`` straight (not premultiplied) colour.
        alpha: ``(B, 1, H, W)`` in [0, 1].

    Returns:
        ``color`` itself when nothing is transparent (or everything is), else a filled copy.
    """
    visible = alpha > TRANSPARENT_ALPHA
    if bool(visible.all()) or not bool(visible.any()):
        return color
    weight = alpha * visible
    return torch.where(visible, color, _pull(color * weight, weight))


def _pull(premultiplied: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Alpha-weighted mean colour where ``weight > 0``; elsewhere the next coarser level's, upsampled."""
    color = premultiplied / weight.clamp_min(1e-12)
    holes = weight <= 0
    if not bool(holes.any()):
        return color
    coarse = _pull(F.avg_pool2d(premultiplied, 2, ceil_mode=True), F.avg_pool2d(weight, 2, ceil_mode=True))
    upsampled = F.interpolate(coarse, size=color.shape[-2:], mode="bilinear", align_corners=False)
    return torch.where(holes, upsampled, color)


# ----------------------------------------------------------------------------------------------- tiling


@dataclasses.dataclass(frozen=True)
class TilePlan:
    """How :func:`make_processor` tiles each image.

    Attributes:
        tile: A maximum tile side in input pixels, 0 for whole images, or ``None`` for auto.
        budget: Auto: bytes one image may use on the device (a fraction of what was free).
        bytes_per_pixel: Auto: what a tile needs per input pixel on the device (network working set plus
            the blend of its output).
        cpu: Auto: the device is the CPU, so the image's full-size buffers (:func:`full_image_bytes`) come
            out of the same budget, and image plus tile should stay within :data:`CPU_IMAGE_BYTES`.
    """

    tile: int | None
    budget: float = 0.0
    bytes_per_pixel: float = 1.0
    cpu: bool = True

    def tile_for(self, height: int, width: int, *, scale: int, overlap: int) -> int:
        """The tile for a ``height`` x ``width`` input: 0 (whole image) or a side for ``tiled_apply``."""
        largest = self.tile if self.tile is not None else self.auto_side(height, width, scale)
        return balanced_tile(height, width, largest, overlap)

    def auto_side(self, height: int, width: int, scale: int) -> int:
        """The largest tile side whose working set fits the budget (before balancing).

        On the CPU, what the image itself needs comes first; the tile gets the rest of
        :data:`CPU_IMAGE_BYTES`, or a :data:`CPU_MIN_TILE` tile when that is less, as far as ``budget`` allows.
        """
        if not self.cpu:
            return self._clamped(self._side(self.budget))
        full = full_image_bytes(height, width, scale)
        preferred = max(self._side(CPU_IMAGE_BYTES - full), CPU_MIN_TILE)
        return self._clamped(min(preferred, self._side(self.budget - full)))

    def _side(self, budget: float) -> int:
        return math.isqrt(int(max(budget, 0.0) / self.bytes_per_pixel))

    @staticmethod
    def _clamped(side: int) -> int:
        return max(AUTO_TILE_MIN, min(AUTO_TILE_MAX, side))


def plan_tiles(tile: int | None, on_tile: Callable[[torch.Tensor], torch.Tensor], *, scale: int,
               runtime: Runtime) -> TilePlan:
    """A fixed :class:`TilePlan`, or for auto one from free memory and ``on_tile``'s measured working set.

    The measurement runs ``on_tile`` once on a small probe; it is skipped with ``--compile`` (it would
    compile for the probe's shape) and when it fails, and then the generic estimate of
    :func:`gantool.engine.tiling.auto_tile_size` is used.
    """
    if tile is not None:
        return TilePlan(tile)
    device = runtime.device
    measured = None if runtime.compile else measure_bytes_per_pixel(on_tile, device)
    generic = 4.0 * (3 + 512 + 192 * scale**2)  # auto_tile_size's model of a typical generator
    network = generic if measured is None else measured * WORKING_SET_MARGIN
    blend = 2 * 4 * 3 * scale**2  # the output tile times the two blending windows, float32 on the CPU
    fraction = MEMORY_FRACTION.get(device.type, MEMORY_FRACTION["cpu"])
    return TilePlan(None, budget=free_device_bytes(device) * fraction, bytes_per_pixel=network + blend,
                    cpu=device.type == "cpu")


def full_image_bytes(height: int, width: int, scale: int, channels: int = 3) -> int:
    """CPU bytes an image needs besides its tiles: the decoded input and its tensor, and the stitched
    float32 result (which becomes the output array without a copy). A task's ``postprocess`` may add more."""
    return 4 * channels * height * width * (2 + scale * scale)


def balanced_tile(height: int, width: int, tile: int, overlap: int, *, multiple: int = 8) -> int:
    """The smallest side (rounded up to ``multiple``) that needs no more tiles than ``tile`` does; 0 if one fits.

    ``tiled_apply`` spreads a fixed tile evenly, so a 520-pixel tile on a 2048-pixel side means 5 tiles
    overlapping by 138 pixels: 61% more work than the image. The same 5 tiles at 424 pixels overlap by
    the requested minimum only (7% more). Sides that fit in one tile stay whole.
    """
    if tile <= 0 or (height <= tile and width <= tile):
        return 0
    overlap = min(overlap, tile // 2)  # what tiled_apply_with_backoff uses
    side = 0
    for length in (height, width):
        if length <= tile:
            side = max(side, length)
        else:
            count = math.ceil((length - overlap) / (tile - overlap))
            side = max(side, math.ceil((length - overlap) / count) + overlap)
    return min(tile, -(-side // multiple) * multiple)


def measure_bytes_per_pixel(fn: Callable[[torch.Tensor], torch.Tensor], device: torch.device | str, *,
                            side: int = PROBE_SIDE) -> float | None:
    """Peak bytes of the tensors ``fn`` allocates on a ``(1, 3, side, side)`` probe, per input pixel.

    Counted per torch function (:class:`LiveTensorBytes`), not from the allocator, so it means the same on
    every device. Returns ``None`` when ``fn`` fails on the probe (a network that needs larger inputs, say).
    """
    probe = torch.zeros(1, 3, side, side, device=device)
    meter = LiveTensorBytes()
    try:
        with torch.inference_mode(), meter:
            fn(probe)
    except Exception as error:  # any failure only means: no measurement
        logger.debug("working-set probe failed (%s); using the generic estimate", error)
        return None
    return meter.peak / side**2 if meter.peak > 0 else None


class LiveTensorBytes(TorchFunctionMode):
    """Within the block, the peak of the bytes held by tensors that torch functions returned (``peak``).

    Each storage is counted once, when a function first returns a tensor on it, and released when the last
    tensor object on it that was seen is garbage collected. A function returning one of its inputs (an
    in-place op) or a view of memory from outside the block allocates nothing. Temporaries inside one
    function (oneDNN's scratch, the steps of a Python-level op) are invisible, hence
    :data:`WORKING_SET_MARGIN`. A function mode, not a dispatch mode: entering a dispatch mode imports
    torch._dynamo (1.5 s and 160 MB of resident memory).
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._storages: dict[int, list[int]] = {}  # data pointer -> [bytes, tensor objects holding it]

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outside = {t.untyped_storage().data_ptr() for t in inputs}
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor) and not any(tensor is t for t in inputs):
                self._hold(tensor, outside)
        return out

    def _hold(self, tensor: torch.Tensor, outside: set[int]) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        entry = self._storages.get(key)
        if entry is None:
            if key in outside:  # a view of an input that was not allocated in the block
                return
            entry = self._storages[key] = [storage.nbytes(), 0]
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self._storages[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._storages[key]


def run_sampling(*, spec: TaskSpec, model_path: Path, options: SampleOptions, task_options: Any) -> list[Path]:
    """Generate ``options.count`` images with ``task.sample`` and write them to ``options.output``.

    Calls ``task.sample(networks, count=n, generator=g, options=task_options)`` in chunks of
    :data:`SAMPLE_CHUNK`, with one ``torch.Generator`` on the runtime device seeded with ``--seed`` (draw
    noise with ``device=generator.device``); it must return ``(n, C, H, W)`` in [0, 1]. Files are
    ``<task>-seed<seed>-<index>.<ext>``, so runs with different seeds do not overwrite each other.
    Returns the paths written.
    """
    from gantool.io import SUPPORTED_EXTENSIONS, write_image

    if spec.kind != "sample":
        raise UsageError(f"task {spec.name!r} transforms input images; use `gantool {spec.verb} IMAGES...`")
    ext = "." + options.ext.lower().lstrip(".")
    if ext not in SUPPORTED_EXTENSIONS:
        raise UsageError(f"--ext {options.ext!r} is not supported; use one of "
                         + ", ".join(sorted(e.lstrip(".") for e in SUPPORTED_EXTENSIONS)))
    with Runtime.from_options(options, distributed=False) as runtime:
        model = _load(model_path, spec, runtime)
        sample = getattr(model.task, "sample", None)
        if not callable(sample):
            raise PluginError(f"task {spec.name!r} is of kind 'sample' but {type(model.task).__name__} has no "
                              "sample(networks, count, generator, options) method")
        generator = torch.Generator(device=runtime.device).manual_seed(options.seed)
        written: list[Path] = []
        for start in range(0, options.count, SAMPLE_CHUNK):
            count = min(SAMPLE_CHUNK, options.count - start)
            with torch.inference_mode(), runtime.autocast():
                batch = sample(model.networks, count=count, generator=generator, options=task_options)
            if batch.ndim != 4 or batch.shape[0] != count:
                raise PluginError(f"{type(model.task).__name__}.sample(count={count}) returned shape "
                                  f"{tuple(batch.shape)}; expected ({count}, C, H, W)")
            for offset in range(count):
                path = Path(options.output) / f"{spec.name}-seed{options.seed}-{start + offset:04d}{ext}"
                written.append(write_image(path, Image(to_array(batch[offset].float()))))
    return written


def prepare_networks(networks: Mapping[str, nn.Module], runtime: Runtime) -> dict[str, nn.Module]:
    """Networks as inference runs them: on the device, in its memory format (channels_last on the CPU and
    CUDA), compiled with ``--compile``. Benchmarks use this too, so they time the real path."""
    return {name: runtime.maybe_compile(runtime.prepare_module(net, training=False))
            for name, net in networks.items()}


def _load(model_path: Path, spec: TaskSpec, runtime: Runtime) -> Any:
    from gantool.engine.export import load_model

    model = load_model(model_path, spec, device=runtime.device)
    model.networks = prepare_networks(model.networks, runtime)
    return model
