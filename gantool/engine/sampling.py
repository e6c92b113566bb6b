"""Generation verbs (``kind="sample"``): images from noise through ``Task.sample``, reproducible and resumable.

Reproducible: image ``i`` of seed ``S`` is the same whatever ``-n`` is. Images are drawn in fixed chunks of
:data:`SAMPLE_CHUNK`; chunk ``k`` gets its own ``torch.Generator`` seeded from ``(S, k)`` (:func:`chunk_seed`)
and is always drawn whole, so ``-n`` only decides which images are written. The same seed gives the same
files on the same device type (CPU and CUDA random streams differ).

Resumable: files are written atomically (``gantool.image.io.write_image``) and recorded in the output
folder's journal (:mod:`gantool.engine.journal`) with a hash of what made them (model file, task, task
options, seed, class, truncation). A rerun skips images the journal says it wrote with the same
parameters, so ``-n 100`` after ``-n 50`` draws only the chunks holding the new ones, and changed
parameters recompute. A file the journal does not know is kept unless ``--overwrite``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from gantool.engine.batchplan import path_key
from gantool.engine.inference import ModelCache, check_servable, inference_params, load_for_inference
from gantool.engine.journal import (
    DONE,
    FOREIGN,
    JOURNAL_NAME,
    OTHER_PARAMETERS,
    Journal,
    exclusive_run,
    fingerprint,
    params_hash,
)
from gantool.engine.runtime import Runtime
from gantool.errors import OutputError, PluginError, UsageError
from gantool.plugin.registry import suggest
from gantool.plugin.task import SampleRequest, Task

if TYPE_CHECKING:
    from gantool.plugin.common import SampleOptions
    from gantool.plugin.spec import TaskSpec

#: Images per ``Task.sample`` call. Part of what a seed means: changing it changes every image, so it is
#: fixed (not device- or memory-dependent) and recorded in the journal's parameters.
SAMPLE_CHUNK = 8

#: Quality of JPEG/WebP samples (``gantool generate`` has no --quality).
SAMPLE_QUALITY = 95

#: Pixels between the cells of ``--grid``.
GRID_GAP = 2

_MAX_LISTED_CLASSES = 20


@dataclass
class SampleResult:
    """What a ``generate`` run produced: every requested image in index order, and what was done to each."""

    images: list[Path] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    skipped: dict[Path, str] = field(default_factory=dict)
    grid: Path | None = None


def chunk_seed(seed: int, chunk: int) -> int:
    """The generator seed of chunk ``chunk`` of ``--seed seed``: a hash, so chunks and seeds never share a stream."""
    digest = hashlib.sha256(f"gantool-sample:{seed}:{chunk}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def sample_path(output: Path, task_name: str, seed: int, index: int, ext: str) -> Path:
    """``<output>/<task>-seed<S>-<i>.<ext>``, so runs with different seeds do not overwrite each other."""
    return Path(output) / f"{task_name}-seed{seed}-{index:04d}{ext}"


def run_sampling(*, spec: TaskSpec, model_path: Path, options: SampleOptions, task_options: Any,
                 model_cache: ModelCache | None = None) -> SampleResult:
    """Generate images ``0 .. options.count - 1`` of ``options.seed`` with ``task.sample`` into ``options.output``.

    ``model_cache``: reuse a model loaded by an earlier call (:func:`~gantool.engine.inference.load_for_inference`).

    Images already written with the same parameters are skipped (see the module docstring); with
    ``options.grid`` one more file, ``<task>-seed<S>-grid.<ext>``, shows all ``count`` images.

    Raises:
        UsageError: not a ``sample`` task, a bad ``--ext``, ``--class`` or ``--truncation``.
        PluginError: the task does not implement ``sample`` or returns the wrong shape.
    """
    from rich.console import Console

    if spec.kind != "sample":
        raise UsageError(f"task {spec.name!r} transforms input images; use `gantool {spec.verb} IMAGES...`")
    ext = _extension(options.ext)
    if options.truncation is not None and not 0 < options.truncation <= 1:
        raise UsageError(f"--truncation {options.truncation} must be in (0, 1] (1: no truncation)")
    output = Path(options.output)
    paths = [sample_path(output, spec.name, options.seed, index, ext) for index in range(options.count)]
    result = SampleResult(images=paths)
    console = Console(stderr=True)
    with Runtime.from_options(options, distributed=False) as runtime:
        model = load_for_inference(model_path, spec, runtime, model_cache)
        check_servable(model, model_path, task_options)
        task = model.task
        if type(task).sample is Task.sample:
            raise PluginError(f"task {spec.name!r} is of kind 'sample' but {type(task).__name__} does not implement "
                              "sample(networks, count, generator, options)")
        request = SampleRequest(label=resolve_label(task, options.label),
                                truncation=checked_truncation(task, options.truncation),
                                task_options=task_options)
        params = {**inference_params(spec, model_path, task_options, SAMPLE_QUALITY), "seed": options.seed,
                  "label": request.label, "truncation": request.truncation, "chunk": SAMPLE_CHUNK}
        with exclusive_run(output):  # one run per output folder: a second one is refused
            journal = Journal(output / JOURNAL_NAME)
            phash = params_hash(params)
            previous = journal.load()
            todo: dict[int, list[int]] = {}  # chunk -> indices to write
            for index, path in enumerate(paths):
                reason = _skip_reason(index, path, previous, phash, options.overwrite)
                if reason is None:
                    todo.setdefault(index // SAMPLE_CHUNK, []).append(index)
                else:
                    result.skipped[path] = reason
            try:
                with console.status(f"generating {len(paths) - len(result.skipped)} of {len(paths)} images"):
                    for chunk, indices in todo.items():
                        images = _draw_chunk(task, model.networks, runtime, chunk, options.seed, request)
                        for index in indices:
                            image = images[index % SAMPLE_CHUNK]
                            result.written.append(_write(paths[index], image, index, journal, phash))
            finally:
                journal.close()
    if options.grid:
        result.grid = write_grid(output / f"{spec.name}-seed{options.seed}-grid{ext}", paths)
    _summary(console, result)
    return result


def resolve_label(task: Task, label: str | None) -> int | None:
    """``--class`` as an index into ``task.class_names()``: a name or an index; ``None`` when not given."""
    if label is None:
        return None
    names = tuple(task.class_names())
    if not names:
        raise UsageError(f"--class {label!r}: task {task.spec.name!r} is not class-conditional (its model has no "
                         "classes); leave out --class")
    if label in names:
        return names.index(label)
    text = label.strip()
    if text.isdigit() and int(text) < len(names):
        return int(text)
    listed = ", ".join(names[:_MAX_LISTED_CLASSES])
    if len(names) > _MAX_LISTED_CLASSES:
        listed += f" ... (+{len(names) - _MAX_LISTED_CLASSES} more)"
    raise UsageError(f"--class {label!r} is not a class of this {task.spec.name} model{suggest(label, names)}; "
                     f"give a name or an index 0-{len(names) - 1}: {listed}")


def checked_truncation(task: Task, truncation: float | None) -> float | None:
    if truncation is not None and not task.supports_truncation:
        raise UsageError(f"task {task.spec.name!r} does not support --truncation ({type(task).__name__} does not "
                         "set supports_truncation); leave it out")
    return truncation


def draw_images(task: Task, networks: dict[str, Any], runtime: Runtime, *, seed: int, count: int,
                request: SampleRequest) -> torch.Tensor:
    """Images ``0 .. count - 1`` of ``seed`` as one ``(count, C, H, W)`` CPU tensor, drawn in the same chunks
    as ``gantool generate`` (so each equals its file): the Python API's ``Model.generate``."""
    if type(task).sample is Task.sample:
        raise PluginError(f"task {task.spec.name!r} is of kind 'sample' but {type(task).__name__} does not "
                          "implement sample(networks, count, generator, options)")
    chunks = [_draw_chunk(task, networks, runtime, chunk, seed, request)
              for chunk in range(math.ceil(count / SAMPLE_CHUNK))]
    return torch.cat(chunks)[:count]


def _extension(ext: str) -> str:
    from gantool.image.io import SUPPORTED_EXTENSIONS

    dotted = "." + ext.lower().lstrip(".")
    if dotted not in SUPPORTED_EXTENSIONS:
        raise UsageError(f"--ext {ext!r} is not supported; use one of "
                         + ", ".join(sorted(e.lstrip(".") for e in SUPPORTED_EXTENSIONS)))
    return dotted


def _skip_reason(index: int, path: Path, previous: Mapping[tuple[str, str], Mapping[str, Any]], phash: str,
                 overwrite: bool) -> str | None:
    """The batch journal's overwrite rule without an input file (:func:`gantool.engine.journal.skip_reason`):
    ``--overwrite`` recomputes; otherwise done with these parameters, made with others, or someone else's."""
    output = fingerprint(path)
    if output is None or overwrite:
        return None
    entry = previous.get((_input_key(index), path_key(path)))
    ours = entry is not None and [entry.get("output_size"), entry.get("output_mtime_ns")] == list(output)
    if not ours or entry is None:
        return FOREIGN
    return DONE if entry.get("params") == phash else OTHER_PARAMETERS


def _input_key(index: int) -> str:
    """What stands for the input in the journal: generated images have none, only their index."""
    return f"generated:{index}"


def _draw_chunk(task: Task, networks: dict[str, Any], runtime: Runtime, chunk: int, seed: int,
                request: SampleRequest) -> torch.Tensor:
    generator = torch.Generator(device=runtime.device).manual_seed(chunk_seed(seed, chunk))
    with torch.inference_mode(), runtime.autocast():
        batch = task.sample(networks, SAMPLE_CHUNK, generator, request)
    if not isinstance(batch, torch.Tensor) or batch.ndim != 4 or batch.shape[0] != SAMPLE_CHUNK \
            or batch.shape[1] not in (1, 3):
        shape = tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
        raise PluginError(f"{type(task).__name__}.sample(count={SAMPLE_CHUNK}) returned {shape}; expected "
                          f"({SAMPLE_CHUNK}, 3 or 1, H, W) in [0, 1]")
    return batch.float().cpu()


def _write(path: Path, image: torch.Tensor, index: int, journal: Journal, phash: str) -> Path:
    from gantool.image.io import Image, write_image
    from gantool.image.tensor import to_array

    write_image(path, Image(to_array(image)), quality=SAMPLE_QUALITY)
    size, mtime = fingerprint(path) or (None, None)
    journal.append({"input": _input_key(index), "input_size": None, "input_mtime_ns": None,
                    "output": path_key(path), "output_size": size, "output_mtime_ns": mtime, "status": "done",
                    "error": "", "params": phash, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return path


def grid_columns(count: int, height: int, width: int) -> int:
    """Cells per row that bring a grid of ``count`` cells nearest a square (ties: more columns), so square
    cells give ``ceil(sqrt(count))`` and strips as wide as they are frames long one per row."""
    def elongation(columns: int) -> Fraction:
        tall, wide = math.ceil(count / columns) * height, columns * width
        return Fraction(max(tall, wide), min(tall, wide))

    return min(range(count, 0, -1), key=elongation)


def write_grid(path: Path, images: list[Path]) -> Path:
    """One image of ``images`` (as stored, so reruns give the same grid), as near a square as the cells allow
    (:func:`grid_columns`: ``ceil(sqrt(n))`` square cells per row, fewer wide ones).

    Cells are separated by :data:`GRID_GAP` black pixels; the grid is written atomically.
    """
    from gantool.image.io import Image, read_image, write_image

    cells = [read_image(p).color for p in images]
    shape = cells[0].shape
    for source, cell in zip(images, cells, strict=True):
        if cell.shape != shape:
            raise OutputError(f"cannot draw the grid: '{source}' is {cell.shape[1]}x{cell.shape[0]} with "
                              f"{cell.shape[2]} channel(s), '{images[0]}' is {shape[1]}x{shape[0]} with {shape[2]}")
    height, width, channels = shape
    columns = grid_columns(len(cells), height, width)
    rows = math.ceil(len(cells) / columns)
    grid = np.zeros((rows * height + (rows - 1) * GRID_GAP, columns * width + (columns - 1) * GRID_GAP, channels),
                    dtype=np.float32)
    for index, cell in enumerate(cells):
        top, left = (index // columns) * (height + GRID_GAP), (index % columns) * (width + GRID_GAP)
        grid[top:top + height, left:left + width] = cell
    return write_image(path, Image(grid), quality=SAMPLE_QUALITY)


def _summary(console: Any, result: SampleResult) -> None:
    skipped = len(result.skipped)
    reasons = sorted(set(result.skipped.values()))
    line = f"generated {len(result.written)} image(s)"
    if skipped:
        line += f", skipped {skipped} ({'; '.join(reasons)})"
    if result.grid is not None:
        line += f"; grid: {result.grid}"
    console.print(line, highlight=False, markup=False, soft_wrap=True)
