"""The data order of training, as a pure function of (seed, epoch, rank): what makes resume exact.

:class:`ResumableBatchSampler` yields each rank's batches of an epoch from a permutation seeded by
(seed, epoch), and can start at any (epoch, batch); :class:`SeededDataset` seeds every sample's
augmentation RNGs from (seed, epoch, position). Neither relies on DataLoader internals, so a checkpoint
needs only (epoch, batch) to continue the exact stream.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from gantool.engine.runtime import preserved_rng
from gantool.errors import InputError, one_line

#: Unreadable samples in a row after which a batch gives up (the data is broken, not one file).
MAX_SKIPS_IN_A_ROW = 8


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """The RNG seed of one sample: deterministic across processes (int tuple hashes are not salted)."""
    return hash((seed, epoch, position)) & 0x7FFF_FFFF_FFFF_FFFF


class ResumableBatchSampler:
    """An endless, epoch-seeded batch order that can start at any (epoch, batch).

    Each epoch is a permutation seeded by ``(seed, epoch)``; rank ``r`` of ``w`` takes every ``w``-th
    index (like ``DistributedSampler``, but able to start mid-epoch). The tail that does not fill a batch
    on every rank is dropped. Items are ``(index, sample_seed)`` pairs for :class:`SeededDataset`.
    """

    def __init__(self, size: int, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1,
                 start_epoch: int = 0, start_batch: int = 0) -> None:
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.batches_per_epoch = (size // world_size) // batch_size
        self.start_epoch, self.start_batch = start_epoch, start_batch

    def epoch_order(self, epoch: int) -> list[int]:
        """Global sample positions of this rank's share of ``epoch``'s permutation."""
        usable = self.batches_per_epoch * self.batch_size * self.world_size
        return list(range(self.rank, usable, self.world_size))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, first = self.start_epoch, self.start_batch
        while True:
            permutation = torch.randperm(self.size, generator=torch.Generator().manual_seed(
                sample_seed(self.seed, epoch, -1))).tolist()
            positions = self.epoch_order(epoch)
            for batch in range(first, self.batches_per_epoch):
                chunk = positions[batch * self.batch_size:(batch + 1) * self.batch_size]
                yield [(permutation[p], sample_seed(self.seed, epoch, p)) for p in chunk]
            epoch, first = epoch + 1, 0


class SeededDataset(Dataset):
    """Seeds python, numpy and torch CPU RNGs per sample, so augmentation is independent of workers.

    In the main process (``num_workers=0``) the surrounding RNG streams are preserved, so data loading
    never shifts the randomness of the training step.

    With ``skip_log``, a sample that cannot be read (``InputError`` or ``OSError``: a corrupt image found
    mid-run) is replaced by the next index, deterministically (so a resume replays the same stream), and
    its error is appended to ``skip_log`` (one line each; the file is the run's record of skipped data).
    """

    def __init__(self, dataset: Dataset, skip_log: Path | None = None) -> None:
        self.dataset = dataset
        self.skip_log = skip_log
        self._logged: set[int] = set()

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        guard = preserved_rng() if get_worker_info() is None else contextlib.nullcontext()
        with guard:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.random.default_generator.manual_seed(seed)
            if self.skip_log is None:
                return self.dataset[index]
            return self._first_readable(index, seed)

    def _first_readable(self, index: int, seed: int) -> Any:
        for attempt in range(MAX_SKIPS_IN_A_ROW + 1):
            candidate = (index + attempt) % len(self)
            try:
                return self.dataset[candidate]
            except (InputError, OSError) as error:
                if attempt == MAX_SKIPS_IN_A_ROW:
                    raise InputError(f"{MAX_SKIPS_IN_A_ROW + 1} unreadable samples in a row, the last: "
                                     f"{one_line(error)}") from None
                self._record(candidate, error)
                torch.random.default_generator.manual_seed(seed)  # the substitute sees the same draws
                random.seed(seed)
                np.random.seed(seed % 2**32)
        raise AssertionError("unreachable")

    def _record(self, index: int, error: BaseException) -> None:
        if index in self._logged or self.skip_log is None:
            return
        self._logged.add(index)
        with contextlib.suppress(OSError), open(self.skip_log, "a", encoding="utf-8") as handle:
            handle.write(f"{index}\t{one_line(error)}\n")
