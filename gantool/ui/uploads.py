"""Uploads to a job's folder: safe names, a byte bound while copying, the pixel bound from the header.

Nothing is decoded here: :func:`gantool.image.io.read_image_size` reads the header only, so a small file
claiming 50000 x 50000 pixels is refused before any pixel memory is allocated (``GANTOOL_MAX_PIXELS``, as
for the CLI). Errors name the uploaded file, never the server's temporary path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import BinaryIO

from gantool.errors import InputError
from gantool.image.limits import check_aspect, pixel_limit

#: The largest upload accepted per file and per request, in bytes (``GANTOOL_UI_MAX_UPLOAD``).
DEFAULT_MAX_UPLOAD = 64 * 1024 * 1024
MAX_UPLOAD_ENV = "GANTOOL_UI_MAX_UPLOAD"
_CHUNK = 1 << 20


def max_upload_bytes() -> int:
    raw = os.environ.get(MAX_UPLOAD_ENV, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_UPLOAD


class UploadTooLarge(InputError):
    """An upload over :func:`max_upload_bytes` (HTTP 413)."""


def safe_name(name: str, taken: set[str]) -> str:
    """The upload's base name with only safe characters, its stem unique among ``taken`` stems."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name.replace("\\", "/")).name).lstrip(".") or "image"
    stem, suffix = Path(base).stem or "image", Path(base).suffix.lower()
    candidate, number = stem, 1
    while candidate in taken:
        number += 1
        candidate = f"{stem}-{number}"
    taken.add(candidate)
    return candidate + suffix


def save_upload(source: BinaryIO, target: Path, shown: str, limit: int | None = None) -> Path:
    """Copy ``source`` to ``target`` in chunks; ``UploadTooLarge`` as soon as it passes ``limit`` bytes."""
    limit = max_upload_bytes() if limit is None else limit
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                out.close()
                target.unlink(missing_ok=True)
                raise UploadTooLarge(f"'{shown}' is over the upload limit of {limit:,} bytes "
                                     f"(set {MAX_UPLOAD_ENV} to allow more)")
            out.write(chunk)
    return target


def check_image(path: Path, shown: str) -> tuple[int, int]:
    """(width, height) from the header; ``InputError`` naming ``shown`` for an unreadable, corrupt or
    too large image (pixel count and aspect ratio, the CLI's limits)."""
    from gantool.image.io import read_image_size

    try:
        width, height = read_image_size(path)
        limit = pixel_limit()
        if width * height > limit:
            raise InputError(f"{width} x {height} = {width * height:,} pixels is over the limit of {limit:,} "
                             "(set GANTOOL_MAX_PIXELS to allow more)")
        check_aspect(height, width)
    except InputError as error:
        text = str(error).replace(f"'{path}'", f"'{shown}'").replace(str(path), shown)
        if shown not in text:
            text = f"'{shown}': {text}"
        raise InputError(text) from None
    return width, height
