"""Run one page job through the engine, exactly as the CLI runs the same command (no second implementation).

An image job calls :func:`gantool.engine.inference.run_inference` once per uploaded image (with its mask as
the ``mask`` companion), which is ``gantool VERB IMAGE [--mask MASK] -o OUT`` for that image: same
decoding, tiling, alpha and writing, so the files are the CLI's. A generation job calls
:func:`gantool.engine.sampling.run_sampling` for ``-n 8``, ``-n 16`` ... up to ``count`` into one folder,
which the sampling journal makes resume chunk by chunk: the files are those of one ``gantool generate -n
COUNT``, and between chunks the job reports progress and can be cancelled. Both pass the server's
:class:`ModelLRU`, so a model is loaded once, not once per image, chunk or job.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from gantool.api import resolve_model
from gantool.engine.progress import observe_tiles
from gantool.errors import CheckpointError, GantoolError, UsageError
from gantool.plugin.common import InferenceOptions, SampleOptions
from gantool.plugin.manager import PluginSystem
from gantool.plugin.options import build
from gantool.plugin.spec import TaskSpec
from gantool.ui.jobs import Cancelled, Job

#: ``gantool generate`` draws images in chunks of this many (``gantool.engine.sampling.SAMPLE_CHUNK``,
#: repeated here so that building a job needs no torch; a test checks they agree).
SAMPLE_CHUNK = 8


#: How many loaded models a server keeps (``GANTOOL_UI_MODELS``; 0 loads every time).
DEFAULT_MODELS = 2


class ModelLRU(MutableMapping[tuple[Any, ...], Any]):
    """The models a server keeps loaded between images and jobs, the least recently used dropped first.

    Thread-safe (one worker thread per device shares it). Bounded, because a model on a GPU holds its
    memory while kept: ``size`` models at most (``GANTOOL_UI_MODELS``, default 2)."""

    def __init__(self, size: int | None = None) -> None:
        raw = os.environ.get("GANTOOL_UI_MODELS", "").strip()
        self.size = size if size is not None else int(raw) if raw.isdigit() else DEFAULT_MODELS
        self._items: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def __getitem__(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            self._items.move_to_end(key)
            return self._items[key]

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:
        with self._lock:
            if self.size <= 0:
                return
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __delitem__(self, key: tuple[Any, ...]) -> None:
        with self._lock:
            del self._items[key]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        with self._lock:
            return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)


def queue_device(name: str) -> str:
    """The device a job runs on, as its queue's name: ``auto``, ``cuda`` and ``cuda:0`` on one GPU are one
    queue (so two jobs never share its memory); a device this machine lacks is a usage error (422) now,
    not a failed job later."""
    from gantool.engine.runtime import resolve_device

    return str(resolve_device(name))


def pick_model(system: PluginSystem, spec: TaskSpec, model: str | None, values: dict[str, Any]) -> Path:
    """The model file a job runs: the named one (it must be a model of ``spec``) or the task's default."""
    name = model or spec.default_weights_for(build(spec.infer_options, values))
    if not name:
        raise UsageError(f"task {spec.name!r} has no bundled model; choose one (see `gantool models list`)")
    found, path = resolve_model(system, name)
    if found.name != spec.name:
        raise UsageError(f"model {name!r} is a {found.name!r} model, not a {spec.name!r} one")
    if not path.is_file():
        raise CheckpointError(f"model '{path}' not found")
    return path


def run_job(system: PluginSystem, job: Job, models: ModelLRU | None = None) -> None:
    """The :class:`~gantool.ui.jobs.JobQueue` runner: an image or a generation job (``models``: kept loaded)."""
    spec = system.registry.get(job.task)
    values = dict(job.request["values"])
    model_path = Path(job.request["model_path"])
    task_options = build(spec.infer_options, values)
    job.outputs.mkdir(parents=True, exist_ok=True)
    if spec.kind == "sample":
        _generate(job, spec, model_path, values, task_options, models)
    else:
        _transform(job, spec, model_path, values, task_options, models)


def _shared(owner: type, values: dict[str, Any], **fixed: Any) -> Any:
    names = {field.name for field in dataclasses.fields(owner)}
    return owner(**{**{name: value for name, value in values.items() if name in names}, **fixed})


def _transform(job: Job, spec: TaskSpec, model_path: Path, values: dict[str, Any], task_options: Any,
               models: ModelLRU | None) -> None:
    from gantool.engine.inference import run_inference

    images: list[str] = job.request["images"]
    masks: list[str] = job.request.get("masks", [])
    options = _shared(InferenceOptions, values, output=job.outputs, model=str(model_path))
    mask_name = spec.inputs[1].name if len(spec.inputs) > 1 else "mask"
    for index, name in enumerate(images):
        job.step(index, len(images), f"image {index + 1} of {len(images)}: {name}")
        companions = {}
        if masks:
            companions[mask_name] = str(job.inputs / "masks" / masks[index if len(masks) > 1 else 0])
        try:
            with observe_tiles(job.tile):  # progress, and a cancel, between the tiles of a large image
                result = run_inference(spec=spec, model_path=model_path, options=options, task_options=task_options,
                                       inputs=[str(job.inputs / name)], companions=companions or None,
                                       model_cache=models)
        except GantoolError:
            if job.cancel_requested.is_set():  # the pipeline failed the image the cancel stopped: not an error
                raise Cancelled from None
            raise
        job.results.extend({"input": name, "output": item.output.name, "kind": "image"}
                           for item in result.items if item.output is not None)
    job.step(len(images), len(images), "done")


def _generate(job: Job, spec: TaskSpec, model_path: Path, values: dict[str, Any], task_options: Any,
              models: ModelLRU | None) -> None:
    from gantool.engine.sampling import run_sampling

    count = int(values.get("count", 16))
    grid = bool(values.get("grid", False))
    ends = [*range(SAMPLE_CHUNK, count, SAMPLE_CHUNK), count]
    drawn = 0
    result = None
    for end in ends:
        job.step(drawn, count, f"generating images {drawn + 1}-{end} of {count}")
        options = _shared(SampleOptions, values, output=job.outputs, model=str(model_path), count=end,
                          grid=grid and end == count, overwrite=False)
        result = run_sampling(spec=spec, model_path=model_path, options=options, task_options=task_options,
                              model_cache=models)
        drawn = end
    assert result is not None
    job.results.extend({"input": None, "output": path.name, "kind": "sample"} for path in result.images)
    if result.grid is not None:
        job.results.append({"input": None, "output": result.grid.name, "kind": "grid"})
    job.step(count, count, "done")
