"""``gantool models import FILE.pth``: published generator weights as a self-describing gantool model.

The file is read with ``torch.load(weights_only=True)``: tensors only, never pickled code. Which published
layout it is comes from the tasks: each task card lists the layouts it can import
(``TaskSpec.weights_layouts``), each recognised by its tensor names (or named with ``--arch``) and renamed
by the plugin's own converter into the networks the task builds. This module knows no layout: it reads
the file, picks the layout, and has the task rebuild its networks from the options the converter read
off the shapes, load the tensors strictly and export the model.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from gantool.errors import CheckpointError, UsageError
from gantool.plugin.manager import PluginSystem
from gantool.plugin.spec import TaskSpec, WeightsLayout

StateDict = dict[str, torch.Tensor]
_WRAPPERS = ("params_ema", "params", "state_dict", "model_state_dict", "generator", "netG", "model")


@dataclass(frozen=True)
class Converted:
    """A published state dict renamed for one task: its train options and its networks' state dicts.

    A layout's converter fills ``options``, ``networks`` and ``description``; ``task`` is set by
    :func:`convert` from the card that declared the layout.
    """

    options: dict[str, Any]
    networks: dict[str, StateDict]
    description: str
    task: str = ""


def read_state_dict(path: Path) -> StateDict:
    """The tensors of a ``.pth``/``.pt``/``.ckpt`` (``weights_only``) or ``.safetensors`` file, unwrapped.

    Raises:
        CheckpointError: missing file, pickled code, or no dict of tensors inside.
    """
    if not path.is_file():
        raise CheckpointError(f"cannot import '{path}': no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        loaded: Any = load_file(str(path))
    else:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            code = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
            if code is None:  # not a pickle of anything ("Unsupported operand", "invalid load key")
                raise CheckpointError(f"cannot import '{path}': not a PyTorch weights file") from None
            raise CheckpointError(f"cannot import '{path}': it holds pickled Python objects ({code[1]}), not only "
                                  "tensors, and gantool never unpickles code; re-save its state_dict() with torch.save"
                                  ) from None
        except (RuntimeError, EOFError, OSError, ValueError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise CheckpointError(f"cannot import '{path}': not a PyTorch weights file ({first})") from None
    for _ in range(3):  # {"params_ema": {...}} (BasicSR), {"state_dict": {...}}, ...
        if isinstance(loaded, dict) and not _all_tensors(loaded):
            inner = next((loaded[key] for key in _WRAPPERS if isinstance(loaded.get(key), dict)), None)
            if inner is None:
                break
            loaded = inner
    if not isinstance(loaded, dict) or not loaded or not _all_tensors(loaded):
        raise CheckpointError(f"cannot import '{path}': no state dict of tensors inside")
    return {re.sub(r"^module\.", "", str(key)): value for key, value in loaded.items()}


def _all_tensors(mapping: dict[Any, Any]) -> bool:
    return all(isinstance(value, torch.Tensor) for value in mapping.values())


def layer_indices(keys: StateDict, pattern: str) -> list[int]:
    """Sorted distinct integers captured by ``pattern``'s first group over the tensor names (block counts)."""
    return sorted({int(m.group(1)) for key in keys if (m := re.fullmatch(pattern, key))})


def known_layouts(system: PluginSystem) -> dict[str, tuple[TaskSpec, WeightsLayout]]:
    """Every layout the installed tasks can import, by ``--arch`` name, sorted (first task wins a name)."""
    found: dict[str, tuple[TaskSpec, WeightsLayout]] = {}
    for spec in system.registry.specs():
        for layout in spec.weights_layouts:
            found.setdefault(layout.name, (spec, layout))
    return dict(sorted(found.items()))


def convert(system: PluginSystem, sd: StateDict, arch: str | None, *, source: Path,
            reverse: StateDict | None = None) -> Converted:
    """Recognise (or take ``arch``) and rename; one-line ``CheckpointError``/``UsageError`` otherwise."""
    layouts = known_layouts(system)
    names = "|".join(layouts) or "(no installed task imports published weights)"
    if arch is not None and arch not in layouts:
        raise UsageError(f"--arch {arch!r} is not a known layout; choose one of {', '.join(layouts)}")
    matches = [name for name, (_, layout) in layouts.items() if all(key in sd for key in layout.signature)]
    name = arch or (matches[0] if len(matches) == 1 else None)
    if name is None:
        seen = ", ".join(f"{key} {tuple(value.shape)}" for key, value in list(sd.items())[:4])
        raise CheckpointError(f"cannot tell the architecture of '{source}' ({len(sd)} tensors: {seen} ...); pass "
                              f"--arch {names}")
    if arch is not None and arch not in matches:
        seen = ", ".join(list(sd)[:4])
        raise CheckpointError(f"'{source}' is not a complete {arch} layout (its tensors are named {seen} ...)")
    spec, layout = layouts[name]
    if reverse is not None and not layout.takes_reverse:
        raise UsageError(f"--reverse is not used by the {name} layout (it is for a second generator, such as "
                         "CycleGAN's BtoA)")
    try:
        converted = layout.load_converter()(sd, reverse)
    except (KeyError, IndexError) as error:
        raise CheckpointError(f"'{source}' is not a complete {name} layout (missing {error})") from None
    return replace(converted, task=spec.name)


def import_model(system: PluginSystem, source: Path, output: Path, *, arch: str | None = None,
                 reverse: Path | None = None) -> tuple[Path, Converted]:
    """Convert ``source`` and write ``output`` through the task's own export (``gantool.command`` says how)."""
    from gantool.engine.export import export_model

    converted = convert(system, read_state_dict(source), arch, source=source,
                        reverse=read_state_dict(reverse) if reverse is not None else None)
    if converted.task not in system.registry:
        raise CheckpointError(f"'{source}' is a {converted.task!r} model, and no installed plugin provides that task")
    spec = system.registry.get(converted.task)
    from gantool.plugin.options import build

    task = spec.load_implementation()(spec, build(spec.train_options, converted.options))
    networks = task.build_inference_networks()
    for name, network in networks.items():
        try:
            network.load_state_dict(converted.networks[name], strict=True)
        except RuntimeError as error:
            detail = " ".join(str(error).split())[:300]
            raise CheckpointError(f"'{source}' does not fit gantool's {converted.description}: {detail}") from None
    command = f"gantool models import {source}" + (f" --reverse {reverse}" if reverse else "")
    written = export_model(output, task, networks, command=command, data=f"imported: {converted.description}")
    return written, converted
