"""Training output on rank 0: a rich progress bar, ``metrics.jsonl``, TensorBoard, and sample grids.

``metrics.jsonl`` holds one JSON object per logged step: ``{"step", "epoch", "time", "losses": {...},
"lr": {...}, "steps_per_s"}``, plus ``"warnings": {...}`` while the task reports a problem. On resume,
records after the resumed step (written by the run that crashed after its last checkpoint) are dropped, so
the file always describes one consistent history. TensorBoard events are written when
``torch.utils.tensorboard`` imports, silently skipped otherwise.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TextIO

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor


class MetricsLogger:
    """Everything a training run prints or logs; a no-op on ranks other than 0 (``enabled=False``)."""

    def __init__(self, run_dir: Path, *, enabled: bool, total_steps: int, start_step: int = 0,
                 progress: bool = True) -> None:
        self.enabled = enabled
        self.run_dir = run_dir
        self.start_step, self.start_time = start_step, time.perf_counter()
        self.console = Console(stderr=True)
        self._progress: Progress | None = None
        self._writer: Any = None
        self._file: TextIO | None = None
        if not enabled:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        if progress:
            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(), TextColumn("{task.fields[losses]}"), console=self.console)
            self._task_id = self._progress.add_task("train", total=total_steps, completed=start_step,
                                                    rate="", losses="")
            self._progress.start()

    def _open_logs(self) -> None:
        """At the first record, not before: a resume that runs no step (exporting an older checkpoint with
        ``--resume step-N --steps N``) must not cut the later history out of the run's logs."""
        path = self.run_dir / "metrics.jsonl"
        _truncate_after(path, self.start_step)
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"), purge_step=self.start_step + 1)
        except ImportError:
            self._writer = None

    def _rate(self, step: int) -> float:
        elapsed = time.perf_counter() - self.start_time
        return (step - self.start_step) / elapsed if elapsed > 0 else 0.0

    def advance(self, step: int) -> None:
        """Move the progress bar to ``step`` (completed steps)."""
        if self._progress is not None:
            self._progress.update(self._task_id, completed=step, rate=f"{self._rate(step):.2f} it/s")

    def log(self, step: int, losses: dict[str, float], lrs: dict[str, float], *, epoch: int,
            warnings: dict[str, str] | None = None) -> None:
        """Record the (process-averaged) losses and learning rates after ``step`` completed steps, and the
        task's active training warnings (``"warnings": {key: line}``, only when there are some)."""
        if not self.enabled:
            return
        rate = self._rate(step)
        record: dict[str, Any] = {"step": step, "epoch": epoch, "time": round(time.time(), 3), "losses": losses,
                                  "lr": lrs, "steps_per_s": round(rate, 4)}
        if warnings:
            record["warnings"] = warnings
        if self._file is None:
            self._open_logs()
        assert self._file is not None
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._writer is not None:
            for name, value in losses.items():
                self._writer.add_scalar(f"loss/{name}", value, step)
            for name, value in lrs.items():
                self._writer.add_scalar(f"lr/{name}", value, step)
        if self._progress is not None:
            text = " ".join(f"{name}={value:.4g}" for name, value in losses.items())
            self._progress.update(self._task_id, completed=step, rate=f"{rate:.2f} it/s", losses=text)

    def message(self, text: str) -> None:
        """One line for the user (rank 0 only), printed above the progress bar."""
        if self.enabled:
            self.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        """Stop the progress bar and close the files (safe to call twice)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._file is not None:
            self._file.close()
            self._file = None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl`` (for tests and notebooks)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _truncate_after(path: Path, step: int) -> None:
    """Drop records with ``step`` greater than ``step`` (they belong to a history that was discarded)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except (json.JSONDecodeError, AttributeError):
            continue  # a torn last line from a crash
    path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def make_grid(rows: list[Tensor]) -> Tensor:
    """Rows of ``(B, 3, H, W)`` images to one ``(3, R*H, B*W)`` image (row r, column b)."""
    if not rows:
        raise ValueError("no rows to draw")
    shape = rows[0].shape
    for index, row in enumerate(rows):
        if row.dim() != 4 or row.shape[1] != 3 or row.shape != shape:
            raise ValueError(f"sample row {index} has shape {tuple(row.shape)}; every row must be "
                             f"(B, 3, H, W) like row 0 {tuple(shape)}")
    return torch.cat([torch.cat(list(row.detach().float().cpu()), dim=2) for row in rows], dim=1)


def save_sample_grid(path: Path, rows: list[Tensor]) -> Path:
    """Write rows of images as one PNG through ``gantool.io`` (values clipped to [0, 1])."""
    from gantool.image.io import Image, write_image
    from gantool.image.tensor import to_array

    grid = to_array(make_grid(rows))
    return write_image(path, Image(color=grid))
