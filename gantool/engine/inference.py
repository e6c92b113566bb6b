"""Inference for every task: image-to-image verbs through the batch pipeline, and sampling verbs.

Task-agnostic: the engine knows a task only through ``task.predict(networks, image, options)`` (and
``task.sample(...)`` for ``kind="sample"``) and ``spec.scale``. What it does around that, the same for
every task:

- **Gray** (``(H, W, 1)``) inputs are repeated to 3 channels for the network (networks are RGB), and a
  3-channel result is turned back into one channel (Rec. 601 luma, as OpenCV's RGB2GRAY), so gray stays
  gray. A task whose point is to add colour sets ``output_gray_for_gray_input = False`` on its Task class.
- **Alpha** never goes through the network. At scale 1 it is kept as is; otherwise it is resized to the
  output size with bicubic interpolation (``torch.nn.functional.interpolate``, no antialias, which is
  what upscaling needs) and clamped to [0, 1]. OpenCV stays in ``gantool.io``.
- **Bit depth** is carried through: 16-bit in, 16-bit out (where the output format stores it).
- **Tiling**: ``--tile auto`` picks a size from free memory once per run (``auto_tile_size``), an integer is
  used as is, 0 runs whole images; out-of-memory halves the tile and retries (``tiled_apply_with_backoff``).
- **Device/precision** come from :class:`~gantool.engine.runtime.Runtime` (fp32 and a tuned allocator on
  the CPU; autocast on CUDA); networks and inputs use channels_last where the runtime says it is faster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gantool.engine.batch import BatchPlan, BatchResult, collect_inputs, run_batch
from gantool.engine.runtime import Runtime
from gantool.engine.tiling import auto_tile_size, tiled_apply_with_backoff
from gantool.errors import InputError, PluginError, UsageError
from gantool.imagetensor import to_array, to_tensor
from gantool.io import Image

if TYPE_CHECKING:
    from gantool.settings import InferenceOptions, SampleOptions
    from gantool.spec import TaskSpec
    from gantool.task import Task

#: Rec. 601 luma weights (OpenCV's RGB2GRAY), used to return a gray input's result as gray.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Images per ``task.sample`` call. Fixed (not device-dependent) so a seed gives the same images anywhere
#: the task's own random draws are reproducible.
SAMPLE_CHUNK = 8


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
    with Runtime.from_options(options) as runtime:
        model = _load(model_path, spec, runtime)
        scale = int(model.metadata.get("gantool.scale") or spec.scale)  # a task may export its own scale
        tile = resolve_tile(options.tile, scale=scale, device=runtime.device)
        process = make_processor(model.task, model.networks, task_options, scale=scale, tile=tile,
                                 overlap=options.tile_overlap, runtime=runtime)
        plan = BatchPlan.from_options(options, inference_params(spec, model_path, task_options, options.quality))
        result = run_batch(items, process, plan, workers=options.workers, description=spec.verb or spec.name)
    result.raise_if_failed()
    return result


def inference_params(spec: TaskSpec, model_path: Path, task_options: Any, quality: int) -> dict[str, Any]:
    """What determines an output's content, for the batch journal."""
    stat = Path(model_path).stat()
    options = dataclasses.asdict(task_options) if dataclasses.is_dataclass(task_options) else task_options
    return {"task": spec.name, "model": str(Path(model_path).resolve()), "model_size": stat.st_size,
            "model_mtime_ns": stat.st_mtime_ns, "task_options": options, "quality": quality}


def resolve_tile(tile: str | int, *, scale: int, device: torch.device | str, channels: int = 3) -> int:
    """``--tile``: ``auto`` (from free memory on ``device``), ``0`` (whole images) or a size in input pixels."""
    text = str(tile).strip().lower()
    if text == "auto":
        return auto_tile_size(channels, scale, device)
    if not text.isdigit():
        raise UsageError(f"--tile {tile!r} must be auto, 0 or a size in pixels such as 512")
    return int(text)


def make_processor(task: Task, networks: Mapping[str, nn.Module], task_options: Any, *, scale: int, tile: int,
                   overlap: int, runtime: Runtime) -> Callable[[Image], Image]:
    """The batch pipeline's ``process``: one decoded image in, one result image out (CPU arrays).

    The networks must already be on ``runtime.device`` in eval mode (``load_model`` does that).
    """
    memory_format = runtime.memory_format(training=False)
    keep_gray = bool(getattr(task, "output_gray_for_gray_input", True))
    nets = dict(networks)

    def on_tile(x: torch.Tensor) -> torch.Tensor:
        with runtime.autocast():
            y = task.predict(nets, x.contiguous(memory_format=memory_format), task_options)
        return y.float()

    def process(image: Image) -> Image:
        x = to_tensor(image.rgb())
        with torch.inference_mode():
            y = tiled_apply_with_backoff(on_tile, x, scale=scale, tile=tile, overlap=overlap,
                                         device=runtime.device, out_dtype=torch.float32)
        color = to_array(y)
        if image.is_gray and keep_gray and color.shape[2] == 3:
            color = (color @ LUMA)[..., None]
        return Image(color, resize_alpha(image.alpha, color.shape[:2]), image.bit_depth)

    return process


def resize_alpha(alpha: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """``(H, W, 1)`` alpha resized to ``size`` (bicubic, clamped to [0, 1]); unchanged when it fits."""
    if alpha is None or alpha.shape[:2] == tuple(size):
        return alpha
    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(alpha[..., 0]))[None, None]
        out = F.interpolate(t, size=tuple(size), mode="bicubic", align_corners=False, antialias=False)
        return out[0, 0].clamp_(0.0, 1.0).numpy()[..., None].copy()


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


def _load(model_path: Path, spec: TaskSpec, runtime: Runtime) -> Any:
    from gantool.engine.export import load_model

    model = load_model(model_path, spec, device=runtime.device)
    model.networks = {name: runtime.maybe_compile(runtime.prepare_module(net, training=False))
                      for name, net in model.networks.items()}
    return model
