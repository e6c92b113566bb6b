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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gantool.engine.batchplan import InputItem, Job, path_key

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


def skip_reason(job: Job, previous: Mapping[tuple[str, str], Mapping[str, Any]], phash: str,
                 overwrite: bool) -> str | None:
    """Why ``job`` need not run (its output is done or must not be replaced), or None to run it."""
    assert job.output is not None
    output = fingerprint(job.output)
    if output is None:
        return None
    entry = previous.get((path_key(job.item.path), path_key(job.output)))
    ours = entry is not None and [entry.get("output_size"), entry.get("output_mtime_ns")] == list(output)
    if ours and entry is not None:
        same_input = [entry.get("input_size"), entry.get("input_mtime_ns")] == list(
            fingerprint(job.item.path) or ())
        same_companions = (entry.get("companions") or {}) == companion_fingerprints(job.item)
        if same_input and same_companions and entry.get("params") == phash:
            return "done earlier (journal)"
        return None  # gantool wrote it with other parameters or from an older input or mask: recompute
    return None if overwrite else "output exists (use --overwrite to replace it)"
