"""Atomic, self-contained training checkpoints for an exact resume, and finding them again.

A checkpoint is one folder in the run folder, named after the number of completed steps::

    runs/superres/step-000500/
        networks.safetensors   every network, unwrapped, as "<network>.<parameter>"
        ema.safetensors        EMA shadows of the inference networks (absent when EMA is off)
        state.pt               optimizers, schedulers, scaler, EMA counter, per-rank RNG states, data
                               position, per-rank task state; loaded only with weights_only=True
        meta.json              task, step, gantool/torch versions, world size, resolved options, command

It is written into ``.tmp-step-000500-<pid>/`` and renamed into place, so a folder named ``step-*``
is always complete: a crash mid-save leaves only a ``.tmp-*`` folder, removed by the next save. Only
the newest ``keep`` checkpoints are kept. Tensors never go through pickle.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from gantool.errors import CheckpointError

FORMAT_VERSION = 1
_NAME = re.compile(r"^step-(\d{6,})$")
NETWORKS_FILE, EMA_FILE, STATE_FILE, META_FILE = "networks.safetensors", "ema.safetensors", "state.pt", "meta.json"


@dataclass
class Checkpoint:
    """A loaded checkpoint: tensors by network, the small state and the human-readable meta."""

    path: Path
    meta: dict[str, Any]
    networks: dict[str, dict[str, Tensor]]
    ema: dict[str, dict[str, Tensor]] | None
    state: dict[str, Any]

    @property
    def step(self) -> int:
        return int(self.meta["step"])


def checkpoint_name(step: int) -> str:
    """``step-000123``: zero-padded so names sort like numbers."""
    return f"step-{step:06d}"


def flatten(modules: Mapping[str, Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """``{network: state_dict}`` to ``{"network.param": tensor}``, as contiguous CPU copies.

    Copies make tied or channels_last weights safe for safetensors (which refuses shared or strided
    storage); network names must not contain dots, so the split back is unambiguous.
    """
    flat: dict[str, Tensor] = {}
    for name, state in modules.items():
        if "." in name:
            raise ValueError(f"network name {name!r} must not contain '.'")
        for key, tensor in state.items():
            flat[f"{name}.{key}"] = tensor.detach().to("cpu").clone(memory_format=torch.contiguous_format)
    return flat


def unflatten(flat: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """Inverse of :func:`flatten`."""
    modules: dict[str, dict[str, Tensor]] = {}
    for key, tensor in flat.items():
        name, _, rest = key.partition(".")
        modules.setdefault(name, {})[rest] = tensor
    return modules


def save_checkpoint(
    run_dir: Path,
    step: int,
    *,
    networks: Mapping[str, Mapping[str, Tensor]],
    ema: Mapping[str, Mapping[str, Tensor]] | None,
    state: Mapping[str, Any],
    meta: Mapping[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint ``step`` atomically into ``run_dir`` and prune to the newest ``keep``.

    A checkpoint of the same step that already exists is kept as is (saving it again would store the
    same state). Returns the checkpoint folder.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / checkpoint_name(step)
    if final.is_dir() and is_complete(final):
        return final
    _remove_stale_temporaries(run_dir)
    temporary = run_dir / f".tmp-{final.name}-{os.getpid()}"
    temporary.mkdir()
    try:
        save_file(flatten(networks), str(temporary / NETWORKS_FILE), metadata={"gantool.step": str(step)})
        if ema is not None:
            save_file(flatten(ema), str(temporary / EMA_FILE), metadata={"gantool.step": str(step)})
        torch.save(dict(state), temporary / STATE_FILE)
        full_meta = {"format": FORMAT_VERSION, "step": step, **meta}
        (temporary / META_FILE).write_text(json.dumps(full_meta, indent=2, default=str) + "\n", encoding="utf-8")
        _fsync_tree(temporary)
        if final.exists():  # an incomplete folder of that name (not written by gantool): replace it
            shutil.rmtree(final)
        os.replace(temporary, final)
    except (OSError, SafetensorError) as error:  # disk full, folder removed: one line, the last one is kept
        shutil.rmtree(temporary, ignore_errors=True)
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
        raise CheckpointError(f"cannot write checkpoint '{final}' ({reason}); the earlier checkpoints are kept: "
                              "free space, then continue with --resume auto") from None
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    prune_checkpoints(run_dir, keep)
    return final


def is_complete(path: Path) -> bool:
    """Whether a checkpoint folder has every file a resume needs."""
    return all((path / name).is_file() for name in (NETWORKS_FILE, STATE_FILE, META_FILE))


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints in ``run_dir``, oldest first."""
    if not run_dir.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in run_dir.iterdir()
             if path.is_dir() and (match := _NAME.match(path.name)) and is_complete(path)]
    return [path for _, path in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint in ``run_dir``, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (renamed away first, so none is seen half-deleted)."""
    for path in list_checkpoints(run_dir)[: -max(keep, 1)]:
        doomed = path.with_name(f".tmp-delete-{path.name}-{os.getpid()}")
        os.replace(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    """The checkpoint ``--resume`` names: ``auto`` (newest in ``run_dir`` or None), a folder, or None.

    A path may be a checkpoint folder or a run folder (its newest checkpoint is used).
    """
    if not resume:
        return None
    if resume.strip().lower() == "auto":
        return latest_checkpoint(run_dir)
    path = Path(resume).expanduser()
    if path.is_dir() and is_complete(path):
        return path
    if path.is_dir() and (newest := latest_checkpoint(path)) is not None:
        return newest
    if path.is_dir():
        raise CheckpointError(f"--resume '{path}': not a checkpoint folder and holds no complete step-* checkpoint")
    raise CheckpointError(f"--resume '{path}': no such checkpoint folder")


def load_checkpoint(path: Path, *, task: str | None = None) -> Checkpoint:
    """Load a checkpoint folder; refuse one that belongs to another task.

    Raises:
        CheckpointError: missing or incomplete folder, unreadable files, or a different task.
    """
    if not path.is_dir() or not is_complete(path):
        raise CheckpointError(f"checkpoint '{path}' is missing or incomplete (needs {NETWORKS_FILE}, "
                              f"{STATE_FILE} and {META_FILE})")
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"checkpoint '{path}': cannot read {META_FILE}: {error}") from None
    if task is not None and meta.get("task") != task:
        raise CheckpointError(f"checkpoint '{path}' belongs to task {meta.get('task')!r}, not {task!r}; "
                              "pick another --run-dir or --resume path")
    try:
        networks = unflatten(load_file(str(path / NETWORKS_FILE)))
        ema = unflatten(load_file(str(path / EMA_FILE))) if (path / EMA_FILE).is_file() else None
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's own text advises weights_only=False: never repeat that here
        raise CheckpointError(f"checkpoint '{path}': {STATE_FILE} holds objects gantool does not load (refused "
                              "without running them); it is damaged or was not written by gantool") from None
    except (OSError, SafetensorError, RuntimeError, ValueError, EOFError) as error:
        raise CheckpointError(f"checkpoint '{path}' is corrupt: {str(error).splitlines()[0]}") from None
    if not isinstance(state, dict) or "step" not in meta:
        raise CheckpointError(f"checkpoint '{path}' is damaged or was not written by gantool "
                              f"({STATE_FILE} or {META_FILE} lacks its fields)")
    return Checkpoint(path=path, meta=meta, networks=networks, ema=ema, state=state)


# ------------------------------------------------------------------------------------------------- RNG


def capture_rng(device: torch.device | None = None) -> dict[str, Any]:
    """Every random stream of this process, in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, position, has_gauss, cached = cast(tuple[str, np.ndarray, int, int, float],
                                                   np.random.get_state(legacy=True))
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": str(kind), "keys": keys.tolist(), "pos": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: Mapping[str, Any], device: torch.device | None = None) -> None:
    """Restore :func:`capture_rng`'s output (the CUDA stream only when both sides have one)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], np.asarray(numpy_state["keys"], dtype=np.uint32),
                         numpy_state["pos"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if device is not None and device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _remove_stale_temporaries(run_dir: Path) -> None:
    for path in run_dir.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    """Flush the files before the rename, so a power cut cannot leave a complete-looking empty file."""
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
