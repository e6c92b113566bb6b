"""Which files in a folder are images: the one lister behind training data sets and the batch pipeline.

:func:`scan_images` also says which files look like images by their name but cannot be used (a GIF or
another format gantool does not read, a dangling symbolic link, a special file, a sub-folder that cannot
be listed), so the batch pipeline can report each one instead of passing over it. Files that are not
images by name (``notes.txt``, ``.xmp`` sidecars) and hidden files are left out without a word.

Torch-free and cv2-free (the extension list is read from :mod:`gantool.image.io` only when needed), so
the engine's planning step can use it before anything heavy is loaded.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from gantool.errors import InputError

logger = logging.getLogger(__name__)

#: Image formats gantool does not read: a file with one of these names is reported, not passed over.
OTHER_IMAGE_EXTENSIONS: frozenset[str] = frozenset({
    ".apng", ".arw", ".avif", ".cr2", ".cr3", ".dng", ".exr", ".gif", ".hdr", ".heic", ".heif", ".ico", ".j2k",
    ".jfif", ".jp2", ".jxl", ".nef", ".orf", ".pbm", ".pcx", ".pgm", ".pnm", ".ppm", ".psd", ".raf", ".raw",
    ".rw2", ".svg", ".tga",
})


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


def unusable_reason(path: Path, extensions: Collection[str]) -> str | None:
    """Why a file whose name says it is an image cannot be used, or None (usable, or not an image by name)."""
    suffix = path.suffix.lower()
    if suffix not in extensions and suffix not in OTHER_IMAGE_EXTENSIONS:
        return None
    if path.is_symlink() and not path.exists():
        return missing_reason(path)
    if path.is_dir():
        return None
    if suffix not in extensions:
        return f"unsupported format '{suffix}' (supported: {' '.join(sorted(extensions))})"
    return None if path.is_file() else "not a regular file"


def missing_reason(path: Path) -> str:
    """Why ``path`` cannot be opened although it may be listed: a symbolic link loop, a dangling link, or absent."""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        if path.is_symlink():
            try:
                return f"dangling symbolic link (to '{os.readlink(path)}', which does not exist)"
            except OSError:
                return "dangling symbolic link"
        if isinstance(error, PermissionError):
            return "permission denied"
    return "no such file"  # (it did exist a moment ago: a race; the read will say more)


@dataclass
class FolderScan:
    """What a folder holds: usable ``images`` (sorted), and ``unusable`` (path, why) for the files that look
    like images but cannot be read, and the sub-folders that could not be listed."""

    images: list[Path] = field(default_factory=list)
    unusable: list[tuple[Path, str]] = field(default_factory=list)


def scan_images(root: str | Path, *, recursive: bool = False,
                extensions: Collection[str] | None = None) -> FolderScan:
    """Image files in ``root`` (and its sub-folders with ``recursive``), and the ones that cannot be used.

    Hidden files and folders are skipped; symbolic links to folders are not followed (no loops).

    Args:
        root: The folder to list.
        recursive: Descend into sub-folders.
        extensions: Lower-case suffixes with the dot (default: what :mod:`gantool.image.io` can read).

    Raises:
        InputError: ``root`` does not exist, is not a folder, or cannot be listed.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder" if root.exists() else f"folder '{root}' does not exist")
    if extensions is None:
        from gantool.image.io import SUPPORTED_EXTENSIONS

        extensions = SUPPORTED_EXTENSIONS
    scan = FolderScan()
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in listing]
        except OSError as error:
            why = "permission denied" if isinstance(error, PermissionError) else (error.strerror or str(error)).lower()
            if folder == root:
                raise InputError(f"cannot list folder '{root}' ({why})") from None
            scan.unusable.append((folder, f"cannot list folder ({why})"))
            continue
        for name, is_folder in entries:
            if name.startswith("."):
                continue
            path = folder / name
            if is_folder:
                if recursive:
                    folders.append(path)
            elif is_image_file(path, root, extensions):
                scan.images.append(path)
            elif reason := unusable_reason(path, extensions):
                scan.unusable.append((path, reason))
    scan.images.sort()
    scan.unusable.sort()
    return scan


def list_images(root: str | Path, *, recursive: bool = False,
                extensions: Collection[str] | None = None) -> list[Path]:
    """Image files in ``root`` (and its sub-folders with ``recursive``), sorted; hidden ones skipped.

    Files that look like images but cannot be used are left out with one warning naming them (training
    sets and evaluations list folders this way; the batch pipeline reports them as failed items instead,
    through :func:`scan_images`).

    Raises:
        InputError: ``root`` does not exist or is not a folder.
    """
    scan = scan_images(root, recursive=recursive, extensions=extensions)
    if scan.unusable:
        named = ", ".join(f"'{path}' ({why})" for path, why in scan.unusable[:5])
        more = f" and {len(scan.unusable) - 5} more" if len(scan.unusable) > 5 else ""
        logger.warning("warning: %d file(s) under '%s' cannot be used and are left out: %s%s",
                       len(scan.unusable), root, named, more)
    return scan.images
