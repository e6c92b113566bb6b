"""Checks a training run makes before its first step, so that it fails in one line instead of being killed.

- :func:`check_run_folders`: the run folder and the ``--export`` target can be written (found out *after*
  hours of training otherwise).
- :func:`estimate_memory` / :func:`check_memory`: a probe of one training step at batch 1, which measures
  the activations autograd keeps per sample, scaled to ``--batch-size`` and compared with the memory the
  device has free. A run that would not fit is refused with the option to lower, instead of the kernel's
  OOM killer ending it silently at 21 GB.

The probe leaves no trace: no optimizer steps (its ``update`` does not run backward), and the random
streams, the networks' buffers (batch-norm statistics, spectral-norm vectors) and the task's state are
restored afterwards, so an exact resume stays exact.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gantool.engine import checkpoint as ckpt
from gantool.engine.step import TrainStep
from gantool.errors import OutputError, TrainingError, one_line

if TYPE_CHECKING:
    from gantool.engine.training import Trainer

#: Activations need room beyond what autograd saves: the gradients flowing back and allocator slack.
#: Calibrated on CycleGAN at 256x256 on the CPU: the probe saw 2.37 GB per sample, peak RSS grew by 2.66 GB
#: per sample (3.9 GB at batch 1, 6.5 GB at batch 2), so 1.2 puts batch 16 at 45.7 GB against ~44 GB.
ACTIVATION_FACTOR = 1.2
#: Adam keeps two moments per trained parameter; with the weight and its gradient that is four copies.
COPIES_PER_TRAINED_PARAMETER = 4


# --------------------------------------------------------------------------------------------- folders


def check_run_folders(run_dir: Path, export: Path | None) -> None:
    """``OutputError`` (one line) when the run folder or the export target cannot be written."""
    _check_writable_folder(run_dir, "run folder", "--run-dir")
    if export is not None:
        target = Path(export)
        if target.suffix != ".safetensors":
            target = target.with_name(target.name + ".safetensors")
        if target.is_dir():
            raise OutputError(f"--export '{export}' is a folder; give a file name such as '{target}/model'")
        _check_writable_folder(target.parent, "export folder", "--export")


def _check_writable_folder(folder: Path, what: str, option: str) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} '{folder}' is a file, not a folder; choose another {option}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gantool-write-test-"):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno == errno.EEXIST:
            reason = "a file is in the way"
        raise OutputError(f"{what} '{folder}' is not writable ({reason.lower()}); choose another {option}") from None


# ---------------------------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training run needs: fixed (weights, gradients, optimizer state, EMA) + per sample."""

    fixed: int
    per_sample: int

    def total(self, batch_size: int) -> int:
        return self.fixed + int(self.per_sample * batch_size * ACTIVATION_FACTOR)

    def largest_batch(self, available: int) -> int:
        """The largest batch size whose estimate fits ``available`` bytes (0 when not even 1 fits)."""
        room = available - self.fixed
        per = self.per_sample * ACTIVATION_FACTOR
        return max(int(room // per), 0) if per > 0 else 1 << 30


def available_memory(device: torch.device) -> int | None:
    """Free memory in bytes on ``device`` (CUDA: free device memory; CPU: MemAvailable and the cgroup
    limit), or None where it cannot be known (MPS, other systems)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    found = []
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append(max(int(limit) - used, 0))
    return min(found) if found else None


class _ProbeStep(TrainStep):
    """A ``TrainStep`` whose updates do nothing: the forward passes build their graphs, nothing trains."""

    def update(self, name: str, loss: Tensor) -> None:
        if name not in self.optimizers:
            raise KeyError(f"update({name!r}): no optimizer named {name!r}; have {sorted(self.optimizers)}")
        self.updated.append(name)


@contextlib.contextmanager
def _counting_saved_tensors(total: list[int]) -> Iterator[None]:
    """Add the bytes of every distinct storage autograd saves for backward to ``total[0]``.

    The saved tensors are held until the block ends, so a freed storage's address cannot be reused by
    another one and hide it: the count is the same on every run.
    """
    held: dict[tuple[int, str], Tensor] = {}

    def pack(tensor: Tensor) -> Tensor:
        with contextlib.suppress(RuntimeError, NotImplementedError):
            storage = tensor.untyped_storage()
            key = (storage.data_ptr(), str(tensor.device))
            if key not in held:
                held[key] = tensor
                total[0] += storage.nbytes()
        return tensor

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            yield
    finally:
        held.clear()


def _parameter_bytes(modules: Mapping[str, nn.Module]) -> int:
    return sum(p.numel() * p.element_size() for module in modules.values() for p in module.parameters())


def estimate_memory(trainer: Trainer, probe_batch: dict[str, Any]) -> MemoryEstimate:
    """Measure one training step of ``trainer``'s task on ``probe_batch`` (batch size 1), without training."""
    runtime, task = trainer.runtime, trainer.task
    trained = {name: net for name, net in trainer.networks.items() if name in trainer.optimizers}
    fixed = (_parameter_bytes(trainer.networks)
             + (COPIES_PER_TRAINED_PARAMETER - 1) * _parameter_bytes(trained)
             + (_parameter_bytes(trainer.ema.networks) if trainer.ema is not None else 0))
    step = _ProbeStep(runtime=runtime, networks=trainer.networks, raw_networks=trainer.networks,
                      optimizers=trainer.optimizers, scaler=trainer.scaler)
    step.index = trainer.step
    rng = ckpt.capture_rng(runtime.device)
    buffers = {name: {key: value.clone() for key, value in net.named_buffers()}
               for name, net in trainer.networks.items()}
    task_state = copy.deepcopy(task.state_dict())
    saved = [0]
    try:
        with _counting_saved_tensors(saved):
            task.training_step(runtime.to_device(probe_batch), step)
    finally:
        with torch.no_grad():
            for name, net in trainer.networks.items():
                for key, value in net.named_buffers():
                    value.copy_(buffers[name][key])
        for net in trainer.networks.values():
            net.zero_grad(set_to_none=True)
        task.load_state_dict(task_state)
        ckpt.restore_rng(rng, runtime.device)
    batch_bytes = sum(v.numel() * v.element_size() for v in probe_batch.values() if isinstance(v, Tensor))
    return MemoryEstimate(fixed=fixed, per_sample=saved[0] + batch_bytes)


def check_memory(trainer: Trainer, probe_batch: dict[str, Any], *, available: int | None = None) -> None:
    """``TrainingError`` naming ``--batch-size`` when the run's estimate exceeds the free memory.

    ``GANTOOL_SKIP_MEMORY_CHECK=1`` skips the check (for a machine whose free-memory figure is wrong).
    """
    if os.environ.get("GANTOOL_SKIP_MEMORY_CHECK", "") not in ("", "0"):
        return
    runtime = trainer.runtime
    if available is None:
        available = available_memory(runtime.device)
    if available is None:
        return
    try:
        estimate = estimate_memory(trainer, probe_batch)
    except Exception as error:  # noqa: BLE001 - e.g. batch norm cannot train on one sample: no estimate then
        trainer.notes.append(f"memory check skipped: the batch-1 probe step failed ({one_line(error)})")
        return
    batch_size = trainer.options.batch_size
    need = estimate.total(batch_size)
    if need <= available:
        return
    fits = estimate.largest_batch(available)
    advice = (f"lower --batch-size (at most {fits} fits)" if fits >= 1 else
              "lower --crop or the architecture options (even --batch-size 1 does not fit)")
    raise TrainingError(f"training {trainer.spec.name} with --batch-size {batch_size} needs about {_gb(need)} but "
                        f"{runtime.device} has {_gb(available)} free; {advice} "
                        "(GANTOOL_SKIP_MEMORY_CHECK=1 skips this check)")


def _gb(count: int) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e8 else f"{count / 1e6:.1f} MB"
