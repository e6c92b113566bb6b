"""Which images a command works on and where each result goes: inputs, outputs, shards.

:func:`collect_inputs` turns the command line's files, folders and glob patterns into :class:`InputItem`
objects (with the path under their root, mirrored in the output folder); :func:`plan_outputs` gives each
an output path from a :class:`BatchPlan` (``-o``, ``--suffix``, ``--ext``), flagging the ones that would
overwrite an input or collide; :func:`select_shard` splits the jobs between torchrun processes.
No torch, no image decoding: cheap enough to run before anything is loaded.
"""

from __future__ import annotations

import glob
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gantool.errors import InputError, OutputError, UsageError

if TYPE_CHECKING:
    from gantool.image.io import Image

_GLOB_CHARS = re.compile(r"[*?[]")


@dataclass(frozen=True)
class InputItem:
    """One input image: where it is, where it sits under its input root (mirrored in the output folder),
    the root folder or glob prefix it was found under (None for a named file), and why it cannot be
    processed (a named file that does not exist, an empty folder ...).

    ``companions`` holds the files of a multi-input task's other inputs (``{"mask": Path(...)}``, paired
    by :mod:`gantool.engine.pairing`); empty for single-input tasks.
    """

    path: Path
    relative_path: Path
    root: Path | None = None
    error: str | None = None
    companions: Mapping[str, Path] = field(default_factory=dict, hash=False)

    def all_paths(self) -> tuple[Path, ...]:
        """The image and every companion file: what must not be overwritten, and what the journal fingerprints."""
        return (self.path, *self.companions.values())


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


# ------------------------------------------------------------------------------------------ collecting


def collect_inputs(inputs: Sequence[str | os.PathLike[str]], *, recursive: bool = False,
                   extensions: frozenset[str] | None = None) -> list[InputItem]:
    """Expand files, folders and glob patterns into a sorted, de-duplicated list of input items.

    Named files are taken whatever their extension (decoding reports a bad one); inside folders and glob
    matches only supported image extensions count, and hidden files and files that are not images by
    name are ignored. A missing file, an unmatched glob, a folder without images, and a file in a folder
    that looks like an image but cannot be used (a GIF, a dangling symbolic link, a sub-folder that
    cannot be listed; see :func:`gantool.image.files.scan_images`) become items with ``error`` set, not
    exceptions, so the rest still runs and the summary reports each one.
    """
    if extensions is None:
        from gantool.image.io import SUPPORTED_EXTENSIONS

        extensions = SUPPORTED_EXTENSIONS
    found: list[InputItem] = []
    for raw in inputs:
        text = os.fspath(raw)
        path = Path(text).expanduser()
        if path.is_dir():
            images, unusable = _folder_images(path, recursive, extensions)
            found += [InputItem(p, p.relative_to(path), path) for p in images]
            found += [InputItem(p, p.relative_to(path), path, why) for p, why in unusable]
            if not images and not unusable:
                hint = "" if recursive else " (use --recursive for sub-folders)"
                found.append(InputItem(path, Path(path.name), None, f"no supported images in folder{hint}"))
        elif path.exists() or not _GLOB_CHARS.search(text):
            error = None if path.exists() else _missing(path)
            found.append(InputItem(path, Path(path.name), None, error))
        else:
            found += _glob_items(text, recursive, extensions)
    unique: dict[str, InputItem] = {}
    for item in sorted(found, key=lambda i: (str(i.path), i.error or "")):
        unique.setdefault(path_key(item.path) + (f"\0{item.error}" if item.error else ""), item)
    return list(unique.values())


def _folder_images(folder: Path, recursive: bool,
                   extensions: frozenset[str]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """A folder's images, and the files in it that look like images but cannot be used (with why)."""
    from gantool.image.files import scan_images

    try:
        scan = scan_images(folder, recursive=recursive, extensions=extensions)
    except InputError as error:  # a folder that cannot be listed is one failed item, like a missing file
        return [], [(folder, str(error))]
    return scan.images, scan.unusable


def _is_image(path: Path, root: Path, extensions: frozenset[str]) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return not hidden and path.suffix.lower() in extensions and path.is_file()


def _missing(path: Path) -> str:
    from gantool.image.files import missing_reason

    return missing_reason(path)


def _unusable(path: Path, root: Path, extensions: frozenset[str]) -> str | None:
    from gantool.image.files import unusable_reason

    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return None if hidden else unusable_reason(path, extensions)


def _glob_items(pattern: str, recursive: bool, extensions: frozenset[str]) -> list[InputItem]:
    parts = Path(pattern).expanduser().parts
    static = list(_prefix(parts))
    root = Path(*static) if static else Path(".")
    items: list[InputItem] = []
    for match in sorted(glob.glob(os.path.expanduser(pattern), recursive=True)):
        path = Path(match)
        if path.is_dir():
            images, unusable = _folder_images(path, recursive, extensions)
            items += [InputItem(p, p.relative_to(root), root) for p in images]
            items += [InputItem(p, p.relative_to(root), root, why) for p, why in unusable]
        elif _is_image(path, root, extensions):
            items.append(InputItem(path, path.relative_to(root), root))
        elif why := _unusable(path, root, extensions):
            items.append(InputItem(path, path.relative_to(root), root, why))
    if not items:
        items.append(InputItem(Path(pattern), Path(Path(pattern).name), None, "no images match this pattern"))
    return items


def _prefix(parts: tuple[str, ...]) -> Iterator[str]:
    for part in parts[:-1]:
        if _GLOB_CHARS.search(part):
            return
        yield part


def path_key(path: Path) -> str:
    """The form of a path the journal and collision checks compare: resolved, case-folded where the OS is."""
    return os.path.normcase(os.path.realpath(path))


# -------------------------------------------------------------------------------------------- planning


def plan_outputs(items: Sequence[InputItem], plan: BatchPlan) -> list[Job]:
    """Give every input its output path; refuse (``OutputError``) a plan that would replace inputs.

    With ``plan.output`` the input tree is mirrored below it, otherwise each output goes next to its
    input. ``suffix`` is added to the stem and ``ext`` replaces the extension. An output that would be
    one of the item's own input files (its image or a companion such as its mask) refuses the whole plan;
    one that would be another item's input file, or the output of an earlier item, makes that item fail;
    an input found inside the output folder (``-r -o`` into the input tree) is skipped so reruns do not
    feed on their own outputs.
    """
    ext = _normalise_ext(plan.ext)
    out_key = path_key(plan.output) + os.sep if plan.output is not None else None

    def fed_back(item: InputItem) -> bool:
        return bool(out_key and item.root is not None and path_key(item.path).startswith(out_key))

    inputs = {path_key(p) for i in items if i.error is None and not fed_back(i) for p in i.all_paths()}
    jobs: list[Job] = []
    claimed: dict[str, Path] = {}
    replaced: list[tuple[Path, str]] = []
    for item in items:
        if item.error is not None:  # one found inside the output folder is passed over like the images there
            jobs.append(Job(item, None, skip="inside the output folder") if fed_back(item)
                        else Job(item, None, error=item.error))
            continue
        name = item.relative_path.stem + plan.suffix + (ext or item.relative_path.suffix)
        folder = item.path.parent if plan.output is None else plan.output / item.relative_path.parent
        output = folder / name
        key = path_key(output)
        own = {path_key(path): label for label, path in (("input", item.path), *item.companions.items())}
        if key in own:
            replaced.append((output, own[key]))
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
        output, label = replaced[0]
        what = "their input" if label == "input" else f"their {label} file"
        raise OutputError(f"{len(replaced)} output(s) would replace {what} (e.g. '{output}'); "
                          "pass -o DIR, --suffix TEXT or another --ext")
    return jobs


def _normalise_ext(ext: str | None) -> str | None:
    if not ext:
        return None
    from gantool.image.io import SUPPORTED_EXTENSIONS

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


#: Bytes of decoded inputs waiting for compute, and (separately) of results queued for or in the writer.
#: Counted in items, a folder of x4 upscales could hold four 75 MB float results at once; one item always
#: passes, however large, so no image is refused for its size here.
QUEUE_BYTES = 64 * 2**20


def item_bytes(image: Image, companions: dict[str, Image] | None = None) -> int:
    """Memory held by a decoded or finished item: its pixels, alpha and companion images."""
    total = 0
    for each in (image, *(companions or {}).values()):
        total += each.color.nbytes + (each.alpha.nbytes if each.alpha is not None else 0)
    return total


class ByteBudget:
    """A gate counted in bytes: ``acquire(n)`` waits while others hold bytes and ``n`` more would pass the
    limit. Whatever its size, an item passes when nothing is held, so the pipeline always moves."""

    def __init__(self, limit: int) -> None:
        self.limit, self.held, self.peak = limit, 0, 0
        self._changed = threading.Condition()

    def acquire(self, size: int) -> None:
        with self._changed:
            while self.held > 0 and self.held + size > self.limit:
                self._changed.wait(0.2)  # a timeout keeps Ctrl-C prompt on the main thread
            self.held += size
            self.peak = max(self.peak, self.held)

    def release(self, size: int) -> None:
        with self._changed:
            self.held -= size
            self._changed.notify_all()
