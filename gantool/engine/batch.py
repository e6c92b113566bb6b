"""The folder pipeline every image verb uses: collect inputs, plan outputs, decode -> process -> encode.

It knows nothing about tasks: it moves :class:`gantool.io.Image` objects through a ``process`` callable.
Decoding runs in worker threads and encoding (plus the atomic write) on a writer thread, so with bounded
queues the main thread computes while the files of the neighbouring images are read and written. One bad
file is recorded and the rest go on. A JSONL journal in the output folder (``.gantool-journal.jsonl``)
records every finished item with a fingerprint of its input and a hash of the parameters, so rerunning
the same command resumes where it stopped, and changed parameters recompute. Outputs are only ever
written atomically (``io.write_image``), so an interrupted run (Ctrl-C, SIGTERM, even SIGKILL) never
leaves a half-written output behind.

Skip rules, per item, in order:

1. the journal's latest ``done`` line for (input, output) matches the input's size+mtime, the parameter
   hash and the output's size+mtime -> skipped as "done earlier" (also with ``--overwrite``: recomputing
   would give the same file; delete the journal to force it);
2. the output exists and the journal shows gantool wrote it (size+mtime match) but with other parameters
   or an older input -> recomputed;
3. the output exists otherwise -> skipped unless ``--overwrite``.

Without ``-o`` outputs go next to their inputs and no journal is kept (nothing hidden is added to the
photo folders); reruns then resume through rule 3.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import glob
import hashlib
import json
import logging
import os
import queue
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from gantool.errors import GantoolError, InputError, OutputError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from gantool.io import Image

logger = logging.getLogger(__name__)

JOURNAL_NAME = ".gantool-journal.jsonl"
Status = Literal["done", "failed", "skipped"]
_GLOB_CHARS = re.compile(r"[*?[]")
_SUMMARY_LINES = 30


@dataclass(frozen=True)
class InputItem:
    """One input image: where it is, where it sits under its input root (mirrored in the output folder),
    the root folder or glob prefix it was found under (None for a named file), and why it cannot be
    processed (a named file that does not exist, an empty folder ...)."""

    path: Path
    relative_path: Path
    root: Path | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class BatchPlan:
    """Where and how outputs are written; ``params`` is what makes an output what it is (model, task
    options ...): its hash goes into the journal so that changed parameters recompute."""

    output: Path | None = None
    suffix: str = ""
    ext: str | None = None
    quality: int = 95
    overwrite: bool = False
    shard: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.output is not None and not isinstance(self.output, Path):
            object.__setattr__(self, "output", Path(self.output))

    @classmethod
    def from_options(cls, options: Any, params: Mapping[str, Any], *, default_suffix: str = "") -> BatchPlan:
        """From an ``InferenceOptions`` (``output``, ``suffix``, ``ext``, ``quality``, ``overwrite``, ``shard``).

        Without ``-o`` and ``--suffix``, outputs go next to their inputs with ``default_suffix`` (the verb),
        so ``gantool upscale photo.jpg`` writes ``photo_upscale.jpg`` instead of refusing.
        """
        suffix = options.suffix or (default_suffix if options.output is None else "")
        return cls(output=options.output, suffix=suffix, ext=options.ext, quality=options.quality,
                   overwrite=options.overwrite, shard=options.shard, params=params)


@dataclass(frozen=True)
class Job:
    """An input with its planned output; ``error`` or ``skip`` set when it will not be processed."""

    item: InputItem
    output: Path | None
    error: str | None = None
    skip: str | None = None


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


# ------------------------------------------------------------------------------------------ collecting


def collect_inputs(inputs: Sequence[str | os.PathLike[str]], *, recursive: bool = False,
                   extensions: frozenset[str] | None = None) -> list[InputItem]:
    """Expand files, folders and glob patterns into a sorted, de-duplicated list of input items.

    Named files are taken whatever their extension (decoding reports a bad one); inside folders and glob
    matches only supported image extensions count, and hidden files are ignored. A missing file, an
    unmatched glob or a folder without images becomes an item with ``error`` set, not an exception, so
    the rest still runs and the summary reports it.
    """
    if extensions is None:
        from gantool.io import SUPPORTED_EXTENSIONS as extensions
    found: list[InputItem] = []
    for raw in inputs:
        text = os.fspath(raw)
        path = Path(text).expanduser()
        if path.is_dir():
            images = _folder_images(path, recursive, extensions)
            found += [InputItem(p, p.relative_to(path), path) for p in images]
            if not images:
                hint = "" if recursive else " (use --recursive for sub-folders)"
                found.append(InputItem(path, Path(path.name), None, f"no supported images in folder{hint}"))
        elif path.exists() or not _GLOB_CHARS.search(text):
            error = None if path.exists() else "no such file"
            found.append(InputItem(path, Path(path.name), None, error))
        else:
            found += _glob_items(text, recursive, extensions)
    unique: dict[str, InputItem] = {}
    for item in sorted(found, key=lambda i: (str(i.path), i.error or "")):
        unique.setdefault(_key(item.path) + (f"\0{item.error}" if item.error else ""), item)
    return list(unique.values())


def _folder_images(folder: Path, recursive: bool, extensions: frozenset[str]) -> list[Path]:
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in pattern if _is_image(p, folder, extensions))


def _is_image(path: Path, root: Path, extensions: frozenset[str]) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return not hidden and path.suffix.lower() in extensions and path.is_file()


def _glob_items(pattern: str, recursive: bool, extensions: frozenset[str]) -> list[InputItem]:
    parts = Path(pattern).expanduser().parts
    static = list(_prefix(parts))
    root = Path(*static) if static else Path(".")
    items: list[InputItem] = []
    for match in sorted(glob.glob(os.path.expanduser(pattern), recursive=True)):
        path = Path(match)
        if path.is_dir():
            items += [InputItem(p, p.relative_to(root), root) for p in _folder_images(path, recursive, extensions)]
        elif _is_image(path, root, extensions):
            items.append(InputItem(path, path.relative_to(root), root))
    if not items:
        items.append(InputItem(Path(pattern), Path(Path(pattern).name), None, "no images match this pattern"))
    return items


def _prefix(parts: tuple[str, ...]) -> Iterator[str]:
    for part in parts[:-1]:
        if _GLOB_CHARS.search(part):
            return
        yield part


def _key(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


# -------------------------------------------------------------------------------------------- planning


def plan_outputs(items: Sequence[InputItem], plan: BatchPlan) -> list[Job]:
    """Give every input its output path; refuse (``OutputError``) a plan that would replace inputs.

    With ``plan.output`` the input tree is mirrored below it, otherwise each output goes next to its
    input. ``suffix`` is added to the stem and ``ext`` replaces the extension. An output that would be
    another input, or the output of an earlier item, makes that item fail; an input found inside the
    output folder (``-r -o`` into the input tree) is skipped so reruns do not feed on their own outputs.
    """
    ext = _normalise_ext(plan.ext)
    out_key = _key(plan.output) + os.sep if plan.output is not None else None

    def fed_back(item: InputItem) -> bool:
        return bool(out_key and item.root is not None and _key(item.path).startswith(out_key))

    inputs = {_key(i.path) for i in items if i.error is None and not fed_back(i)}
    jobs: list[Job] = []
    claimed: dict[str, Path] = {}
    replaced: list[Path] = []
    for item in items:
        if item.error is not None:
            jobs.append(Job(item, None, error=item.error))
            continue
        name = item.relative_path.stem + plan.suffix + (ext or item.relative_path.suffix)
        folder = item.path.parent if plan.output is None else plan.output / item.relative_path.parent
        output = folder / name
        key = _key(output)
        if key == _key(item.path):
            replaced.append(item.path)
        elif fed_back(item):
            jobs.append(Job(item, output, skip="inside the output folder"))
        elif key in inputs:
            jobs.append(Job(item, output, error=f"output '{output}' would overwrite another input"))
        elif key in claimed:
            jobs.append(Job(item, output, error=f"output '{output}' is also the output of '{claimed[key]}'"))
        else:
            claimed[key] = item.path
            jobs.append(Job(item, output))
    if replaced:
        raise OutputError(f"{len(replaced)} output(s) would replace their input (e.g. '{replaced[0]}'); "
                          "pass -o DIR, --suffix TEXT or another --ext")
    return jobs


def _normalise_ext(ext: str | None) -> str | None:
    if not ext:
        return None
    from gantool.io import SUPPORTED_EXTENSIONS

    dotted = "." + ext.lower().lstrip(".")
    if dotted not in SUPPORTED_EXTENSIONS:
        raise UsageError(f"--ext {ext!r} is not supported; use one of "
                         + ", ".join(sorted(e.lstrip(".") for e in SUPPORTED_EXTENSIONS)))
    return dotted


def resolve_shard(shard: str | None, env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """``"i/N"`` (1-based) as ``(i, N)``; without it, ``RANK``/``WORLD_SIZE`` under torchrun; else None."""
    env = os.environ if env is None else env
    if shard is None:
        world = int(env.get("WORLD_SIZE", "1") or 1)
        return (int(env.get("RANK", "0")) + 1, world) if world > 1 and "RANK" in env else None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", shard)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise UsageError(f"--shard {shard!r} must look like i/N with 1 <= i <= N, e.g. 2/4")
    return int(match[1]), int(match[2])


def select_shard(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """Items index, index+N, index+2N ... (1-based) of the sorted list: every item in exactly one shard."""
    return list(jobs[index - 1 :: count])


# ---------------------------------------------------------------------------------------------- journal


def params_hash(params: Mapping[str, Any]) -> str:
    """Short stable hash of the parameters that determine an output."""
    text = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fingerprint(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


class Journal:
    """Append-only JSONL log of finished items, safe against SIGKILL and shared by torchrun shards.

    Each line is written with one ``os.write`` on an ``O_APPEND`` descriptor, so lines from several
    processes do not interleave and a killed process loses at most its last (unparsable, ignored) line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._broken = False

    def load(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The latest ``done`` entry per (input, output); malformed lines are ignored."""
        done: dict[tuple[str, str], dict[str, Any]] = {}
        try:
            with open(self.path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        entry = json.loads(line)
                        if entry["status"] == "done":
                            done[(entry["input"], entry["output"])] = entry
        except FileNotFoundError:
            pass
        except OSError as err:
            logger.warning("cannot read the journal '%s' (%s); treating every item as new", self.path, err)
        return done

    def append(self, entry: Mapping[str, Any]) -> None:
        """Add one line; on a write error warn once and go on without the journal (outputs still count)."""
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            if self._broken:
                return
            try:
                if self._fd is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                    if os.fstat(self._fd).st_size and not _ends_with_newline(self.path):
                        line = "\n" + line  # a killed run left half a line: start a fresh one
                os.write(self._fd, line.encode("utf-8"))
            except OSError as err:
                self._broken = True
                logger.warning("cannot write the journal '%s' (%s); a rerun will not know what was done",
                               self.path, err.strerror or err)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def _skip_reason(job: Job, previous: Mapping[tuple[str, str], Mapping[str, Any]], phash: str,
                 overwrite: bool) -> str | None:
    assert job.output is not None
    output = _fingerprint(job.output)
    if output is None:
        return None
    entry = previous.get((_key(job.item.path), _key(job.output)))
    ours = entry is not None and [entry.get("output_size"), entry.get("output_mtime_ns")] == list(output)
    if ours and entry is not None:
        same_input = [entry.get("input_size"), entry.get("input_mtime_ns")] == list(
            _fingerprint(job.item.path) or ())
        if same_input and entry.get("params") == phash:
            return "done earlier (journal)"
        return None  # gantool wrote it with other parameters or from an older input: recompute
    return None if overwrite else "output exists (use --overwrite to replace it)"


# --------------------------------------------------------------------------------------------- running


def run_batch(items: Sequence[InputItem], process: Callable[[Image], Image], plan: BatchPlan, *,
              workers: int = 2, read: Callable[[Path], Image] | None = None,
              write: Callable[..., Any] | None = None, console: Console | None = None,
              progress: bool = True, description: str = "Processing") -> BatchResult:
    """Run ``process`` over every input and write the outputs; never stops for one bad file.

    ``workers`` threads decode ahead (0: decode on the main thread), ``process`` runs on the calling
    thread, and one writer thread encodes and writes atomically. At most ``workers + 1`` decoded images
    wait for compute and 2 results wait for the writer, so memory stays bounded. On Ctrl-C (or SIGTERM)
    the write in progress finishes, queued results are dropped, the journal is closed, the summary is
    printed and ``KeyboardInterrupt`` propagates; rerunning resumes.

    Args:
        items: From :func:`collect_inputs`.
        process: Image in, image out; any exception fails only that item.
        plan: Output placement, overwrite policy, shard and parameters.
        workers: Decode threads.
        read, write: ``gantool.io.read_image`` / ``write_image`` unless given (for tests).
        console: Where progress and the summary go (stderr by default).
        progress: Show a progress bar.
        description: Label of the progress bar.

    Returns:
        A :class:`BatchResult`; call ``raise_if_failed()`` to turn failures into a non-zero exit.

    Raises:
        OutputError: Before anything runs, when outputs would replace inputs.
        UsageError: On a malformed ``--shard`` or ``--ext``.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if read is None or write is None:
        from gantool import io

        read, write = read or io.read_image, write or io.write_image
    console = console or Console(stderr=True)
    jobs = plan_outputs(items, plan)
    shard = resolve_shard(plan.shard)
    if shard is not None:
        jobs = select_shard(jobs, *shard)
    journal = Journal(plan.output / JOURNAL_NAME) if plan.output is not None else None
    run = _Run(journal, params_hash(plan.params), BatchResult(journal=journal and journal.path))
    previous = journal.load() if journal is not None else {}
    todo: list[Job] = []
    for job in jobs:
        if job.error is not None or job.skip is not None:
            run.finish(job, "failed" if job.error else "skipped", job.error or job.skip or "")
        elif reason := _skip_reason(job, previous, run.phash, plan.overwrite):
            run.finish(job, "skipped", reason)
        else:
            todo.append(job)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), console=console, disable=not progress)
    task_id = bar.add_task(description, total=len(todo))
    run.advance = lambda: bar.advance(task_id)
    try:
        with bar, _sigterm_as_interrupt():
            _pipeline(todo, process, read, write, plan.quality, workers, run)
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
            inp = _fingerprint(job.item.path) or (None, None)
            out = (_fingerprint(job.output) if status == "done" else None) or (None, None)
            self.journal.append({
                "input": _key(job.item.path), "input_size": inp[0], "input_mtime_ns": inp[1],
                "output": _key(job.output), "output_size": out[0], "output_mtime_ns": out[1],
                "status": status, "error": reason,
                "params": self.phash, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            })
        if advance:
            self.advance()


def _pipeline(todo: list[Job], process: Callable[[Image], Image], read: Callable[[Path], Image],
              write: Callable[..., Any], quality: int, workers: int, run: _Run) -> None:
    results: queue.Queue[tuple[Job, Image] | None] = queue.Queue(maxsize=2)
    stop = threading.Event()
    writer = threading.Thread(target=_write_loop, args=(results, write, quality, run, stop),
                              name="gantool-writer")
    writer.start()
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gantool-decode") if workers else None
    pending: deque[tuple[Job, cf.Future[Image] | None]] = deque()
    upcoming = iter(todo)
    try:
        while True:
            while pool is not None and len(pending) <= workers and (job := next(upcoming, None)):
                pending.append((job, pool.submit(read, job.item.path)))
            if pool is None and (job := next(upcoming, None)):
                pending.append((job, None))
            if not pending:
                break
            job, future = pending.popleft()
            try:
                image = read(job.item.path) if future is None else future.result()
                output = process(image)
            except Exception as err:  # one bad file (or one failing computation) never stops the rest
                run.finish(job, "failed", _one_line(err), advance=True)
                continue
            results.put((job, output))
    except BaseException:
        stop.set()  # the writer finishes the file in hand and drops the queued ones
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        results.put(None)
        writer.join()


def _write_loop(results: queue.Queue, write: Callable[..., Any], quality: int, run: _Run,
                stop: threading.Event) -> None:
    while (entry := results.get()) is not None:
        if stop.is_set():
            continue
        job, image = entry
        try:
            write(job.output, image, bit_depth=image.bit_depth, quality=quality, protect=(job.item.path,))
        except Exception as err:
            run.finish(job, "failed", _one_line(err), advance=True)
        else:
            run.finish(job, "done", advance=True)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return text if isinstance(err, GantoolError) else f"{type(err).__name__}: {text}".rstrip(": ")


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
    for item in result.failed[:_SUMMARY_LINES]:
        where = "" if str(item.input) in item.reason else f"{escape(str(item.input))}: "
        console.print(f"[red]failed[/red] {where}{escape(item.reason)}", highlight=False, soft_wrap=True)
    if len(result.failed) > _SUMMARY_LINES:
        where = f" (all in {result.journal})" if result.journal else ""
        console.print(f"... and {len(result.failed) - _SUMMARY_LINES} more failures{where}")
    if result.interrupted:
        console.print("[bold]Interrupted[/bold]: rerun the same command to resume.")
