"""Jobs of the web page: queued one at a time per device, with progress, cancel and their files.

A job is a request to run one task over a few uploaded images (or to generate images). The queue keeps one
worker thread per device name, so two jobs never share a GPU's memory, while a CPU job need not wait for a
CUDA one. Cancel is cooperative: a queued job is dropped at once, a running one stops between items (an
image, a chunk of samples) or, for an image, between its tiles (:mod:`gantool.engine.progress`).
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gantool.errors import one_line

State = Literal["queued", "running", "done", "failed", "cancelled"]


class Cancelled(Exception):
    """Raised by :meth:`Job.step` when the job was cancelled; the worker marks it cancelled."""


@dataclass
class Job:
    """One request and what became of it; ``folder`` holds its uploads (``in/``) and results (``out/``)."""

    id: str
    task: str
    device: str
    folder: Path
    request: dict[str, Any] = field(default_factory=dict)
    state: State = "queued"
    done: int = 0
    total: int = 1
    #: How far the item in hand is (0 to 1, from its tiles): the page's bar shows ``done + part``.
    part: float = 0.0
    message: str = ""
    _item: str = field(default="", repr=False)  # the message of the item in hand, which tiles extend
    error: str | None = None
    #: One row per result: {"input": upload name or None, "output": file name under out/, "kind": ...}.
    results: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def inputs(self) -> Path:
        return self.folder / "in"

    @property
    def outputs(self) -> Path:
        return self.folder / "out"

    def step(self, done: int, total: int, message: str = "") -> None:
        """Report progress; raises :class:`Cancelled` when a cancel was requested (between items)."""
        self.done, self.total, self.message, self.part = done, total, message, 0.0
        self._item = message
        if self.cancel_requested.is_set():
            raise Cancelled

    def tile(self, done: int, total: int) -> None:
        """Progress inside the item in hand (a :func:`~gantool.engine.progress.observe_tiles` observer);
        raises :class:`Cancelled` when a cancel was requested, which stops a large image between tiles."""
        self.part = done / max(total, 1)
        if total > 1:
            self.message = f"{self._item}, tile {done} of {total}".lstrip(", ")
        if self.cancel_requested.is_set() and done < total:
            raise Cancelled

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "task": self.task, "device": self.device, "state": self.state, "done": self.done,
                "total": self.total, "part": self.part, "message": self.message, "error": self.error,
                "results": self.results, "request": self.request}


Runner = Callable[[Job], None]


class JobQueue:
    """Jobs by id, and one worker thread per device running them in submission order."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self._jobs: dict[str, Job] = {}
        self._queues: dict[str, queue.Queue[Job | None]] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"{next(self._ids):04d}"

    def submit(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.id] = job
            work = self._queues.get(job.device)
            if work is None:
                work = self._queues[job.device] = queue.Queue()
                thread = threading.Thread(target=self._work, args=(work,), name=f"gantool-ui-{job.device}",
                                          daemon=True)
                self._threads.append(thread)
                thread.start()
        work.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return list(self._jobs.values())

    def position(self, job: Job) -> int:
        """How many jobs on the same device run or wait before ``job`` (0 when it runs)."""
        return sum(1 for other in self._jobs.values() if other.device == job.device and other.id < job.id
                   and other.state in ("queued", "running"))

    def cancel(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None and job.state in ("queued", "running"):
            job.cancel_requested.set()
            if job.state == "queued":
                job.state = "cancelled"
        return job

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until the job has finished (tests, scripts); ``TimeoutError`` otherwise."""
        deadline = time.monotonic() + timeout
        job = self._jobs[job_id]
        while job.state in ("queued", "running"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.state} after {timeout} s")
            time.sleep(0.02)
        return job

    def close(self) -> None:
        """Let the workers finish the job in hand and stop."""
        for work in self._queues.values():
            work.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def _work(self, work: queue.Queue[Job | None]) -> None:
        while (job := work.get()) is not None:
            if job.cancel_requested.is_set():
                job.state = "cancelled"
                continue
            job.state = "running"
            try:
                self._runner(job)
            except Cancelled:
                job.state = "cancelled"
            except Exception as error:  # every failure is one line on the page, never a traceback
                job.error, job.state = one_line(error), "failed"
            else:
                job.state = "cancelled" if job.cancel_requested.is_set() and job.done < job.total else "done"
