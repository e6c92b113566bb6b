"""A model loaded for the Python API (``gantool.load``): the CLI's per-image pipeline on arrays and files.

Nothing here computes anything the CLI does not: an image goes through the same
:func:`~gantool.engine.processor.make_processor` (gray, alpha, 16-bit, tiling, ``postprocess``) and a
generation model draws through :func:`~gantool.engine.sampling.draw_images`, so ``model(x)`` equals what
``gantool VERB`` writes, up to the file's quantisation. The arrays are converted here and only here:
``(H, W)``, ``(H, W, 1|2|3|4)`` gray, gray + alpha, RGB, RGBA; uint8, uint16 or float in [0, 1]. The result
has the input's layout convention and dtype (a path gives the file's depth: uint8, uint16 or float32).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gantool.engine.inference import check_servable, load_for_inference, resolve_tile
from gantool.engine.processor import make_processor
from gantool.engine.runtime import Runtime
from gantool.engine.sampling import checked_truncation, draw_images, resolve_label
from gantool.errors import UsageError
from gantool.image.io import Image, read_image
from gantool.image.tensor import to_array
from gantool.plugin.common import InferenceOptions
from gantool.plugin.spec import TaskSpec
from gantool.plugin.task import SampleRequest

_DEPTHS = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}


class Model:
    """A model file's task with its networks loaded; call it on an image, or ``generate`` for sample tasks.

    Attributes:
        info: the model card, the file's metadata (``gantool.task``, ``gantool.summary``, ...).
        spec: the task card; ``path``: the model file; ``scale``: output size / input size.
    """

    def __init__(self, spec: TaskSpec, path: Path, options: InferenceOptions, task_options: Any) -> None:
        self.spec, self.path, self.task_options = spec, Path(path), task_options
        self.runtime = Runtime.from_options(options, distributed=False)
        loaded = load_for_inference(self.path, spec, self.runtime)
        check_servable(loaded, self.path, task_options)
        self.task, self.networks, self.info, self.scale = loaded.task, loaded.networks, loaded.metadata, loaded.scale
        self._tile, self._overlap = resolve_tile(options.tile), options.tile_overlap
        self._process: Any = None  # made on the first image: --tile auto measures the network then

    def __repr__(self) -> str:
        return f"<gantool model {self.path.name!r}: task {self.spec.name!r} on {self.runtime.device}>"

    # ------------------------------------------------------------------------------------ image tasks

    def __call__(self, image: np.ndarray | str | os.PathLike[str], /, **inputs: Any) -> np.ndarray:
        """Apply the task to one image (array or file); the task's other inputs by name (``mask=...``)."""
        if self.spec.kind != "image-to-image":
            raise UsageError(f"model '{self.path.name}' generates images (task {self.spec.name!r}); "
                             "call model.generate(count) or gantool.generate(...)")
        declared = [item.name for item in self.spec.inputs[1:]]
        unknown = sorted(set(inputs) - set(declared))
        if unknown:
            takes = ", ".join(declared) or "no other inputs"
            raise UsageError(f"task {self.spec.name!r} takes no input {unknown[0]!r} (it takes {takes})")
        primary, like = as_image(image, "image")
        companions = {name: as_image(value, name)[0] for name, value in inputs.items() if value is not None}
        if self._process is None:
            self._process = make_processor(self.task, self.networks, self.task_options, scale=self.scale,
                                           tile=self._tile, overlap=self._overlap, runtime=self.runtime)
        result = self._process(primary, companions) if len(self.spec.inputs) > 1 else self._process(primary)
        return as_array(result, like)

    # ------------------------------------------------------------------------------- generation tasks

    def generate(self, count: int = 1, *, seed: int = 0, label: str | int | None = None,
                 truncation: float | None = None, dtype: Any = np.uint8) -> list[np.ndarray]:
        """Images ``0 .. count - 1`` of ``seed``, the same as ``gantool generate -n COUNT --seed SEED`` writes.

        Returns ``(H, W, C)`` arrays, ``uint8`` (what the CLI's PNG files hold) or ``float32`` in [0, 1].
        """
        if self.spec.kind != "sample":
            raise UsageError(f"model '{self.path.name}' transforms images (task {self.spec.name!r}); call model(image)")
        if count < 1:
            raise UsageError(f"count must be at least 1, got {count}")
        request = SampleRequest(label=resolve_label(self.task, None if label is None else str(label)),
                                truncation=checked_truncation(self.task, truncation), task_options=self.task_options)
        batch = draw_images(self.task, self.networks, self.runtime, seed=seed, count=count, request=request)
        like = np.zeros((1, 1, 3), np.dtype(dtype))
        return [as_array(Image(to_array(image)), like) for image in batch]


def as_image(value: Any, name: str) -> tuple[Image, np.ndarray]:
    """An array or image file as an :class:`Image`, and an array whose dtype and rank the result copies."""
    if isinstance(value, str | os.PathLike):
        image = read_image(value)
        dtype = {8: np.uint8, 16: np.uint16}.get(image.bit_depth, np.float32)
        return image, np.zeros((1, 1, 1), dtype)
    array = np.asarray(value)
    if isinstance(value, torch.Tensor) or array.dtype == object:
        raise UsageError(f"{name}: pass a NumPy array (H, W[, C]) or a file path, not {type(value).__name__}")
    pixels = array[:, :, None] if array.ndim == 2 else array
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or 0 in pixels.shape:
        raise UsageError(f"{name}: expected an (H, W) or (H, W, C) array with C in 1-4, got shape {array.shape}")
    if array.dtype in _DEPTHS:
        depth = _DEPTHS[array.dtype]
        values = pixels.astype(np.float32) / np.float32(2**depth - 1)
    elif np.issubdtype(array.dtype, np.floating):
        depth = 32
        values = np.clip(np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    else:
        raise UsageError(f"{name}: pixels must be uint8, uint16 or float in [0, 1], got {array.dtype}")
    has_alpha = pixels.shape[2] in (2, 4)
    color = np.ascontiguousarray(values[..., :-1] if has_alpha else values)
    return Image(color, np.ascontiguousarray(values[..., -1:]) if has_alpha else None, depth), array


def as_array(image: Image, like: np.ndarray) -> np.ndarray:
    """``image`` in the layout and dtype of ``like``: alpha appended as the last channel, 2-D stays 2-D."""
    values = image.color if image.alpha is None else np.concatenate([image.color, image.alpha], axis=2)
    if like.ndim == 2 and values.shape[2] == 1:
        values = values[..., 0]
    values = np.clip(values, 0.0, 1.0)
    if like.dtype in _DEPTHS:
        top = 2 ** _DEPTHS[like.dtype] - 1
        return np.rint(values * top).astype(like.dtype)
    return values.astype(np.float32)
