"""Which files in a folder are images: the one lister behind training data sets and the batch pipeline.

Torch-free and cv2-free (the extension list is read from :mod:`gantool.image.io` only when needed), so
the engine's planning step can use it before anything heavy is loaded.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from gantool.errors import InputError


def is_image_file(path: Path, root: Path, extensions: Collection[str] | None = None) -> bool:
    """Whether ``path`` (under ``root``) is a visible file with a supported image extension.

    A file is hidden when any part of its path below ``root`` starts with a dot (``.git/``, ``._x.jpg``
    macOS metadata); those are never images a user meant.
    """
    if extensions is None:
        from gantool.image.io import SUPPORTED_EXTENSIONS

        extensions = SUPPORTED_EXTENSIONS
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return not hidden and path.suffix.lower() in extensions and path.is_file()


def list_images(root: str | Path, *, recursive: bool = False,
                extensions: Collection[str] | None = None) -> list[Path]:
    """Image files in ``root`` (and its sub-folders with ``recursive``), sorted; hidden ones skipped.

    Args:
        root: The folder to list.
        recursive: Descend into sub-folders.
        extensions: Lower-case suffixes with the dot (default: what :mod:`gantool.image.io` can read).

    Raises:
        InputError: ``root`` does not exist or is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder" if root.exists() else f"folder '{root}' does not exist")
    if extensions is None:
        from gantool.image.io import SUPPORTED_EXTENSIONS as extensions
    candidates = root.rglob("*") if recursive else root.iterdir()
    return sorted(path for path in candidates if is_image_file(path, root, extensions))
