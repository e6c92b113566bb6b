"""The folder pipeline every image verb uses: decode -> process -> encode over planned jobs, keep going.

Inputs and outputs are planned in :mod:`gantool.engine.batchplan`, the journal lives in
:mod:`gantool.engine.journal`; this module runs the jobs.

It knows nothing about tasks: it moves :class:`gantool.io.Image` objects through a ``process`` callable.
An item of a multi-input task (an image plus its mask ...) is read whole: its image and every companion
file, checked to have the same pixel size, and ``process(image, companions)`` gets them all. Decoding
runs in worker threads and encoding (plus the atomic write) on a writer thread, so with bounded queues
the main thread computes while the files of the neighbouring images are read and written. One bad file
is recorded and the rest go on. A JSONL journal in the output folder (``.gantool-journal.jsonl``)
records every finished item with a fingerprint of its input files and a hash of the parameters, so
rerunning the same command resumes where it stopped, and changed parameters recompute. Outputs are only
ever written atomically (``io.write_image``), never over any input file (a mask included), so an
interrupted run (Ctrl-C, SIGTERM, even SIGKILL) never leaves a half-written output behind.

Skip rules, per item, in order:

0. ``--overwrite`` -> recomputed, always;
1. the journal's latest ``done`` line for (input, output) matches the size+mtime of the input and of every
   companion file (a mask), the parameter hash and the output's size+mtime -> skipped as "done earlier";
2. the output exists and the journal shows this same command (same parameters) wrote it from older input
   files -> recomputed (a rerun refreshes its own outputs);
3. the output exists and the journal shows gantool wrote it with other parameters (another verb, another
   ``--scale``) -> kept, "made with other parameters";
4. the output exists otherwise -> kept.

One run at a time writes into an output folder (per ``--shard``): a second one is refused up front.

The exit rule: a run exits 0 only when every input it was given was either written or deliberately
skipped by the rules above (or lies inside the output folder). Every input that could not be used is a
*failed* item, whether it was named (a missing file, a GIF) or found in a folder (a GIF or another image
format gantool does not read, a dangling symbolic link, a special file, a sub-folder that cannot be
listed): each gets one line naming it and why in the summary, the summary counts them, and the command
exits 1 after the summary (``BatchResult.raise_if_failed``). Files that are not images by name
(``notes.txt``) and hidden files are not inputs and are ignored.

Without ``-o`` outputs go next to their inputs and no journal is kept (nothing hidden is added to the
photo folders); reruns then resume through rule 3.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gantool.engine.batchplan import (
    QUEUE_BYTES,
    BatchPlan,
    ByteBudget,
    InputItem,
    Job,
    item_bytes,
    path_key,
    plan_outputs,
    resolve_shard,
    select_shard,
)
from gantool.engine.journal import (
    JOURNAL_NAME,
    Journal,
    companion_fingerprints,
    exclusive_run,
    fingerprint,
    params_hash,
    skip_reason,
)
from gantool.errors import InputError, one_line

if TYPE_CHECKING:
    from rich.console import Console

    from gantool.image.io import Image

logger = logging.getLogger(__name__)

Status = Literal["done", "failed", "skipped"]
_SUMMARY_LINES = 30


@dataclass(frozen=True)
class ItemResult:
    input: Path
    output: Path | None
    status: Status
    reason: str = ""


@dataclass
class BatchResult:
    """What happened to every item of this run (this shard), in completion order."""

    items: list[ItemResult] = field(default_factory=list)
    interrupted: bool = False
    journal: Path | None = None

    def with_status(self, status: Status) -> list[ItemResult]:
        return [r for r in self.items if r.status == status]

    @property
    def done(self) -> list[ItemResult]:
        return self.with_status("done")

    @property
    def skipped(self) -> list[ItemResult]:
        return self.with_status("skipped")

    @property
    def failed(self) -> list[ItemResult]:
        return self.with_status("failed")

    def raise_if_failed(self) -> None:
        """Raise an ``InputError`` when any item failed, so the command exits non-zero after the summary."""
        if self.failed:
            raise InputError(f"{len(self.failed)} of {len(self.items)} images failed; see the summary above")


# --------------------------------------------------------------------------------------------- running


def run_batch(items: Sequence[InputItem], process: Callable[..., Image], plan: BatchPlan, *,
              workers: int = 2, read: Callable[[Path], Image] | None = None,
              write: Callable[..., Any] | None = None, console: Console | None = None,
              progress: bool = True, description: str = "Processing",
              resizable: Collection[str] = (), queue_bytes: int = QUEUE_BYTES) -> BatchResult:
    """Run ``process`` over every input and write the outputs; never stops for one bad file.

    ``workers`` threads decode ahead (0: decode on the main thread), ``process`` runs on the calling
    thread, and one writer thread encodes and writes atomically. Memory stays bounded in bytes: decoded
    items wait for compute while they hold under ``queue_bytes`` (and at most ``workers + 1`` of them),
    and results queued for or in the writer hold under ``queue_bytes`` (one item always passes). On
    Ctrl-C (or SIGTERM) the write in progress finishes, queued results are dropped, the journal is closed,
    the summary is printed and ``KeyboardInterrupt`` propagates; rerunning resumes.

    Args:
        items: From :func:`collect_inputs`.
        process: Image in, image out; any exception fails only that item. An item with companions
            (``InputItem.companions``) is processed as ``process(image, {name: companion image})``.
        plan: Output placement, overwrite policy, shard and parameters.
        workers: Decode threads.
        read, write: ``gantool.io.read_image`` / ``write_image`` unless given (for tests).
        console: Where progress and the summary go (stderr by default).
        progress: Show a progress bar.
        description: Label of the progress bar.
        resizable: Companion input names resized (nearest) to their image when sizes differ, not refused.
        queue_bytes: The byte bound of each of the two queues (:data:`~gantool.engine.batchplan.QUEUE_BYTES`).

    Returns:
        A :class:`BatchResult`; call ``raise_if_failed()`` to turn failures into a non-zero exit.

    Raises:
        OutputError: Before anything runs, when outputs would replace inputs.
        UsageError: On a malformed ``--shard`` or ``--ext``.
    """
    from rich.console import Console

    if read is None or write is None:
        from gantool.image import io

        read, write = read or io.read_image, write or io.write_image
    console = console or Console(stderr=True)
    jobs = plan_outputs(items, plan)
    shard = resolve_shard(plan.shard)
    if shard is not None:
        jobs = select_shard(jobs, *shard)
    lock = contextlib.ExitStack()  # one run per output folder (and shard): a second one is refused
    if plan.output is not None:
        lock.enter_context(exclusive_run(plan.output, shard))
    with lock:
        return _run_jobs(jobs, process, plan, read, write, workers, console, progress, description, resizable,
                         queue_bytes)


def _run_jobs(jobs: list[Job], process: Callable[..., Image], plan: BatchPlan, read: Callable[[Path], Image],
              write: Callable[..., Any], workers: int, console: Console, progress: bool,
              description: str, resizable: Collection[str], queue_bytes: int = QUEUE_BYTES) -> BatchResult:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    journal = Journal(plan.output / JOURNAL_NAME) if plan.output is not None else None
    run = _Run(journal, params_hash(plan.params), BatchResult(journal=journal.path if journal else None))
    previous = journal.load() if journal is not None else {}
    todo: list[Job] = []
    for job in jobs:
        if job.error is not None or job.skip is not None:
            run.finish(job, "failed" if job.error else "skipped", job.error or job.skip or "")
        elif reason := skip_reason(job, previous, run.phash, plan.overwrite):
            run.finish(job, "skipped", reason)
        else:
            todo.append(job)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=not progress)
    task_id = bar.add_task(description, total=len(todo))
    run.advance = lambda: bar.advance(task_id)
    try:
        with bar, _sigterm_as_interrupt():
            _pipeline(todo, process, _Reader(read, todo, resizable), write, plan.quality, workers, run, queue_bytes)
    except KeyboardInterrupt:
        run.result.interrupted = True
        raise
    finally:
        if journal is not None:
            journal.close()
        _print_summary(console, run.result)
    return run.result


class _Run:
    """Thread-safe bookkeeping shared by the main and writer threads."""

    def __init__(self, journal: Journal | None, phash: str, result: BatchResult) -> None:
        self.journal, self.phash, self.result = journal, phash, result
        self.advance: Callable[[], None] = lambda: None
        self._lock = threading.Lock()

    def finish(self, job: Job, status: Status, reason: str = "", advance: bool = False) -> None:
        reason = " ".join(reason.split())
        with self._lock:
            self.result.items.append(ItemResult(job.item.path, job.output, status, reason))
        if self.journal is not None and job.output is not None:
            inp = fingerprint(job.item.path) or (None, None)
            out = (fingerprint(job.output) if status == "done" else None) or (None, None)
            entry: dict[str, Any] = {
                "input": path_key(job.item.path), "input_size": inp[0], "input_mtime_ns": inp[1],
                "output": path_key(job.output), "output_size": out[0], "output_mtime_ns": out[1],
                "status": status, "error": reason,
                "params": self.phash, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            if job.item.companions:  # absent for single-input items: their lines look as they always did
                entry["companions"] = companion_fingerprints(job.item)
            self.journal.append(entry)
        if advance:
            self.advance()


class _Reader:
    """Decodes everything a job needs: its image and its companions, checked to be of the image's size.

    A companion shared by several items (one mask file for every image) is decoded once and kept. One
    named in ``resizable`` (``InputSpec.resize == "nearest"``) is resized to the image's size instead.
    """

    def __init__(self, read: Callable[[Path], Image], jobs: Sequence[Job], resizable: Collection[str] = ()) -> None:
        self.read = read
        self.resizable = frozenset(resizable)
        uses: dict[str, int] = {}
        for job in jobs:
            for path in job.item.companions.values():
                uses[path_key(path)] = uses.get(path_key(path), 0) + 1
        self._shared = {key for key, count in uses.items() if count > 1}
        self._cache: dict[str, Image] = {}
        self._lock = threading.Lock()

    def __call__(self, job: Job) -> tuple[Image, dict[str, Image]]:
        image = self.read(job.item.path)
        companions = {}
        for name, path in job.item.companions.items():
            companion = self._companion(path)
            if (companion.height, companion.width) != (image.height, image.width) and name in self.resizable:
                companion = companion.resized_nearest(image.height, image.width)
            if (companion.height, companion.width) != (image.height, image.width):
                raise InputError(f"{name} '{path}' is {companion.width}x{companion.height} pixels but image "
                                 f"'{job.item.path}' is {image.width}x{image.height}; they must match")
            companions[name] = companion
        return image, companions

    def _companion(self, path: Path) -> Image:
        key = path_key(path)
        if key not in self._shared:
            return self.read(path)
        with self._lock:
            cached = self._cache.get(key)
        if cached is None:
            cached = self.read(path)  # two threads may both decode it once; either copy is fine
            with self._lock:
                self._cache[key] = cached
        return cached


Decoded = tuple["Image", dict[str, "Image"]]  # what a decode worker returns: an image and its companions


def _waiting_bytes(pending: deque[tuple[Job, cf.Future[Decoded] | None]], typical: int) -> int:
    """Bytes of the decodes ahead: measured for finished ones, ``typical`` (the last item's) for the rest."""
    total = 0
    for _, future in pending:
        if future is not None and future.done() and not future.cancelled() and future.exception() is None:
            total += item_bytes(*future.result())
        else:
            total += typical
    return total


def _pipeline(todo: list[Job], process: Callable[..., Image], read: _Reader,
              write: Callable[..., Any], quality: int, workers: int, run: _Run,
              queue_bytes: int = QUEUE_BYTES) -> None:
    results: queue.Queue[tuple[Job, Image, int] | None] = queue.Queue()
    budget = ByteBudget(queue_bytes)  # results queued for, or in, the writer
    stop = threading.Event()
    writer = threading.Thread(target=_write_loop, args=(results, write, quality, run, stop, budget),
                              name="gantool-writer")
    writer.start()
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gantool-decode") if workers else None
    pending: deque[tuple[Job, cf.Future[Decoded] | None]] = deque()
    upcoming = iter(todo)
    typical = queue_bytes  # the estimate for decodes still running: the last decoded item's bytes
    try:
        while True:
            while (pool is not None and len(pending) <= workers
                   and (not pending or _waiting_bytes(pending, typical) + typical <= queue_bytes)
                   and (job := next(upcoming, None))):
                pending.append((job, pool.submit(read, job)))
            if pool is None and (job := next(upcoming, None)):
                pending.append((job, None))
            if not pending:
                break
            job, future = pending.popleft()
            try:
                image, companions = read(job) if future is None else future.result()
                typical = item_bytes(image, companions)
                output = process(image, companions) if job.item.companions else process(image)
            except Exception as err:  # one bad file (or one failing computation) never stops the rest
                run.finish(job, "failed", one_line(err), advance=True)
                continue
            del image, companions  # the input is not held while waiting for the writer
            size = item_bytes(output)
            budget.acquire(size)
            results.put((job, output, size))
            del output
    except BaseException:
        stop.set()  # the writer finishes the file in hand and drops the queued ones
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        results.put(None)
        writer.join()


def _write_loop(results: queue.Queue, write: Callable[..., Any], quality: int, run: _Run,
                stop: threading.Event, budget: ByteBudget | None = None) -> None:
    while (entry := results.get()) is not None:
        job, image, size = entry
        try:
            if stop.is_set():
                continue
            write(job.output, image, bit_depth=image.bit_depth, quality=quality, protect=job.item.all_paths())
        except Exception as err:
            run.finish(job, "failed", one_line(err), advance=True)
        else:
            run.finish(job, "done", advance=True)
        finally:
            del image, entry
            if budget is not None:
                budget.release(size)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (torchrun, kill, a scheduler) stops as cleanly as Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_summary(console: Console, result: BatchResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table("status", "images", "reason")
    table.columns[1].justify = "right"
    table.add_row("[green]done", str(len(result.done)), "")
    reasons: dict[str, int] = {}
    for item in result.skipped:
        reasons[item.reason] = reasons.get(item.reason, 0) + 1
    for reason, n in sorted(reasons.items()) or [("", 0)]:
        table.add_row("[yellow]skipped", str(n), escape(reason))
    table.add_row("[red]failed" if result.failed else "failed", str(len(result.failed)), "")
    console.print(table)
    # inputs that could not even start (missing, unsupported, dangling link) are listed in full: no journal
    # holds them; failures while processing are cut after _SUMMARY_LINES, the journal has them all
    unread = [item for item in result.failed if item.output is None]
    processed = [item for item in result.failed if item.output is not None]
    for item in unread + processed[:_SUMMARY_LINES]:
        where = "" if str(item.input) in item.reason else f"{escape(str(item.input))}: "
        console.print(f"[red]failed[/red] {where}{escape(item.reason)}", highlight=False, soft_wrap=True)
    if len(processed) > _SUMMARY_LINES:
        where = f" (all in {result.journal})" if result.journal else ""
        console.print(f"... and {len(processed) - _SUMMARY_LINES} more failures{where}")
    if result.interrupted:
        console.print("[bold]Interrupted[/bold]: rerun the same command to resume.")
