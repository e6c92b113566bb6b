"""The batch journal: an append-only record of finished items, so a rerun resumes where it stopped.

A JSONL file in the output folder (``.gantool-journal.jsonl``) gets one line per finished item with a
fingerprint (size and mtime) of its input and output and a hash of the parameters that made it; an item
of a multi-input task also records every companion file (``"companions": {"mask": [path, size, mtime]}``),
so a changed mask recomputes. Lines without companions (single-input runs) keep their meaning;
:func:`skip_reason` reads it to decide whether an existing output is still valid (see
:mod:`gantool.engine.batch` for the rules).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gantool.engine.batchplan import InputItem, Job, path_key
from gantool.errors import OutputError

logger = logging.getLogger(__name__)

JOURNAL_NAME = ".gantool-journal.jsonl"


def params_hash(params: Mapping[str, Any]) -> str:
    """Short stable hash of the parameters that determine an output."""
    text = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fingerprint(path: Path) -> tuple[int, int] | None:
    """``(size, mtime_ns)`` of a file, or None when it does not exist: what tells that a file changed."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


def companion_fingerprints(item: InputItem) -> dict[str, list[Any]]:
    """``{name: [path key, size, mtime_ns]}`` of an item's companion files, as the journal stores them."""
    found: dict[str, list[Any]] = {}
    for name, path in item.companions.items():
        size, mtime = fingerprint(path) or (None, None)
        found[name] = [path_key(path), size, mtime]
    return found


class Journal:
    """Append-only JSONL log of finished items, safe against SIGKILL and shared by torchrun shards.

    Each line is written with one ``os.write`` on an ``O_APPEND`` descriptor, so lines from several
    processes do not interleave and a killed process loses at most its last (unparsable, ignored) line.

    A ``skipped`` line is written once per (input, output, reason): a rerun that skips the same items
    for the same reasons adds nothing, so the journal grows with the work done, not with the reruns.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._broken = False
        self._skips: set[tuple[Any, Any, Any]] = set()

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
                        elif entry["status"] == "skipped":
                            self._skips.add(_skip_key(entry))
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
            if entry.get("status") == "skipped":  # once per (item, reason): reruns do not grow the journal
                if _skip_key(entry) in self._skips:
                    return
                self._skips.add(_skip_key(entry))
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


def _skip_key(entry: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return entry.get("input"), entry.get("output"), entry.get("error")


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


#: Why an existing output is kept: written by another command or with other parameters.
OTHER_PARAMETERS = "exists (made with other parameters; --overwrite to replace)"
FOREIGN = "output exists (use --overwrite to replace it)"
DONE = "done earlier (journal)"


def skip_reason(job: Job, previous: Mapping[tuple[str, str], Mapping[str, Any]], phash: str,
                 overwrite: bool) -> str | None:
    """Why ``job`` need not run (its output is done or must not be replaced), or None to run it.

    The overwrite rule: ``--overwrite`` recomputes every item. Without it an existing output is replaced
    only when the journal shows this same command (same parameters) made it from an input or companion
    that has changed since; a file made with other parameters (another verb, another ``--scale``) or not
    made by gantool is kept.
    """
    assert job.output is not None
    output = fingerprint(job.output)
    if output is None or overwrite:
        return None
    entry = previous.get((path_key(job.item.path), path_key(job.output)))
    ours = entry is not None and [entry.get("output_size"), entry.get("output_mtime_ns")] == list(output)
    if not ours or entry is None:
        return FOREIGN
    if entry.get("params") != phash:
        return OTHER_PARAMETERS
    same_input = [entry.get("input_size"), entry.get("input_mtime_ns")] == list(fingerprint(job.item.path) or ())
    same_companions = (entry.get("companions") or {}) == companion_fingerprints(job.item)
    return DONE if same_input and same_companions else None  # same command, newer input or mask: refresh


@contextlib.contextmanager
def exclusive_run(folder: Path, shard: tuple[int, int] | None = None) -> Iterator[None]:
    """Hold the output folder (or one shard of it) for this run: a second run into it is refused in one
    line instead of doing all the work again. The lock (``flock``) dies with the process, even on SIGKILL,
    so it never needs cleaning up; where ``fcntl`` does not exist (Windows) runs are not locked."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    name = ".gantool-run.lock" if shard is None else f".gantool-run-{shard[0]}of{shard[1]}.lock"
    path = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise OutputError(f"cannot create folder or lock in '{folder}' ({(error.strerror or str(error)).lower()})"
                          ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise OutputError(f"another gantool run (pid {holder}) is writing into '{folder}'; let it finish, "
                              "or choose another output folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
    finally:
        os.close(fd)
