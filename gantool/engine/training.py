"""The task-agnostic training loop: data, ``task.training_step``, scaler, EMA, logging, checkpoints.

``gantool train TASK`` calls :func:`run_training`. Under ``torchrun --nproc-per-node N -m gantool train``
every process runs the same loop; each network is wrapped in DDP separately and only rank 0 logs,
writes samples, checkpoints and exports.

Resume is exact: the data order is a pure function of (seed, epoch, rank), every sample's augmentation
RNG is seeded from (seed, epoch, position), and checkpoints hold every RNG stream and optimizer state,
so ``k`` steps + resume + ``m`` steps gives bit-identical losses to ``k + m`` steps in one go (same
device, same number of processes). This does not rely on any DataLoader internal state.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from torch import nn
from torch.utils.data import DataLoader, default_collate

import gantool
from gantool.engine import checkpoint as ckpt
from gantool.engine import preflight, resume
from gantool.engine.dataorder import ResumableBatchSampler, SeededDataset, sample_seed
from gantool.engine.ema import EMA
from gantool.engine.export import export_model
from gantool.engine.finetune import load_initial_weights
from gantool.engine.metrics_log import MetricsLogger, read_metrics, save_sample_grid
from gantool.engine.runtime import Runtime
from gantool.engine.schedules import build_scheduler
from gantool.engine.step import TrainStep, check_finite, reduce_scalars
from gantool.errors import CheckpointError, GantoolError, Interrupted, TrainingError, UsageError, one_line
from gantool.plugin.common import TrainingOptions
from gantool.plugin.options import check_values, dump_toml, to_plain
from gantool.plugin.spec import TaskSpec

#: The run folder's record of training samples that could not be read and were skipped.
SKIP_LOG = "skipped.txt"


def run_training(*, spec: TaskSpec, options: TrainingOptions, task_options: Any, command: str) -> None:
    """Train ``spec``'s task with ``options`` (what ``gantool train`` calls); ``Interrupted`` (exit 130, or
    143 for SIGTERM) when a signal stopped it: the checkpoint is saved, but no model was exported."""
    result = Trainer(spec, options, task_options, command=command).fit()
    if result.interrupted:
        raise Interrupted(f"training interrupted at step {result.step}: saved checkpoint '{result.checkpoint}', "
                          "no model exported; continue with --resume auto", signal=result.signal)


def leave_stopping_to_the_trainer(worker_id: int) -> None:
    """DataLoader workers ignore SIGINT and SIGTERM: the trainer finishes its step, saves and shuts them down.

    Ctrl-C, ``kill -TERM -PGID``, ``systemctl stop`` and Slurm's ``scancel`` signal every process of the run,
    and a worker killed that way made the trainer die on torch's "worker killed" error before it could save.
    Workers still exit when the trainer tells them to or when it is gone (torch watches the parent).
    """
    del worker_id
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# --------------------------------------------------------------------------------------------- trainer


@dataclass
class TrainResult:
    """What a :meth:`Trainer.fit` call ended with."""

    step: int
    run_dir: Path
    checkpoint: Path | None
    interrupted: bool = False
    exported: Path | None = None
    signal: int = signal.SIGINT


class Trainer:
    """Owns one training run; see the module docstring. ``fit()`` builds everything and runs the loop."""

    def __init__(self, spec: TaskSpec, options: TrainingOptions, task_options: Any, *, command: str = "",
                 progress: bool = True) -> None:
        if options.data is None:
            raise UsageError(f"`gantool train {spec.name}` needs --data DIR")
        self.spec, self.options, self.task_options, self.command = spec, options, task_options, command
        self.run_dir = Path(options.run_dir) if options.run_dir else Path("runs") / spec.name
        self.show_progress = progress
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.last_checkpoint: Path | None = None
        self.resumed_from: Path | None = None
        self.notes: list[str] = []
        self._since_log: dict[str, list[float]] = {}  # logged values since the last log step
        self._warned: set[str] = set()  # keys of the task's warnings at the last log step
        self._stop_requested = False
        self._stop_signal: int = signal.SIGINT
        self.good_checkpoint: Path | None = None  # the newest one a finite step was computed from

    # ------------------------------------------------------------------------------------------- setup

    def _setup(self) -> None:
        options, spec = self.options, self.spec
        try:  # a TrainingOptions built in Python (or an old config) gets the CLI's range checks too
            check_values(TrainingOptions, to_plain(options), "training options")
            check_values(spec.train_options, to_plain(self.task_options), f"{spec.name} options")
        except ValueError as error:
            raise UsageError(str(error)) from None
        self.runtime = runtime = Runtime.from_options(options)
        if runtime.is_main:
            preflight.check_run_folders(self.run_dir, options.export)
        runtime.seed(options.seed, per_rank=False)  # identical initial weights on every rank
        self.task = spec.load_implementation()(spec, self.task_options)
        assert options.data is not None  # checked in __init__
        self.task.settle_options(Path(options.data))
        self.task_options = self.task.options  # settled values are what the run records and a resume compares
        self.networks: dict[str, nn.Module] = self.task.build_networks()
        self.inference_names = tuple(self.task.inference_network_names())  # may depend on the options
        missing = [name for name in self.inference_names if name not in self.networks]
        if missing:
            raise TrainingError(f"task {spec.name!r}: build_networks() lacks inference networks {missing}")
        for network in self.networks.values():
            runtime.prepare_module(network, training=True).train()
        self.optimizers = self.task.build_optimizers(self.networks)
        self.schedulers = {
            name: build_scheduler(optimizer, options.lr_schedule, options.steps, warmup_steps=options.warmup_steps,
                                  decay_start=options.decay_start)
            for name, optimizer in self.optimizers.items()}
        self.scaler = runtime.grad_scaler()
        found = ckpt.resolve_resume(options.resume, self.run_dir) if runtime.is_main else None
        resume_from = runtime.broadcast_object(str(found) if found else None)
        if options.init and not resume_from:  # before the EMA copies the weights; every rank loads the same
            self.notes.append(load_initial_weights(self.networks, spec, self.task_options, options.init))
        inference = {name: self.networks[name] for name in self.inference_names}
        self.ema = EMA(inference, options.ema_decay) if 0 < options.ema_decay < 1 else None

        if resume_from:
            resume.restore(self, ckpt.load_checkpoint(Path(resume_from), task=spec.name))
        elif runtime.is_main and (existing := ckpt.latest_checkpoint(self.run_dir)) is not None:
            raise UsageError(f"run folder '{self.run_dir}' already holds checkpoints (newest {existing.name}); "
                             "continue it with --resume auto, or pick another --run-dir")
        else:
            runtime.seed(options.seed)  # per-rank streams from here on

        forward = {name: runtime.maybe_compile(runtime.wrap_ddp(net)) for name, net in self.networks.items()}
        frozen = ({name: runtime.maybe_compile(net) for name, net in self.networks.items()}
                  if runtime.compile else None)
        self.train_step = TrainStep(runtime=runtime, networks=forward, raw_networks=self.networks,
                                    optimizers=self.optimizers, scaler=self.scaler, grad_clip=options.grad_clip,
                                    frozen_networks=frozen)
        self._setup_data()
        if options.memory_check:
            probe = default_collate([self.dataset[(0, sample_seed(options.seed, -1, 0))]])
            preflight.check_memory(self, probe)
        self.logger = MetricsLogger(self.run_dir, enabled=runtime.is_main, total_steps=options.steps,
                                    start_step=self.step, progress=self.show_progress)
        if runtime.is_main:
            self._write_config()

    def _setup_data(self) -> None:
        options, runtime = self.options, self.runtime
        assert options.data is not None  # checked in __init__
        dataset = self.task.build_dataset(Path(options.data))  # the CLI resolved a known name already
        size = len(dataset)
        if (size // runtime.world_size) // options.batch_size < 1:
            raise TrainingError(f"dataset '{options.data}' has {size} samples, fewer than one batch of "
                                f"{options.batch_size} per process ({runtime.world_size} process(es)); "
                                "lower --batch-size or add data")
        self.dataset = SeededDataset(dataset, skip_log=self.run_dir / SKIP_LOG)
        self.sampler = ResumableBatchSampler(size, options.batch_size, seed=options.seed, rank=runtime.rank,
                                             world_size=runtime.world_size, start_epoch=self.epoch,
                                             start_batch=self.batch_in_epoch)
        if self.batch_in_epoch >= self.sampler.batches_per_epoch:  # fewer batches now (more processes)
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.sampler.start_epoch, self.sampler.start_batch = self.epoch, 0
        workers = options.num_workers
        self.loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=workers,
                                 pin_memory=runtime.device.type == "cuda", persistent_workers=workers > 0,
                                 generator=torch.Generator().manual_seed(options.seed),
                                 worker_init_fn=leave_stopping_to_the_trainer if workers > 0 else None)
        count = min(size, 8)
        self.sample_batch = default_collate(
            [self.dataset[(i, sample_seed(options.seed, -1, i))] for i in range(count)]) if runtime.is_main else None

    def _write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        values = {**to_plain(self.options), **to_plain(self.task_options)}
        text = f"# gantool {gantool.__version__}, task {self.spec.name}\n# command: {self.command}\n"
        (self.run_dir / "config.toml").write_text(text + dump_toml(values), encoding="utf-8")

    # ------------------------------------------------------------------------------------- checkpoints

    def save_checkpoint(self) -> Path | None:
        """Checkpoint the current step (a collective under DDP: every rank must call it)."""
        runtime = self.runtime
        per_rank = {"rng": ckpt.capture_rng(runtime.device), "task": resume.to_cpu(self.task.state_dict())}
        ranks = runtime.gather_objects(per_rank)
        path = None
        if not resume.weights_are_finite(self):  # every rank checks (the weights are the same): none waits
            raise TrainingError(f"weights became non-finite by step {self.step}; not saved. The last good "
                                f"checkpoint is '{self.good_checkpoint}'. Try a lower --lr or --grad-clip, "
                                "then --resume auto")
        if runtime.is_main:
            state, meta = resume.checkpoint_contents(self, ranks)
            path = ckpt.save_checkpoint(
                self.run_dir, self.step, networks={n: m.state_dict() for n, m in self.networks.items()},
                ema=({n: m.state_dict() for n, m in self.ema.networks.items()} if self.ema else None),
                state=state, meta=meta, keep=self.options.keep_checkpoints)
        written = runtime.broadcast_object(str(path) if path else None)
        self.last_checkpoint = Path(written) if written else None
        return self.last_checkpoint

    # -------------------------------------------------------------------------------------------- loop

    def inference_networks(self) -> dict[str, nn.Module]:
        """The networks to sample and export with: the EMA shadows when EMA is on."""
        if self.ema is not None:
            return self.ema.networks
        return {name: self.networks[name] for name in self.inference_names}

    def fit(self) -> TrainResult:
        """Run the loop to ``options.steps``; returns how it ended. Ctrl-C saves and returns cleanly."""
        try:
            self._setup()
            with self._graceful_stop():
                interrupted = self._loop()
            exported = None
            if not interrupted and self.runtime.is_main:
                exported = self._export()
            # Ranks leave together: a rank that tears the gloo group down while rank 0 still
            # exports aborts the process ("terminate called without an active exception").
            self.runtime.barrier()
            return TrainResult(step=self.step, run_dir=self.run_dir, checkpoint=self.last_checkpoint,
                               interrupted=interrupted, exported=exported, signal=self._stop_signal)
        finally:
            if hasattr(self, "logger"):
                self.logger.close()
            if hasattr(self, "runtime"):
                self._release_process_group()

    def _release_process_group(self) -> None:
        """Drop the DDP wrappers, then the process group.

        DDP's reducer keeps the gloo group alive past ``destroy_process_group``; freed only at
        interpreter exit, its worker threads abort the process. Dropping the wrappers first frees it now.
        """
        if self.runtime.distributed and hasattr(self, "train_step"):
            self.train_step.networks = dict(self.train_step.raw_networks)
            gc.collect()
        self.runtime.close()

    def _loop(self) -> bool:
        options, runtime, step = self.options, self.runtime, self.train_step
        if self.step >= options.steps:
            self.logger.message(f"already at step {self.step} of {options.steps}; nothing to train")
        else:
            self.logger.message(f"training {self.spec.name} on {runtime.describe()} from step {self.step} "
                                f"to {options.steps}; run folder {self.run_dir}")
        for note in self.notes:  # an export-only resume applies changed options too
            self.logger.message(note)
        if self.step >= options.steps:
            return False
        batches = iter(self.loader)
        try:
            while self.step < options.steps:
                batch = runtime.to_device(self._next_batch(batches))
                if not isinstance(batch, dict):
                    raise TrainingError(f"task {self.spec.name!r}: dataset items must be dicts of tensors, "
                                        f"got {type(batch).__name__}")
                step.index, step.updated = self.step, []
                try:
                    losses = self.task.training_step(batch, step)
                except KeyboardInterrupt:
                    return self._interrupt(hard=True)
                if step.updated:  # once per iteration, after every optimizer stepped
                    self.scaler.update()
                with warnings.catch_warnings():  # an fp16 step skipped on overflow is not a misuse
                    warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
                    for scheduler in self.schedulers.values():
                        scheduler.step()
                if self.ema is not None:
                    self.ema.update(self.networks)
                means, (stop,) = reduce_scalars(losses, [float(self._stop_requested)], runtime)
                self._check_finite(means)
                self._advance()
                self._after_step(means)
                if stop > 0:
                    return self._interrupt(hard=False)
        finally:
            del batches  # shuts DataLoader workers down
        return False

    def _next_batch(self, batches: Iterator[Any]) -> Any:
        """The next batch; a data error (already past the skip log's limit) saves a checkpoint and is
        reported as its own one line, not as a DataLoader worker's traceback."""
        try:
            return next(batches)
        except GantoolError as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            inner = lines[-1].split(": ", 1)[-1] if len(lines) > 1 else one_line(error)
            saved = self.save_checkpoint() if self.step > 0 else None
            where = f"; saved checkpoint '{saved}'" if saved else ""
            raise type(error)(f"{inner}{where}") from None

    def _check_finite(self, means: dict[str, float]) -> None:
        """Stop on a NaN/Inf loss. A checkpoint saved after the last finite step was computed from the
        weights that gave this loss: it is set aside (``bad-step-*``), so --resume auto cannot pick it."""
        try:
            check_finite(means, self.step, last_checkpoint=str(self.good_checkpoint or "") or None)
        except TrainingError:
            suspect = self.last_checkpoint
            if self.runtime.is_main and suspect is not None and suspect != self.good_checkpoint and suspect.is_dir():
                self.logger.message(f"set aside checkpoint '{resume.set_aside(suspect)}': its weights gave "
                                    "the non-finite loss")
            raise
        self.good_checkpoint = self.last_checkpoint

    def _advance(self) -> None:
        self.step += 1
        self.batch_in_epoch += 1
        if self.batch_in_epoch >= self.sampler.batches_per_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    def _after_step(self, losses: dict[str, float]) -> None:
        options = self.options
        last = self.step == options.steps
        for name, value in losses.items():
            self._since_log.setdefault(name, []).append(value)
        if self.step % options.log_every == 0 or last:
            lrs = {name: opt.param_groups[0]["lr"] for name, opt in self.optimizers.items()}
            self.logger.log(self.step, losses, lrs, epoch=self.epoch, warnings=self._task_warnings())
        else:
            self.logger.advance(self.step)
        if options.sample_every and (self.step % options.sample_every == 0 or last) and self.runtime.is_main:
            self._write_samples()
        if self.step % options.checkpoint_every == 0 or last:
            self.save_checkpoint()

    def _task_warnings(self) -> dict[str, str]:
        """``Task.training_warnings`` on the means since the last log step; a warning not active at the
        previous log step is printed (every active one is recorded in metrics.jsonl)."""
        means = {name: sum(values) / len(values) for name, values in self._since_log.items()}
        self._since_log = {}
        found = dict(self.task.training_warnings(means, self.step))
        for key in found.keys() - self._warned:
            self.logger.message(f"warning at step {self.step}: {found[key]}")
        self._warned = set(found)
        return found

    def _interrupt(self, *, hard: bool) -> bool:
        if hard and self.runtime.distributed:  # other ranks are not at a collective: saving would hang
            self.logger.message(f"interrupted at step {self.step}; not saved (a second Ctrl-C under "
                                f"torchrun); the last checkpoint is {self.last_checkpoint}")
            return True
        path = self.save_checkpoint()
        self.logger.message(f"interrupted: saved checkpoint '{path}' at step {self.step}; "
                            "continue with --resume auto")
        return True

    @contextlib.contextmanager
    def _graceful_stop(self) -> Iterator[None]:
        """First Ctrl-C (or SIGTERM) finishes the current step, saves and stops; a second one aborts."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: object) -> None:
            if self._stop_requested and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_requested = True
            self._stop_signal = signum
            self.logger.message("stopping after this step (Ctrl-C again to abort)")

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _write_samples(self) -> None:
        networks = {**self.networks, **self.inference_networks()}  # EMA where kept, live for the rest
        modes = {name: net.training for name, net in networks.items()}
        batch = self.runtime.to_device(self.sample_batch, training=False)
        try:
            for net in networks.values():
                net.eval()
            with torch.no_grad():
                rows = self.task.visualize(batch, networks)
        finally:
            for name, net in networks.items():
                net.train(modes[name])
        if rows:
            save_sample_grid(self.run_dir / "samples" / f"step-{self.step:06d}.png", rows)

    def _export(self) -> Path:
        """``run_dir/model.safetensors`` and ``--export``; a call that ran no step writes ``--export`` alone."""
        networks = self.inference_networks()
        kwargs: dict[str, Any] = {"command": self.command, "data": self.options.data, "steps": self.step}
        try:
            if self.step > self.logger.start_step or self.options.export is None:
                written = export_model(self.run_dir / "model.safetensors", self.task, networks, **kwargs)
            if self.options.export is not None:
                written = export_model(Path(self.options.export), self.task, networks, **kwargs)
        except (OSError, SafetensorError) as error:  # disk full, folder removed meanwhile
            raise CheckpointError(f"cannot export the model ({one_line(error)}); the trained weights are in "
                                  f"'{self.last_checkpoint}': free space, then --resume auto exports them") from None
        self.logger.message(f"exported {written}")
        return written


__all__: Sequence[str] = ["TrainResult", "Trainer", "read_metrics", "run_training"]
