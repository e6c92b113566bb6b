"""What a checkpoint holds of a :class:`~gantool.engine.training.Trainer`, and putting it back.

Split from the training loop so that the loop stays readable. Two rules beyond "restore everything":

- Options given on the resuming command line win over the checkpoint's for the optimizer hyperparameters
  (``--lr``, betas ...): the optimizer's moments come from the checkpoint, its settings from today's
  options. Otherwise a lower ``--lr`` after a NaN would be printed and then silently ignored.
- A checkpoint whose structure is not what gantool writes is refused in one line (``CheckpointError``),
  never with a ``KeyError`` from deep inside.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import gantool
from gantool.engine import checkpoint as ckpt
from gantool.errors import CheckpointError
from gantool.plugin.options import default_options, to_plain

if TYPE_CHECKING:
    from gantool.engine.training import Trainer

#: Optimizer settings that come from today's options on resume (not the moments, which are state).
_KEPT_FROM_CHECKPOINT = ("params", "initial_lr")


def restore(trainer: Trainer, checkpoint: ckpt.Checkpoint) -> None:
    """Load ``checkpoint`` into ``trainer`` (networks, optimizers, schedulers, EMA, RNG, data position)."""
    try:
        _restore(trainer, checkpoint)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        raise CheckpointError(f"checkpoint '{checkpoint.path}' is damaged or not written by gantool "
                              f"({type(error).__name__}: {str(error)[:120]}); resume from another one") from None


def _restore(trainer: Trainer, checkpoint: ckpt.Checkpoint) -> None:
    state, runtime = checkpoint.state, trainer.runtime
    if not isinstance(state, dict):
        raise TypeError(f"state.pt holds a {type(state).__name__}, not a dict")
    for name, network in trainer.networks.items():
        try:
            network.load_state_dict(checkpoint.networks[name])
        except (KeyError, RuntimeError) as error:
            raise CheckpointError(
                f"checkpoint '{checkpoint.path}' does not fit network {name!r} "
                f"({str(error).splitlines()[0][:200]}); were architecture options changed?") from None
    saved = checkpoint.meta.get("task_options", {})
    if trainer.task_options is not None:  # an option the checkpoint predates ran at its default
        saved = {**default_options(type(trainer.task_options)), **saved}
    shaping_then = _shaping_options(checkpoint.meta.get("options", {}))
    shaping_now = _shaping_options(to_plain(trainer.options))
    changed = ", ".join(filter(None, [changed_options(saved, to_plain(trainer.task_options)),
                                      changed_options(shaping_then, shaping_now)]))
    if changed:
        trainer.notes.append(f"options changed since {checkpoint.path.name} (applied): {changed}")
    for name, optimizer in trainer.optimizers.items():
        today = [{key: value for key, value in group.items() if key not in _KEPT_FROM_CHECKPOINT}
                 for group in optimizer.param_groups]
        optimizer.load_state_dict(state["optimizers"][name])
        if len(today) == len(optimizer.param_groups):
            for group, settings in zip(optimizer.param_groups, today, strict=True):
                group.update(settings)
                group["initial_lr"] = settings["lr"]
    for name, scheduler in trainer.schedulers.items():
        scheduler.load_state_dict(state["schedulers"][name])
        # LambdaLR stores base lr and step count; recompute this step's lr from today's lr and schedule
        scheduler.base_lrs = [group["initial_lr"] for group in scheduler.optimizer.param_groups]
        for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs,
                                       [fn(scheduler.last_epoch) for fn in scheduler.lr_lambdas], strict=True):
            group["lr"] = base * factor
    trainer.scaler.load_state_dict(state["scaler"])
    if trainer.ema is not None and checkpoint.ema is not None:
        shadows = dict(checkpoint.ema)
        fresh = [name for name in trainer.ema.networks if name not in shadows]
        for name in fresh:  # an inference network since this checkpoint (options that choose them changed)
            shadows[name] = trainer.networks[name].state_dict()
        if fresh:
            trainer.notes.append(f"{checkpoint.path.name} has no EMA of {', '.join(fresh)}: it starts from the "
                                 "checkpoint's live weights")
        trainer.ema.load_state_dict({"updates": state["ema_updates"], "networks": shadows})
    trainer.step = checkpoint.step
    trainer.epoch, trainer.batch_in_epoch = int(state["data"]["epoch"]), int(state["data"]["batch"])
    ranks = state["ranks"]
    mine = ranks[runtime.rank] if runtime.rank < len(ranks) else ranks[0]
    trainer.task.load_state_dict(runtime.to_device(mine["task"]))  # saved on the CPU
    if len(ranks) == runtime.world_size:
        ckpt.restore_rng(mine["rng"], runtime.device)
    else:  # another process count: exactness is impossible anyway, keep streams distinct per rank
        runtime.seed(trainer.options.seed + trainer.step)
    trainer.last_checkpoint = checkpoint.path
    trainer.resumed_from = checkpoint.path


def checkpoint_contents(trainer: Trainer, ranks: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state, meta)`` of a checkpoint of ``trainer``'s current step (``ranks``: per-rank RNG and task state)."""
    runtime = trainer.runtime
    state = {
        "step": trainer.step,
        "optimizers": {name: opt.state_dict() for name, opt in trainer.optimizers.items()},
        "schedulers": {name: _scheduler_state(s) for name, s in trainer.schedulers.items()},
        "scaler": trainer.scaler.state_dict(),
        "ema_updates": trainer.ema.updates if trainer.ema else 0,
        "data": {"epoch": trainer.epoch, "batch": trainer.batch_in_epoch},
        "ranks": ranks,
    }
    meta = {
        "task": trainer.spec.name, "gantool_version": gantool.__version__, "torch_version": torch.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "world_size": runtime.world_size,
        "device": str(runtime.device), "precision": runtime.precision,
        "data_position": {"epoch": trainer.epoch, "batch": trainer.batch_in_epoch},
        "options": to_plain(trainer.options), "task_options": to_plain(trainer.task_options),
        "command": trainer.command,
    }
    return state, meta


def weights_are_finite(trainer: Trainer) -> bool:
    """Whether every parameter of every network is finite (a checkpoint of anything else is useless)."""
    return all(bool(torch.isfinite(p).all()) for net in trainer.networks.values() for p in net.parameters())


def set_aside(path: Path) -> Path:
    """Rename checkpoint ``path`` to ``bad-step-...`` so that ``--resume auto`` no longer picks it."""
    target = path.with_name(f"bad-{path.name}")
    if target.exists():
        target = path.with_name(f"bad-{path.name}-{int(time.time())}")
    path.rename(target)
    return target


def _scheduler_state(scheduler: Any) -> dict[str, Any]:
    """A scheduler's state without its multiplier objects (rebuilt from today's options on resume)."""
    state = scheduler.state_dict()
    state["lr_lambdas"] = [None] * len(state.get("lr_lambdas", []))
    return state


#: Training options that shape the optimisation from the resumed step on (paths, workers, logging do not).
_SHAPING = ("batch_size", "lr_schedule", "decay_start", "warmup_steps", "grad_clip", "ema_decay")


def _shaping_options(options: dict[str, Any]) -> dict[str, Any]:
    """The :data:`_SHAPING` training options of ``options``, plus ``steps`` under a schedule that ends there.

    ``--steps`` is how a run is extended, so a new value is news only when the learning rate decays to it.
    """
    keys = _SHAPING + (("steps",) if options.get("lr_schedule", "constant") != "constant" else ())
    return {key: options[key] for key in keys if key in options}


def changed_options(before: dict[str, Any], now: dict[str, Any]) -> str:
    """``"lr 0.0002 -> 1e-06"`` for the options whose values differ (empty when none).

    The checkpoint's options went through JSON, which stores tuples as lists: ``(0.1, 0.6)`` and
    ``[0.1, 0.6]`` are the same option, not a change.
    """
    keys = [key for key in now if key in before and _as_json(before[key]) != _as_json(now[key])]
    return ", ".join(f"{key} {before[key]!r} -> {now[key]!r}" for key in keys)


def _as_json(value: Any) -> Any:
    """``value`` with tuples as lists, as it reads back from a checkpoint's JSON."""
    if isinstance(value, list | tuple):
        return [_as_json(item) for item in value]
    return value


def to_cpu(value: Any) -> Any:
    """Tensors (nested in dicts, lists, tuples) detached and on the CPU, for a checkpoint."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_cpu(item) for item in value)
    return value
