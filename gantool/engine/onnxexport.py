"""``gantool export MODEL --format onnx``: a model's whole per-tile pipeline as one ONNX graph, then a parity check.

The graph is ``task.predict`` itself (or ``task.onnx_predict``, a task's traceable core when its predict
calls OpenCV), traced by PyTorch's ONNX exporter (``dynamo=True``) with dynamic height and width: one input
per input of the task's card (``image`` ``(1, 3, H, W)`` float32 RGB in [0, 1]; inpaint adds ``mask``
``(1, 1, H, W)``) and output ``output`` ``(1, 3, H*s, W*s)`` in [0, 1], so whatever the task does between
the two (range mapping to [-1, 1], Lab conversion, padding to a multiple of the network's stride, the
clamp) is inside the graph. What the CLI does around ``predict`` stays outside, as it is the same for every
task: gray and alpha handling, tiling, and ``Task.postprocess`` (superres ``--outscale``); the file's
``gantool.onnx.outside_graph`` metadata lists it (``Task.onnx_outside_graph``).

After writing, the file is run with onnxruntime at a few sizes that are not multiples of 8, and its output
compared with PyTorch's: the max absolute error and the PSNR between the two are printed, and an error
above the tolerance fails the export (the file is removed).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gantool.engine.export import load_model
from gantool.engine.inference import check_servable
from gantool.errors import CheckpointError, UsageError
from gantool.plugin.spec import TaskSpec

#: Sizes (H, W) of the parity check: none a multiple of 8 (nor of 4); wide, tall, and one larger than the
#: working size of tasks that resize (colorize's 256), so both branches of such code are compared.
PARITY_SIZES: tuple[tuple[int, int], ...] = ((37, 53), (67, 45), (283, 347))
#: Largest max-abs difference (on [0, 1] values) between onnxruntime and PyTorch that passes.
TOLERANCE = 1e-3
EXPORT_SIZE = 64


@dataclass(frozen=True)
class Parity:
    """One parity measurement: the input size, the max absolute error and the PSNR (dB) between the outputs."""

    height: int
    width: int
    max_abs: float
    psnr: float


class Pipeline(nn.Module):
    """``task.onnx_predict`` (by default ``predict``) with fixed task options as a module: what the graph holds.

    It takes one tensor per input of the task's card, in declared order; a task with several inputs gets
    them as a dict keyed by input name, as ``predict`` does.
    """

    def __init__(self, task: Any, networks: dict[str, nn.Module], task_options: Any, names: Sequence[str]) -> None:
        super().__init__()
        self.task, self.options, self.names = task, task_options, tuple(names)
        self.networks = nn.ModuleDict(networks)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        given: Any = inputs[0] if len(inputs) == 1 else dict(zip(self.names, inputs, strict=True))
        return self.task.onnx_predict(dict(self.networks), given, self.options).clamp(0, 1)


def export_onnx(spec: TaskSpec, model_path: Path, output: Path, task_options: Any, *,
                sizes: Sequence[tuple[int, int]] = PARITY_SIZES, tolerance: float = TOLERANCE,
                opset: int = 18) -> list[Parity]:
    """Write ``output`` and check it against PyTorch at ``sizes``; raises ``CheckpointError`` beyond ``tolerance``.

    Raises:
        UsageError: onnx/onnxruntime missing, or a task that does not export (generation).
    """
    if spec.kind != "image-to-image":
        raise UsageError(f"task {spec.name!r} does not export to ONNX yet (only image-to-image tasks: superres, "
                         "colorize, pix2pix, cyclegan, cut, inpaint)")
    try:
        import onnx  # noqa: F401  # the exporter needs it; checked here for a one-line message
        import onnxruntime
    except ImportError as error:
        raise UsageError(f"ONNX export needs gantool's export extra, onnx, onnxscript and onnxruntime: pip install "
                         f"onnx onnxscript onnxruntime ({error})") from None
    model = load_model(model_path, spec, device="cpu")
    check_servable(model, model_path, task_options)
    names = [item.name for item in spec.inputs]
    channels = [item.channels for item in spec.inputs]
    pipeline = Pipeline(model.task, model.networks, task_options, names).eval()
    example = _inputs(channels, EXPORT_SIZE, EXPORT_SIZE, seed=0)
    height, width = torch.export.Dim("height", min=16, max=8192), torch.export.Dim("width", min=16, max=8192)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # several inputs share the height and width axes; the exporter says so once per shared name
            warnings.filterwarnings("ignore", message=".*The axis name", category=UserWarning)
            shapes = (tuple({2: height, 3: width} for _ in names),)  # one entry: forward(*inputs)
            program = torch.onnx.export(pipeline, example, dynamo=True, opset_version=opset, dynamic_shapes=shapes,
                                        input_names=names, output_names=["output"], verbose=False)
            assert program is not None
            program.save(str(output))
        _annotate(output, model.metadata, model.scale, spec, model.task.onnx_outside_graph)
    except Exception as error:  # the exporter raises many types; one line naming the task is what helps
        output.unlink(missing_ok=True)
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"ONNX export of task {spec.name!r} failed: {first[:300]}") from None
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    results = []
    for index, (h, w) in enumerate(sizes):
        given = _inputs(channels, h, w, seed=index + 1)
        with torch.no_grad():
            expected = pipeline(*given).numpy()
        got = session.run(["output"], {name: tensor.numpy() for name, tensor in zip(names, given, strict=True)})[0]
        if got.shape != expected.shape:
            output.unlink(missing_ok=True)
            raise CheckpointError(f"ONNX parity: at {h}x{w} onnxruntime gave {got.shape}, PyTorch {expected.shape}")
        gap = float(np.abs(got - expected).max())
        mse = float(np.mean((got.astype(np.float64) - expected) ** 2))
        results.append(Parity(h, w, gap, math.inf if mse == 0 else 10 * math.log10(1 / mse)))
    worst = max(results, key=lambda r: r.max_abs)
    if worst.max_abs > tolerance:
        output.unlink(missing_ok=True)
        raise CheckpointError(f"ONNX parity failed for task {spec.name!r}: max abs error {worst.max_abs:.2e} at "
                              f"{worst.height}x{worst.width} exceeds {tolerance:.0e}; the file was removed")
    return results


def _inputs(channels: Sequence[int], height: int, width: int, *, seed: int) -> tuple[torch.Tensor, ...]:
    """One example per input: a photo-like image for RGB inputs, a mask of blobs (0 or 1) for one-channel ones."""
    return tuple(_photo(height, width, seed=seed + 100 * index) if count == 3 else _blobs(height, width, seed=seed)
                 for index, count in enumerate(channels))


def _blobs(height: int, width: int, *, seed: int) -> torch.Tensor:
    """``(1, 1, H, W)``: smooth random blobs thresholded to 0 and 1 (about a third is 1)."""
    field = _photo(height, width, seed=seed + 50)[:, :1]
    return (field > field.quantile(0.66)).float()


def _photo(height: int, width: int, *, seed: int) -> torch.Tensor:
    """A smooth colour image with some texture (parity on pure noise says little about photos)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(height // 8, 2), max(width // 8, 2), generator=generator)
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return (0.85 * smooth + 0.15 * torch.rand(1, 3, height, width, generator=generator)).clamp(0, 1)


def _annotate(path: Path, metadata: dict[str, str], scale: int, spec: TaskSpec, outside: Sequence[str]) -> None:
    """Copy the model card into the ONNX file's metadata and state the tensor conventions."""
    import onnx

    graph = onnx.load(str(path), load_external_data=True)
    props = {key: value for key, value in metadata.items() if key.startswith("gantool.")}
    described = [f"{item.name}: (1, {item.channels}, H, W) float32 {'RGB' if item.channels == 3 else 'one channel'} "
                 "in [0, 1]" for item in spec.inputs]
    props.update({"gantool.onnx.input": "; ".join(described) + ", any H, W >= 16",
                  "gantool.onnx.output": f"output: (1, 3, H*{scale}, W*{scale}) float32 RGB in [0, 1]",
                  "gantool.onnx.outside_graph": json.dumps(list(outside))})
    del graph.metadata_props[:]
    for key, value in props.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    onnx.save(graph, str(temporary))
    os.replace(temporary, path)
