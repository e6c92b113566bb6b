"""Which companion file (a mask ...) goes with which image: the pairing rules of ``--NAME FILE|DIR|GLOB``.

A task with several inputs (:class:`gantool.plugin.spec.InputSpec`) takes its primary images as the
command's positional arguments and each other input as one option. Its value pairs with the images so:

- **a file** applies to every image;
- **a folder** pairs by the image's path under its input root and its stem, with any supported
  extension: photo ``a/b/x.jpg`` pairs with ``MASKS/a/b/x.png`` (a named file pairs with ``MASKS/x.*``);
- **a glob pattern** pairs by stem among its matches (``'masks/**/*.png'``).

A missing companion, or two candidates with the same stem, fails only that item (``InputItem.error``
names the image and what is missing), so the other images still run and the summary lists it. A source
that cannot pair with anything (no such file or folder, a glob matching no image) is a ``UsageError``.
No torch, no decoding.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from gantool.engine.batchplan import InputItem, path_key
from gantool.errors import UsageError

_GLOB_CHARS = re.compile(r"[*?[]")

#: Looks up an item's companion: its path, or a one-line reason why there is none.
Lookup = Callable[[InputItem], "Path | str"]


def pair_inputs(items: Sequence[InputItem], sources: Mapping[str, str | os.PathLike[str]], *,
                extensions: frozenset[str] | None = None) -> list[InputItem]:
    """Attach every named companion source (``{"mask": "masks/"}``) to the items; see the module rules."""
    for name, source in sources.items():
        items = pair_companions(items, name, source, extensions=extensions)
    return list(items)


def pair_companions(items: Sequence[InputItem], name: str, source: str | os.PathLike[str], *,
                    extensions: frozenset[str] | None = None) -> list[InputItem]:
    """The items with ``companions[name]`` set from ``source``, or with ``error`` set when none pairs.

    Raises:
        UsageError: ``source`` is no file, folder or matching glob, or a file of an unsupported format.
    """
    lookup = companion_lookup(name, source, extensions=extensions)
    paired = []
    for item in items:
        if item.error is not None:
            paired.append(item)
            continue
        found = lookup(item)
        if isinstance(found, str):
            paired.append(dataclasses.replace(item, error=found))
        elif path_key(found) == path_key(item.path):
            paired.append(dataclasses.replace(item, error=f"the {name} of image '{item.path}' is the image itself"))
        else:
            paired.append(dataclasses.replace(item, companions={**item.companions, name: found}))
    return paired


def companion_lookup(name: str, source: str | os.PathLike[str], *,
                     extensions: frozenset[str] | None = None) -> Lookup:
    """A function giving each item its companion from ``source`` (file, folder or glob)."""
    if extensions is None:
        from gantool.image.io import SUPPORTED_EXTENSIONS

        extensions = SUPPORTED_EXTENSIONS
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() not in extensions:
            raise UsageError(f"--{name} '{path}' is not a supported image ({' '.join(sorted(extensions))})")
        return lambda item: path
    if path.is_dir():
        return _FolderLookup(name, path, extensions)
    if _GLOB_CHARS.search(text):
        matches = [Path(m) for m in sorted(glob.glob(os.path.expanduser(text), recursive=True))]
        index = _by_stem(m for m in matches if m.suffix.lower() in extensions and m.is_file())
        if not index:
            raise UsageError(f"--{name} {text!r}: no image files match this pattern")
        return lambda item: _one(name, item, index.get(_stem_key(item.relative_path.stem), []),
                                 f"among the files matching {text!r}")
    raise UsageError(f"--{name} '{path}': no such file or folder")


class _FolderLookup:
    """Pairs by relative path and stem; each sub-folder is listed once, however many images it serves."""

    def __init__(self, name: str, folder: Path, extensions: frozenset[str]) -> None:
        self.name, self.folder, self.extensions = name, folder, extensions
        self._listings: dict[Path, dict[str, list[Path]]] = {}

    def __call__(self, item: InputItem) -> Path | str:
        sub = self.folder / item.relative_path.parent
        listing = self._listings.get(sub)
        if listing is None:
            try:
                files = [p for p in sub.iterdir() if p.suffix.lower() in self.extensions
                         and not p.name.startswith(".") and p.is_file()]
            except OSError:  # no such sub-folder (or unreadable): nothing pairs there
                files = []
            listing = self._listings[sub] = _by_stem(sorted(files))
        wanted = sub / (item.relative_path.stem + ".*")
        return _one(self.name, item, listing.get(_stem_key(item.relative_path.stem), []), f"no '{wanted}'")


def _by_stem(paths: Iterable[Path]) -> dict[str, list[Path]]:
    index: dict[str, list[Path]] = {}
    for path in paths:
        index.setdefault(_stem_key(path.stem), []).append(path)
    return index


def _stem_key(stem: str) -> str:
    return os.path.normcase(stem)  # case-folded where the file system is (Windows)


def _one(name: str, item: InputItem, candidates: list[Path], where: str) -> Path | str:
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        detail = where if where.startswith("no ") else f"no file named '{item.relative_path.stem}.*' {where}"
        return f"no {name} for image '{item.path}' ({detail})"
    shown = ", ".join(f"'{c}'" for c in candidates[:3]) + (" ..." if len(candidates) > 3 else "")
    return f"{len(candidates)} {name} files match image '{item.path}' ({shown}); keep one"
