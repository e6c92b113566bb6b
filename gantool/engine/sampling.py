"""Generation verbs (``kind="sample"``): images from noise through ``task.sample``, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gantool.engine.inference import load_for_inference
from gantool.engine.runtime import Runtime
from gantool.errors import PluginError, UsageError
from gantool.image.io import Image
from gantool.image.tensor import to_array

if TYPE_CHECKING:
    from gantool.plugin.common import SampleOptions
    from gantool.plugin.spec import TaskSpec

#: Images per ``task.sample`` call. Fixed (not device-dependent) so a seed gives the same images anywhere
#: the task's own random draws are reproducible.
SAMPLE_CHUNK = 8


def run_sampling(*, spec: TaskSpec, model_path: Path, options: SampleOptions, task_options: Any) -> list[Path]:
    """Generate ``options.count`` images with ``task.sample`` and write them to ``options.output``.

    Calls ``task.sample(networks, count=n, generator=g, options=task_options)`` in chunks of
    :data:`SAMPLE_CHUNK`, with one ``torch.Generator`` on the runtime device seeded with ``--seed`` (draw
    noise with ``device=generator.device``); it must return ``(n, C, H, W)`` in [0, 1]. Files are
    ``<task>-seed<seed>-<index>.<ext>``, so runs with different seeds do not overwrite each other.
    Returns the paths written.
    """
    from gantool.image.io import SUPPORTED_EXTENSIONS, write_image

    if spec.kind != "sample":
        raise UsageError(f"task {spec.name!r} transforms input images; use `gantool {spec.verb} IMAGES...`")
    ext = "." + options.ext.lower().lstrip(".")
    if ext not in SUPPORTED_EXTENSIONS:
        raise UsageError(f"--ext {options.ext!r} is not supported; use one of "
                         + ", ".join(sorted(e.lstrip(".") for e in SUPPORTED_EXTENSIONS)))
    with Runtime.from_options(options, distributed=False) as runtime:
        model = load_for_inference(model_path, spec, runtime)
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
