"""Where and how tensors are computed: device, precision policy, torchrun/DDP, seeding.

One code path for every device (nanoGPT, Lightning Fabric): the loop always calls ``runtime.autocast()``
and a ``GradScaler``; on the CPU these do nothing. Precision ``auto`` means bf16 on a CUDA device that
supports it, fp16 with a loss scaler on other CUDA devices, and fp32 on the CPU and MPS; ``bf16`` on a CPU
with native bfloat16 (AVX512-BF16, AMX) is opt-in: about 1.9x faster convolutions for a tiny quality cost.

Distributed training is detected, not configured: ``torchrun --nproc-per-node 2 -m gantool train ...``
sets the environment and :meth:`Runtime.from_options` initialises NCCL (CUDA) or gloo (CPU).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from gantool.errors import UsageError

logger = logging.getLogger(__name__)

ResolvedPrecision = Literal["fp32", "bf16", "fp16"]
_AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_allocator_tuned = False


def tune_cpu_allocator(threshold_bytes: int = 1 << 30) -> bool:
    """Stop glibc malloc from returning large buffers to the OS after every layer.

    glibc serves blocks above a (dynamic) threshold with ``mmap`` and unmaps them on free, and trims the
    heap top on every free. Conv activations are exactly that size, so a CPU forward pass spent ~25% of
    its time in the kernel (page faults and ``munmap``) when measured. Raising both thresholds keeps the
    memory in the heap for reuse. One arena for all threads, too: with memory kept, each thread's own
    arena (decode workers, the writer) held its freed image buffers apart from the others, and a folder
    of x4 upscales peaked at 1.53-1.69 GiB against 1.27-1.35 GiB with one arena, at the same speed.
    Safe to call more than once; a no-op (returning False) off glibc.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(threshold_bytes)))
        ok = bool(libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(min(2 * threshold_bytes, 2**31 - 1)))) and ok
        ok = bool(libc.mallopt(_M_ARENA_MAX, ctypes.c_int(1))) and ok  # threads created later share the arena
    except (OSError, AttributeError):
        return False
    _allocator_tuned = ok
    return ok


def resolve_device(name: str) -> torch.device:
    """``auto|cpu|cuda|cuda:N|mps`` to a ``torch.device``, or a one-line ``UsageError`` saying why not."""
    text = (name or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not _mps_available():
            raise UsageError("--device mps was asked for, but this PyTorch build has no usable MPS backend; "
                             "use --device cpu")
        return torch.device("mps")
    if text == "cuda" or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name} was asked for, but CUDA is not available (torch "
                             f"{torch.__version__}, CUDA build {torch.version.cuda or 'none'}); use --device cpu")
        index_text = text.partition(":")[2]
        if not index_text:
            return torch.device("cuda", torch.cuda.current_device())
        if not index_text.isdigit() or int(index_text) >= torch.cuda.device_count():
            raise UsageError(f"--device {name}: there are {torch.cuda.device_count()} CUDA device(s), "
                             f"numbered 0 to {torch.cuda.device_count() - 1}")
        return torch.device("cuda", int(index_text))
    raise UsageError(f"--device {name!r} is not one of auto, cpu, cuda, cuda:N, mps")


def resolve_precision(name: str, device: torch.device) -> ResolvedPrecision:
    """``auto|fp32|bf16|fp16`` for ``device``, refusing combinations gantool does not run."""
    text = (name or "auto").strip().lower()
    if text not in ("auto", "fp32", "bf16", "fp16"):
        raise UsageError(f"--precision {name!r} is not one of auto, fp32, bf16, fp16")
    if device.type == "cuda":
        if text == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if text == "bf16" and not torch.cuda.is_bf16_supported():
            raise UsageError(f"--precision bf16: {torch.cuda.get_device_name(device)} does not support "
                             "bfloat16; use --precision fp16 (or auto)")
        return text  # type: ignore[return-value]
    if device.type == "cpu":
        if text == "bf16" and cpu_has_native_bf16():
            return "bf16"  # opt-in: ~1.9x faster convolutions at -0.01 dB (docs/speed.md); auto stays exact
        if text in ("bf16", "fp16"):
            raise UsageError(f"--precision {text} is not available on this CPU: it has no native bfloat16 "
                             "(AVX512-BF16 or AMX), and emulated reduced-precision convolutions were ~200x slower "
                             "when measured; use --precision fp32 (or auto)" if text == "bf16" else
                             "--precision fp16 is not available on the CPU (no fast fp16 convolutions there); use "
                             "--precision bf16 on a CPU with AVX512-BF16 or AMX, or fp32 (auto)")
        return "fp32"
    return "fp32" if text == "auto" else text  # type: ignore[return-value]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX), which ``--precision bf16`` needs.

    Without it oneDNN emulates bf16 and convolutions get much slower, not faster. ``GANTOOL_CPU_BF16=0``
    or ``1`` overrides the detection (tests, or a CPU whose flags torch misreads).
    """
    forced = os.environ.get("GANTOOL_CPU_BF16", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(check()) for check in checks if callable(check))


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


@dataclass
class Runtime:
    """The resolved device, precision and process group for one command.

    Build it with :meth:`from_options`; call :meth:`close` (or use it as a context manager) at the end so a
    process group it created is torn down.
    """

    device: torch.device
    precision: ResolvedPrecision = "fp32"
    compile: bool = False
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    distributed: bool = False
    _owns_group: bool = field(default=False, repr=False)

    @classmethod
    def from_options(cls, options: Any, *, distributed: bool | None = None) -> Runtime:
        """Resolve ``options.device``/``precision``/``compile`` (a ``RuntimeOptions``).

        Args:
            options: Anything with ``device``, ``precision`` and ``compile`` attributes.
            distributed: Join a process group; ``None`` means "when launched by torchrun".
        """
        launched = torch.distributed.is_available() and torch.distributed.is_torchelastic_launched()
        distributed = launched if distributed is None else distributed
        rank = int(os.environ.get("RANK", 0)) if distributed else 0
        world_size = int(os.environ.get("WORLD_SIZE", 1)) if distributed else 1
        local_rank = int(os.environ.get("LOCAL_RANK", 0)) if distributed else 0
        requested = str(getattr(options, "device", "auto"))
        if distributed and requested.lower() in ("auto", "cuda") and torch.cuda.is_available():
            requested = f"cuda:{local_rank}"  # one GPU per process
        device = resolve_device(requested)
        precision = resolve_precision(str(getattr(options, "precision", "auto")), device)
        runtime = cls(device=device, precision=precision, compile=bool(getattr(options, "compile", False)),
                      rank=rank, world_size=world_size, local_rank=local_rank, distributed=distributed)
        runtime._setup()
        return runtime

    def _setup(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls/convs on TF32 tensor cores
            torch.backends.cudnn.allow_tf32 = True
        elif self.device.type == "cpu":
            tune_cpu_allocator()
        if self.distributed and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)
            self._owns_group = True

    # ------------------------------------------------------------------------------------- properties

    @property
    def is_main(self) -> bool:
        """True on the process that logs, writes samples, checkpoints and exports (rank 0)."""
        return self.rank == 0

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None in fp32."""
        return _AMP_DTYPES[self.precision]

    def describe(self) -> str:
        """One line for the console: device, precision, processes."""
        text = f"{self.device} {self.precision}"
        if self.distributed:
            text += f", rank {self.rank}/{self.world_size}"
        return text

    # ----------------------------------------------------------------------------------------- compute

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A loss scaler that is active only for fp16 (bf16 and fp32 do not underflow the same way)."""
        return torch.amp.GradScaler(self.device.type if self.device.type == "cuda" else "cpu",
                                    enabled=self.precision == "fp16")

    def memory_format(self, *, training: bool) -> torch.memory_format:
        """channels_last where it is faster: CUDA always, the CPU for inference (~2x for conv nets)."""
        if self.device.type == "cuda" or (self.device.type == "cpu" and not training):
            return torch.channels_last
        return torch.contiguous_format

    def prepare_module(self, module: nn.Module, *, training: bool) -> nn.Module:
        """Move a module to the device in the preferred memory format (in place; returns it)."""
        return module.to(self.device).to(memory_format=self.memory_format(training=training))

    def to_device(self, batch: Any, *, training: bool = True) -> Any:
        """Move a (nested) batch of tensors to the device; 4-D float tensors get the preferred layout."""
        if isinstance(batch, torch.Tensor):
            non_blocking = self.device.type == "cuda"
            if batch.dim() == 4 and batch.is_floating_point():
                return batch.to(self.device, non_blocking=non_blocking,
                                memory_format=self.memory_format(training=training))
            return batch.to(self.device, non_blocking=non_blocking)
        if isinstance(batch, dict):
            return {key: self.to_device(value, training=training) for key, value in batch.items()}
        if isinstance(batch, list | tuple):
            return type(batch)(self.to_device(value, training=training) for value in batch)
        return batch

    def maybe_compile(self, module: nn.Module) -> nn.Module:
        """``torch.compile(module)`` when ``--compile`` was given, else the module itself."""
        return torch.compile(module) if self.compile else module  # type: ignore[return-value]

    def wrap_ddp(self, module: nn.Module) -> nn.Module:
        """Wrap one network in DDP when distributed (each network separately; static usage assumed)."""
        if not self.distributed or not any(p.requires_grad for p in module.parameters()):
            return module
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=False)

    # ------------------------------------------------------------------------------------ processes

    def seed(self, seed: int, *, per_rank: bool = True) -> None:
        """Seed python, numpy and torch (every device); ``per_rank`` adds the rank so ranks differ."""
        value = seed + (self.rank if per_rank else 0)
        random.seed(value)
        np.random.seed(value % 2**32)
        torch.manual_seed(value)

    def barrier(self) -> None:
        """Wait for every process (no-op when not distributed)."""
        if self.distributed:
            torch.distributed.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over processes in place (no-op when not distributed)."""
        if self.distributed:
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
        return tensor

    def gather_objects(self, value: Any) -> list[Any]:
        """Every process's ``value``, in rank order (on every process)."""
        if not self.distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, value)
        return gathered

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process."""
        if not self.distributed:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Tear down the process group this runtime created."""
        if self._owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self._owns_group = False

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Run a block without disturbing the python, numpy and torch CPU random streams."""
    python_state, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
