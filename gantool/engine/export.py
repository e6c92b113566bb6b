"""Export trained inference networks as one self-describing ``.safetensors`` file, and load it back.

The file's header metadata is the model card (all values strings, keys prefixed ``gantool.``):

- ``gantool.task``, ``gantool.version``, ``gantool.torch_version``
- ``gantool.inference_networks``: JSON list of the network names stored (``Task.inference_network_names()``)
- ``gantool.train_options``: JSON of the task's full training options, from which the architecture is
  rebuilt (``spec.train_options(**known_fields)``; unknown keys ignored, missing ones take defaults)
- ``gantool.architecture``: short human text (the task's ``export_metadata`` may replace it)
- ``gantool.scale`` (``Task.scale``), ``gantool.kind``, ``gantool.color_space``, ``gantool.value_range``
- ``gantool.command``, ``gantool.data``, ``gantool.steps``: how the weights were made

Tensors are named ``<network>.<parameter>``. Loading never unpickles anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

import gantool
from gantool.engine.checkpoint import flatten, unflatten
from gantool.engine.modelcheck import check_shapes_before_building
from gantool.engine.runtime import tune_cpu_allocator
from gantool.errors import CheckpointError, PluginError, few
from gantool.plugin.options import check_range, coerce, to_plain
from gantool.weights import read_metadata

if TYPE_CHECKING:
    from gantool.plugin.spec import TaskSpec
    from gantool.plugin.task import Task


@dataclass
class LoadedModel:
    """A task rebuilt from a model file, with its inference networks loaded and in eval mode."""

    task: Task
    networks: dict[str, nn.Module]
    metadata: dict[str, str]

    @property
    def scale(self) -> int:
        """Output size / input size: the file's ``gantool.scale``, else the rebuilt task's own."""
        try:
            return int(self.metadata.get("gantool.scale") or self.task.scale)
        except ValueError:
            raise CheckpointError(f"model metadata 'gantool.scale' is not an integer: "
                                  f"{self.metadata.get('gantool.scale')!r}") from None


def describe_networks(networks: Mapping[str, nn.Module]) -> str:
    """Default ``gantool.architecture``: class name and parameter count of each network."""
    parts = []
    for name, network in networks.items():
        count = sum(p.numel() for p in network.parameters())
        parts.append(f"{name}: {type(network).__name__} ({count / 1e6:.3g}M parameters)")
    return "; ".join(parts)


def export_model(path: Path, task: Task, networks: Mapping[str, nn.Module], *, command: str = "",
                 data: str | Path | None = None, steps: int | None = None) -> Path:
    """Write ``networks`` (usually the EMA inference networks) and the model card to ``path``, atomically.

    Returns the path written (``.safetensors`` is appended when missing).
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    spec = task.spec
    names = tuple(task.inference_network_names())
    missing = [name for name in names if name not in networks]
    if missing:
        raise ValueError(f"export of task {spec.name!r} lacks inference networks {missing}")
    chosen = task.prepare_for_export({name: networks[name] for name in names})
    metadata = {
        "gantool.task": spec.name,
        "gantool.version": gantool.__version__,
        "gantool.torch_version": torch.__version__,
        "gantool.inference_networks": json.dumps(list(names)),
        "gantool.train_options": json.dumps(to_plain(task.options), sort_keys=True),
        "gantool.architecture": describe_networks(chosen),
        "gantool.scale": str(task.scale),
        "gantool.kind": spec.kind,
        "gantool.command": command,
        "gantool.data": "" if data is None else str(data),
        "gantool.steps": "" if steps is None else str(steps),
    }
    metadata.update({str(key): str(value) for key, value in task.export_metadata().items()})
    tensors = flatten({name: network.state_dict() for name, network in chosen.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(temporary), metadata=metadata)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def train_options_from_metadata(spec: TaskSpec, metadata: Mapping[str, str]) -> Any:
    """Rebuild ``spec.train_options`` from ``gantool.train_options``: unknown keys ignored, missing defaulted."""
    if spec.train_options is None:
        return None
    try:
        stored = json.loads(metadata.get("gantool.train_options", "{}") or "{}")
    except json.JSONDecodeError:
        raise CheckpointError("model metadata 'gantool.train_options' is not valid JSON") from None
    if not isinstance(stored, dict):
        raise CheckpointError("model metadata 'gantool.train_options' is not a JSON object")
    hints = typing.get_type_hints(spec.train_options)
    values = {}
    for field in dataclasses.fields(spec.train_options):
        if field.init and field.name in stored:
            try:
                values[field.name] = check_range(field, coerce(stored[field.name], hints[field.name]))
            except ValueError as error:
                raise CheckpointError(f"model option {field.name!r}: {error}") from None
    return spec.train_options(**values)


def load_model(path: Path, spec: TaskSpec, *, device: torch.device | str = "cpu") -> LoadedModel:
    """Rebuild the task from a model file's metadata and load its inference networks (eval, no grads).

    The networks are exactly ``task.inference_network_names()`` of the task rebuilt from the file's
    options, which must be the names the file says it stores (``gantool.inference_networks``).

    Raises:
        CheckpointError: missing or non-safetensors file, another task's model, another set of networks
            than the rebuilt task expects, or weights that do not match the rebuilt networks (missing or
            unexpected keys, wrong shapes).
        PluginError: the task's ``build_inference_networks()`` lacks one of its own network names.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model '{path}' does not exist")
    metadata = read_metadata(path)
    owner = metadata.get("gantool.task")
    if owner != spec.name:
        raise CheckpointError(f"model '{path}' is for task {owner!r}, not {spec.name!r}"
                              if owner else f"model '{path}' has no gantool.task metadata; not a gantool model")
    try:
        options = train_options_from_metadata(spec, metadata)
    except CheckpointError as error:
        raise CheckpointError(f"model '{path}': {error}; the file is damaged or was edited") from None
    task = spec.load_implementation()(spec, options)
    check_shapes_before_building(path, task, tuple(task.inference_network_names()))  # before any allocation
    try:
        tensors = unflatten(load_file(str(path)))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read model '{path}': {str(error).splitlines()[0]}") from None
    if torch.device(device).type == "cpu":
        tune_cpu_allocator()  # every user of a loaded model runs it; on the CPU that wants the allocator tuned
    names = tuple(task.inference_network_names())
    stored = _stored_network_names(path, metadata)
    if stored is not None and sorted(stored) != sorted(names):
        raise CheckpointError(f"model '{path}' stores networks {stored}, but task {spec.name!r} rebuilt from its "
                              f"options expects {list(names)}; was it exported by another version of the task?")
    built = task.build_inference_networks()
    missing = [name for name in names if name not in built]
    if missing:
        raise PluginError(f"{type(task).__name__}.build_inference_networks() lacks {missing} of its "
                          f"inference_network_names() {list(names)}")
    networks = {name: built[name] for name in names}
    for name, network in networks.items():
        state = tensors.pop(name, None)
        if state is None:
            raise CheckpointError(f"model '{path}' has no weights for network {name!r}")
        _load_strict(path, name, network, state)
        network.to(device).eval().requires_grad_(False)
    if tensors:
        raise CheckpointError(f"model '{path}' has weights for unexpected networks {sorted(tensors)}")
    return LoadedModel(task=task, networks=networks, metadata=metadata)


def _stored_network_names(path: Path, metadata: Mapping[str, str]) -> list[str] | None:
    """``gantool.inference_networks`` as a list, or None when the file does not say."""
    text = metadata.get("gantool.inference_networks")
    if not text:
        return None
    try:
        names = json.loads(text)
    except json.JSONDecodeError:
        names = None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise CheckpointError(f"model '{path}': metadata 'gantool.inference_networks' is not a JSON list of names")
    return names


def _load_strict(path: Path, name: str, network: nn.Module, state: dict[str, torch.Tensor]) -> None:
    expected = network.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = "; ".join(part for part in (
            f"missing {few(missing)}" if missing else "", f"unexpected {few(unexpected)}" if unexpected else "")
            if part)
        raise CheckpointError(f"model '{path}' does not fit network {name!r} ({detail}); "
                              "was it exported by another version of the task?")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(f"model '{path}': {name}.{key} has shape {tuple(tensor.shape)}, the network "
                                  f"expects {tuple(expected[key].shape)}")
    network.load_state_dict(state)
