"""Checking a model file against the networks its metadata describes, before anything is allocated.

A model file is untrusted input: its ``gantool.train_options`` decide how big the networks are. The option
values are range-checked when they are read (``flag(min=, max=)``, :func:`check_options`), and the
networks are first built on PyTorch's ``meta`` device, where a layer costs no memory, so that their
parameter shapes can be compared with the shapes the file's header declares. Only a file whose tensors
fit the rebuilt networks exactly gets real networks built, and then the weights' own size bounds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.overrides import TorchFunctionMode

from gantool.errors import CheckpointError, few
from gantool.weights import tensor_shapes

if TYPE_CHECKING:
    from gantool.plugin.task import Task


def check_shapes_before_building(path: Path, task: Task, names: Sequence[str]) -> None:
    """``CheckpointError`` when the header's tensors do not match ``task``'s networks ``names`` built on
    the meta device (missing, unexpected or differently shaped weights). A task whose networks cannot be
    built on the meta device is checked later, against the real networks, as before."""
    stored = tensor_shapes(path)
    try:
        with torch.device("meta"), _SkipMetaFills():
            built = task.build_inference_networks()
    except Exception:  # noqa: BLE001 - e.g. a network that computes something at init; the real build checks
        return
    for name in names:
        if name not in built:
            continue  # the real build reports it (PluginError)
        expected = {key: tuple(value.shape) for key, value in built[name].state_dict().items()}
        prefix = f"{name}."
        found = {key[len(prefix):]: shape for key, shape in stored.items() if key.startswith(prefix)}
        missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        if missing or unexpected:
            detail = "; ".join(part for part in (f"missing {few(missing)}" if missing else "",
                                                 f"unexpected {few(unexpected)}" if unexpected else "") if part)
            raise CheckpointError(f"model '{path}' does not fit network {name!r} ({detail}); the file is damaged, "
                                  "was edited, or was exported by another version of the task")
        for key, shape in expected.items():
            if found[key] != shape:
                raise CheckpointError(f"model '{path}': {name}.{key} has shape {found[key]}, but the options in "
                                      f"the file describe {shape}; the file is damaged or was edited")


#: In-place ops that only change values (init schemes, fills, scaling): meaningless on the meta device.
_VALUE_FILLS = frozenset({"normal_", "uniform_", "zero_", "fill_", "copy_", "mul_", "add_", "sub_", "div_", "clamp_",
                          "erfinv_", "exponential_", "random_", "bernoulli_", "log_normal_", "cauchy_", "geometric_"})


class _SkipMetaFills(TorchFunctionMode):
    """Skip value-only in-place ops on meta tensors while networks are built for the shape check.

    Their meta kernels are Python decompositions, and the first one imports ``torch._dynamo``: 1.7 s of a
    one-image command's start, for values that a meta tensor does not have. Shapes are unaffected.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")  # nn.init functions pass it by keyword
        if getattr(func, "__name__", "") in _VALUE_FILLS and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **kwargs)
