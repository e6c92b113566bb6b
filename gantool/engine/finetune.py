"""``gantool train TASK --init MODEL``: start a run from a model file's weights instead of a fresh draw.

Fine-tuning (a bundled model on your own photos, or a finished run with another loss) needs the model's
inference networks in the new run's networks, and nothing else of the old run: its optimizer moments,
schedule and data position are not in a model file, and the other networks (critics) start fresh. The
architecture options must match the model's (they are in its ``gantool.train_options``); when they do not,
the error names the options that differ instead of a tensor shape.

``--init`` also takes a run's checkpoint folder: then every network in it is loaded, critics included, and
only the optimizer moments, schedule and data position start fresh. That continues a run whose optimizer
state stayed behind: a GPU lease can bring back a run's networks but not its Adam moments (twice their
size), and a fresh critic costs what the run had gained (docs/cyclegan.md), while fresh moments refill
within about 1 / (1 - beta2) steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn
from torch.nn.utils import parametrize

from gantool.engine.checkpoint import META_FILE, NETWORKS_FILE, unflatten
from gantool.engine.export import load_model
from gantool.engine.resume import changed_options
from gantool.errors import CheckpointError, UsageError
from gantool.plugin.options import to_plain
from gantool.plugin.spec import TaskSpec
from gantool.weights import read_metadata, resolve_model_path


def load_initial_weights(networks: Mapping[str, nn.Module], spec: TaskSpec, task_options: Any, source: str) -> str:
    """Copy the inference networks of model ``source`` (a name or a path) into ``networks``; returns a note.

    Raises:
        UsageError: another task's model, or networks that do not fit (with the options that differ).
        CheckpointError: a missing or damaged file (from :func:`load_model`).
    """
    if Path(source).is_dir():
        return load_checkpoint_networks(networks, spec, Path(source))
    path = resolve_model_path(source)
    model = load_model(path, spec)  # refuses another task's file, damaged files, unexpected networks
    for name, network in model.networks.items():
        target = networks.get(name)
        if target is None:
            raise UsageError(f"--init '{path}': this run has no network {name!r} to load it into")
        try:
            load_plain_weights(target, network.state_dict())
        except RuntimeError as error:
            before = to_plain(model.task.options) if model.task.options is not None else {}
            differ = changed_options(before, to_plain(task_options))
            why = f"options that differ: {differ}" if differ else str(error).splitlines()[0][:160]
            raise UsageError(f"--init '{path}': its {name!r} does not fit this run's ({why}); pass the model's "
                             "architecture options (see its gantool.train_options)") from None
    steps = read_metadata(path).get("gantool.steps") or "?"
    fresh = sorted(set(networks) - set(model.networks))
    return (f"initialised {', '.join(model.networks)} from '{path}' (trained {steps} steps)"
            + (f"; {', '.join(fresh)} {'starts' if len(fresh) == 1 else 'start'} fresh" if fresh else ""))


def load_checkpoint_networks(networks: Mapping[str, nn.Module], spec: TaskSpec, folder: Path) -> str:
    """Copy every network of checkpoint ``folder`` (its ``networks.safetensors``) into ``networks``; a note.

    ``meta.json`` is optional (a folder brought back with the networks alone still loads); when present,
    its task must be this run's. Weights stored in a lower precision are widened to the run's.

    Raises:
        UsageError: not a checkpoint folder, another task's, or networks that do not fit this run.
        CheckpointError: an unreadable networks file.
    """
    file = folder / NETWORKS_FILE
    if not file.is_file():
        raise UsageError(f"--init '{folder}': a folder must be a run's checkpoint (step-NNNNNN, holding "
                         f"{NETWORKS_FILE})")
    meta: dict[str, Any] = {}
    if (folder / META_FILE).is_file():
        try:
            meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"--init '{folder}': cannot read {META_FILE}: {error}") from None
        if meta.get("task", spec.name) != spec.name:
            raise UsageError(f"--init '{folder}': a checkpoint of task {meta.get('task')!r}, not {spec.name!r}")
    try:
        state = unflatten(load_file(str(file)))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"--init '{folder}': {NETWORKS_FILE} is corrupt: {str(error).splitlines()[0]}") from None
    for name, weights in state.items():
        target = networks.get(name)
        if target is None:
            raise UsageError(f"--init '{folder}': this run has no network {name!r} to load it into")
        try:
            target.load_state_dict(weights)
        except RuntimeError as error:
            why = str(error).splitlines()[0][:160]
            raise UsageError(f"--init '{folder}': its {name!r} does not fit this run's ({why}); pass the "
                             "run's options (its config.toml)") from None
    fresh = sorted(set(networks) - set(state))
    return (f"initialised {', '.join(state)} from checkpoint '{folder}' (step {meta.get('step', '?')}); "
            "optimizer moments start fresh" + (f", and so {'does' if len(fresh) == 1 else 'do'} {', '.join(fresh)}"
                                                if fresh else ""))


#: Power iterations that bring a spectral-norm layer's singular-value estimate to a loaded weight.
POWER_ITERATIONS = 30


def load_plain_weights(target: nn.Module, state: Mapping[str, Tensor]) -> None:
    """``state`` (plain ``weight`` keys, as exported) into ``target``, whose layers may train with spectral norm.

    An exported file stores spectral norm folded (the normalised weight). A parametrized layer takes that
    weight as its ``original``: its largest singular value is then about 1, so the normalisation leaves it
    as it is once the layer's singular-value estimate has caught up, which a few power iterations do.
    """
    parametrized = {prefix for prefix, layer in target.named_modules() if parametrize.is_parametrized(layer, "weight")}
    if not parametrized:
        target.load_state_dict(state)
        return
    mapped = dict(target.state_dict())  # the power-iteration vectors stay the target's own
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf == "weight" and prefix in parametrized:
            key = f"{prefix}.parametrizations.weight.original"
        elif key not in mapped:
            raise RuntimeError(f"unexpected key {key!r}")
        mapped[key] = value
    target.load_state_dict(mapped)
    with torch.no_grad():
        for prefix in parametrized:
            weights: Any = getattr(target.get_submodule(prefix), "parametrizations").weight  # noqa: B009
            for normalise in weights:
                normalise.train()  # a training-mode call runs one power iteration on its buffers
                for _ in range(POWER_ITERATIONS):
                    normalise(weights.original)
