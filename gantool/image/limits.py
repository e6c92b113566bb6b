"""Size limits that hold before anything big is allocated: input, working and output pixels, aspect ratio.

A few bytes of input can ask for gigabytes: a PNG header claiming 50000 x 50000 pixels, a 3 x 100000
strip that a task resizes so its *shorter* side is 256, ``--outscale 1000``. Each of these is checked
against ``GANTOOL_MAX_PIXELS`` (default 200 million) and ``GANTOOL_MAX_ASPECT`` (default 100:1) first,
and refused in one line that names the limit to raise.
"""

from __future__ import annotations

import os

from gantool.errors import InputError, UsageError

DEFAULT_MAX_PIXELS = 200_000_000
MAX_PIXELS_ENV = "GANTOOL_MAX_PIXELS"
DEFAULT_MAX_ASPECT = 100
MAX_ASPECT_ENV = "GANTOOL_MAX_ASPECT"


def pixel_limit(max_pixels: int | None = None) -> int:
    """``max_pixels``, else ``GANTOOL_MAX_PIXELS``, else the default; ``UsageError`` for a malformed value."""
    if max_pixels is not None:
        return max_pixels
    return _positive_env(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS, "a positive whole number of pixels")


def aspect_limit() -> int:
    """The largest allowed ratio of an image's long side to its short side (``GANTOOL_MAX_ASPECT``)."""
    return _positive_env(MAX_ASPECT_ENV, DEFAULT_MAX_ASPECT, "a positive whole number (long side : short side)")


def _positive_env(name: str, default: int, what: str) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.replace("_", "").isdigit() or int(raw) <= 0:
        raise UsageError(f"{name} must be {what}, got {raw!r}")
    return int(raw)


def check_work_size(height: int, width: int, *, what: str = "output", max_pixels: int | None = None) -> None:
    """``InputError`` (one line) when an image of ``height`` x ``width`` that is about to be allocated
    (``what``: "output", "working size", "output with --outscale 8" ...) exceeds the pixel limit, or when
    its aspect ratio exceeds ``GANTOOL_MAX_ASPECT``. Tasks call it before resizing to a size they compute.
    """
    limit = pixel_limit(max_pixels)
    if height * width > limit:
        raise InputError(f"{what} would be {width} x {height} = {height * width:,} pixels, over the limit of "
                         f"{limit:,} (set {MAX_PIXELS_ENV} to allow more)")
    check_aspect(height, width, what=what)


def check_aspect(height: int, width: int, *, what: str = "image") -> None:
    """``InputError`` when the long side is more than ``GANTOOL_MAX_ASPECT`` times the short side."""
    ratio = aspect_limit()
    if max(height, width) > ratio * max(min(height, width), 1):
        raise InputError(f"{what} is {width} x {height} pixels, an aspect ratio over {ratio}:1 "
                         f"(set {MAX_ASPECT_ENV} to allow more)")
