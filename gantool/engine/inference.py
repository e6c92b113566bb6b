"""``gantool VERB IMAGES...`` for image-to-image tasks: load the model, plan the batch, run it.

Task-agnostic: the engine knows a task only through its ``Task`` methods and the model file's metadata.
The pieces: :mod:`~gantool.engine.processor` (gray, alpha, tiling around ``predict``),
:mod:`~gantool.engine.tileplan` (``--tile auto``), :mod:`~gantool.engine.batch` (decode, process, write,
journal) and :mod:`~gantool.engine.sampling` (generation verbs). Device and precision come from
:class:`~gantool.engine.runtime.Runtime` (fp32 and a tuned allocator on the CPU; autocast on CUDA).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool.engine.batch import BatchResult, run_batch
from gantool.engine.batchplan import BatchPlan, collect_inputs
from gantool.engine.pairing import pair_inputs
from gantool.engine.processor import make_processor, prepare_networks
from gantool.engine.runtime import Runtime
from gantool.errors import InputError, UsageError
from gantool.image.limits import aspect_limit, pixel_limit

if TYPE_CHECKING:
    from gantool.plugin.common import InferenceOptions
    from gantool.plugin.spec import TaskSpec

#: Loaded models kept between calls by a long-lived caller (``gantool serve``): any mutable mapping (a dict,
#: a bounded LRU); keys are made by :func:`load_for_inference`. The CLI passes none and loads once per command.
ModelCache = MutableMapping[tuple[Any, ...], Any]


def run_inference(*, spec: TaskSpec, model_path: Path, options: InferenceOptions, task_options: Any,
                  inputs: list[str], companions: Mapping[str, str] | None = None,
                  model_cache: ModelCache | None = None) -> BatchResult:
    """Run an image-to-image task over files, folders or globs; raises ``InputError`` if any image failed.

    ``companions`` gives the task's other inputs (``{"mask": "masks/"}``: a file, folder or glob each),
    paired with the images by :mod:`gantool.engine.pairing`. ``model_cache``: reuse a model loaded by an
    earlier call (see :func:`load_for_inference`).

    The journal's parameter hash covers the task, the model file (path, size, mtime), the task's options
    and the output quality, so changing any of them recomputes on a rerun; device, precision and tiling
    do not (they change how, not what, is computed).
    """
    if spec.kind != "image-to-image":
        raise UsageError(f"task {spec.name!r} generates images (kind {spec.kind!r}); it takes no input images")
    if not inputs:
        raise InputError("no input images given; pass files, folders or glob patterns")
    companions = dict(companions or {})
    check_companions(spec, companions)
    pixel_limit(), aspect_limit()  # a malformed GANTOOL_MAX_PIXELS / _ASPECT is one usage error, not one per image
    items = pair_inputs(collect_inputs(inputs, recursive=options.recursive), companions)
    with Runtime.from_options(options, distributed=False) as runtime:  # torchrun ranks shard the inputs
        model = load_for_inference(model_path, spec, runtime, model_cache)
        check_servable(model, model_path, task_options)
        process = make_processor(model.task, model.networks, task_options, scale=model.scale,
                                 tile=(tile := resolve_tile(options.tile)),
                                 overlap=resolve_overlap(tile, options.tile_overlap), runtime=runtime)
        plan = BatchPlan.from_options(options, inference_params(spec, model_path, task_options, options.quality),
                                      default_suffix=f"_{spec.verb or spec.name}")
        resizable = [item.name for item in spec.inputs[1:] if item.resize == "nearest"]
        result = run_batch(items, process, plan, workers=options.workers, description=spec.verb or spec.name,
                           resizable=resizable)
    result.raise_if_failed()
    return result


def check_companions(spec: TaskSpec, companions: Mapping[str, str]) -> None:
    """Refuse, before anything loads, companions the task does not take and required ones left out."""
    declared = {item.name: item for item in spec.inputs[1:]}
    command = spec.verb or spec.name
    for name in companions:
        if name not in declared:
            takes = ", ".join(f"--{n}" for n in declared) or "no other inputs"
            raise UsageError(f"task {spec.name!r} takes no --{name} input (it takes {takes})")
    mask = spec.mask_input()
    for item in declared.values():
        if item.required and item.name not in companions and item is not mask:
            raise UsageError(f"'{command}' needs --{item.name} FILE|DIR|GLOB ({item.help or 'required input'})")


def inference_params(spec: TaskSpec, model_path: Path, task_options: Any, quality: int) -> dict[str, Any]:
    """What determines an output's content, for the batch journal."""
    stat = Path(model_path).stat()
    is_instance = dataclasses.is_dataclass(task_options) and not isinstance(task_options, type)
    options = dataclasses.asdict(task_options) if is_instance else task_options
    return {"task": spec.name, "model": str(Path(model_path).resolve()), "model_size": stat.st_size,
            "model_mtime_ns": stat.st_mtime_ns, "task_options": options, "quality": quality}


#: The smallest ``--tile`` honoured; smaller ones are raised to it (tiles of 1 or 4 pixels gave 21 and 30 dB
#: against untiled output, 16 gave 55 dB).
MIN_USER_TILE = 16


def resolve_tile(tile: str | int) -> int | None:
    """``--tile``: ``auto`` (``None``: the processor picks per image), ``0`` (whole images) or a maximum side."""
    text = str(tile).strip().lower()
    if text == "auto":
        return None
    if not text.isdigit():
        raise UsageError(f"--tile {tile!r} must be auto, 0 or a size in pixels such as 512")
    side = int(text)
    if 0 < side < MIN_USER_TILE:  # tiles of a few pixels are mostly border: visibly blocky output
        logging.getLogger(__name__).warning("warning: --tile %d is below the useful minimum of %d pixels; using %d",
                                            side, MIN_USER_TILE, MIN_USER_TILE)
        return MIN_USER_TILE
    return side


def resolve_overlap(tile: int | None, overlap: int) -> int:
    """``--tile-overlap`` for a user-given ``--tile``: at most half the tile (as tiling clamps it), said aloud."""
    if tile and overlap > tile // 2:
        logging.getLogger(__name__).warning("warning: --tile-overlap %d is more than half of --tile %d; using %d",
                                            overlap, tile, tile // 2)
        return tile // 2
    return overlap


def check_servable(model: Any, model_path: Path, task_options: Any) -> None:
    """Refuse, in one line naming the file, task options this model cannot serve (``Task.check_infer_options``)."""
    try:
        model.task.check_infer_options(task_options)
    except UsageError as error:
        raise UsageError(f"model '{model_path}': {error}") from None


def load_for_inference(model_path: Path, spec: TaskSpec, runtime: Runtime, cache: ModelCache | None = None) -> Any:
    """The model on the runtime's device, ready to predict; with ``cache``, the one loaded before for the same
    task, file (path, size and mtime: a replaced file is loaded again), device, precision and compile."""
    from gantool.engine.export import load_model

    key: tuple[Any, ...] = ()
    if cache is not None:
        stat = Path(model_path).stat()
        key = (spec.name, str(Path(model_path).resolve()), stat.st_size, stat.st_mtime_ns, str(runtime.device),
               runtime.precision, runtime.compile)
        if (cached := cache.get(key)) is not None:
            return cached
    model = load_model(model_path, spec, device=runtime.device)
    model.networks = prepare_networks(model.networks, runtime)
    if cache is not None:
        cache[key] = model
    return model
