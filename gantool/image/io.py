"""Image file I/O: the only module that talks to OpenCV, and the only place BGR pixel order exists.

Everything outside this module sees :class:`~gantool.image.pixels.Image`: RGB (or gray) float32 in [0, 1],
(H, W, C) numpy arrays, alpha kept apart. OpenCV and Pillow are imported lazily so that importing
``gantool.image.io`` stays cheap for CLI start-up. Conventions and the reasons behind them are in ``docs/io.md``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable
from glob import escape as glob_escape
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from gantool.errors import InputError, OutputError
from gantool.image.header import Header as _Header
from gantool.image.header import pillow_header, raw_size
from gantool.image.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, check_work_size, pixel_limit
from gantool.image.pixels import Image

__all__ = ["DEFAULT_MAX_PIXELS", "MAX_PIXELS_ENV", "SUPPORTED_EXTENSIONS", "Image", "check_work_size", "read_image",
           "read_image_size", "write_image"]

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"})

# Formats that store more than 8 bits; the others are 8-bit only. A request is lowered to what fits.
_DEEP_DEPTHS = {".png": (8, 16), ".tif": (8, 16, 32), ".tiff": (8, 16, 32)}
_ALPHA_EXTENSIONS = frozenset({".png", ".webp", ".tif", ".tiff"})
# OpenCV's channel order <-> ours; the permutation is its own inverse, so it serves both directions.
_SWAP_RB = {1: [0], 2: [0, 1], 3: [2, 1, 0], 4: [2, 1, 0, 3]}
_BAND_ROWS = 256  # rows quantised at a time when writing: bounds the float temporaries
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP"} | dict.fromkeys(_TIFF_MAGIC, "TIFF")
# Any JPEG marker: FF00 is byte stuffing and FFD0-FFD7 are restart markers inside entropy-coded data.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")
_JPEG_STANDALONE = frozenset({0x01, 0xD8})
# EXIF orientation -> how to turn the stored (H, W, C) pixels into the upright image.
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a),
}
#: Temporary names keep at most this much of the output's name, so names near NAME_MAX (255) still work.
_TEMP_NAME_CHARS = 100
logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> Image:
    """Decode an image file to an upright :class:`Image`, checking the pixel limit before decoding.

    A file whose size cannot be read from its header (Pillow's, or gantool's own parser) is refused
    undecoded. Of an animated image or a multi-page TIFF only the first frame is read, with a warning.
    """
    path = _checked_input(path)
    limit = _pixel_limit(max_pixels)
    data = _read_bytes(path)
    kind = _sniff(path, data)
    header = _pillow_header(BytesIO(data))
    _check_pixels(path, _header_size(path, data, kind, header), limit)
    if header is not None and header.frames > 1:
        logger.warning("warning: '%s' has %d frames (animation or pages); only the first is read", path,
                       header.frames)
    pixels = _decode(path, data, kind)
    _check_pixels(path, (pixels.shape[1], pixels.shape[0]), limit)  # the decoder must agree with the header
    return _to_image(path, pixels, header)


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of the upright image, from the header alone (never a decode)."""
    path = _checked_input(path)
    header = _pillow_header(path)
    if header is None:  # e.g. float RGB TIFF, which Pillow cannot open: gantool's own header parser
        data = _read_bytes(path)
        return _header_size(path, data, _sniff(path, data), None)
    width, height = header.size
    return (height, width) if header.orientation >= 5 else (width, height)


def _header_size(path: Path, data: bytes, kind: str, header: _Header | None) -> tuple[int, int]:
    size = header.size if header is not None else raw_size(data, kind)
    if size is None:
        raise _read_error(path, f"truncated or corrupt {kind} header (it does not say the image size); "
                                "refused without decoding")
    return size


def _read_error(path: Path, reason: str) -> InputError:
    return InputError(f"cannot read '{path}': {reason}")


def _write_error(path: Path, reason: str) -> OutputError:
    return OutputError(f"cannot write '{path}': {reason}")


def _os_reason(exc: OSError) -> str:
    return "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc)).lower()


def _unsupported(path: Path) -> str:
    shown = f"'{path.suffix}'" if path.suffix else "(no extension)"
    return f"unsupported format {shown} (supported: {' '.join(sorted(SUPPORTED_EXTENSIONS))})"


def _checked_input(path: str | os.PathLike[str]) -> Path:
    """Catch the common mistakes from the file system alone, before anything is decoded."""
    path = Path(path)
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise _read_error(path, "no such file") from None
    except OSError as exc:
        raise _read_error(path, _os_reason(exc)) from exc
    if stat.S_ISDIR(info.st_mode):
        raise _read_error(path, "it is a folder, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise _read_error(path, "not a regular file")
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise _read_error(path, _unsupported(path))
    if info.st_size == 0:
        raise _read_error(path, "empty file (0 bytes)")
    return path


def _read_bytes(path: Path) -> bytes:
    """Python's own file API, not cv2.imread, so Unicode and space-containing paths work on every OS."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _read_error(path, _os_reason(exc)) from exc


def _sniff(path: Path, data: bytes) -> str:
    """The format from the file's content; the extension may lie (a text file renamed to .png)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, kind in _MAGIC.items():
        if data.startswith(magic):
            return kind
    raise _read_error(path, "not an image (content is not PNG, JPEG, WebP, TIFF or BMP)")


_pixel_limit = pixel_limit


def _check_pixels(path: Path, size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width * height > limit:
        raise _read_error(
            path,
            f"too large: {width} x {height} = {width * height:,} pixels, over "
            f"the limit of {limit:,} (raise it with {MAX_PIXELS_ENV} or max_pixels)",
        )


def _pillow_header(source: Path | BytesIO) -> _Header | None:
    return pillow_header(source, _ORIENT)


@functools.cache
def _cv2() -> Any:
    """Import OpenCV on first use (slow to import); silence its logging, as we report every failure."""
    import cv2

    with contextlib.suppress(AttributeError):  # builds without the logging utilities
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


def _decode(path: Path, data: bytes, kind: str) -> np.ndarray:
    cv2 = _cv2()
    if kind == "JPEG" and not _jpeg_is_complete(data):
        raise _read_error(path, "truncated JPEG (no end-of-image marker)")
    try:
        pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        pixels = None
    if pixels is None or pixels.size == 0:
        raise _read_error(path, f"truncated or corrupt {kind} data")
    return pixels


def _jpeg_is_complete(data: bytes) -> bool:
    """Walk the JPEG's segments to its end-of-image marker.

    Older OpenCV/libjpeg builds decode a cut-off JPEG with a grey bottom and only a warning on stderr, so
    a cheap structural check is the reliable way to notice. Bytes after the marker are allowed.
    """
    pos = 2
    while match := _JPEG_MARKER.search(data, pos):
        marker, pos = data[match.start() + 1], match.end()
        if marker == 0xD9:
            return True
        if marker not in _JPEG_STANDALONE:  # skip the segment by its length; scan data is searched through
            pos += int.from_bytes(data[pos : pos + 2], "big")
    return False


def _to_image(path: Path, pixels: np.ndarray, header: _Header | None) -> Image:
    depth, values = _dequantise(path, pixels)
    values = values[:, :, None] if values.ndim == 2 else values
    values = values[..., _SWAP_RB[values.shape[2]]]
    if values.shape[2] == 4 and header is not None and header.mode in ("LA", "La"):
        values = values[..., [0, 3]]  # OpenCV expands gray + alpha to BGRA; keep it gray as the file says
    elif values.shape[2] == 4 and header is not None and header.mode == "CMYK":
        values = values[..., :3]  # OpenCV converts CMYK TIFFs to BGRA with an alpha the file never had
    if header is not None:
        values = _ORIENT[header.orientation](values)
    values = np.ascontiguousarray(values)
    if values.shape[2] in (2, 4):
        return Image(values[..., :-1].copy(), values[..., -1:].copy(), depth)
    return Image(values, None, depth)


def _dequantise(path: Path, pixels: np.ndarray) -> tuple[int, np.ndarray]:
    """Scale by what the dtype can hold, never by the pixel values, so dark images stay dark."""
    if pixels.dtype == np.uint8:
        return 8, pixels.astype(np.float32) / np.float32(255)
    if pixels.dtype == np.uint16:
        return 16, pixels.astype(np.float32) / np.float32(65535)
    if np.issubdtype(pixels.dtype, np.floating):
        return 32, _clip01(pixels.astype(np.float32, copy=False))
    raise _read_error(path, f"unsupported sample type {pixels.dtype} (expected 8-bit, 16-bit or float)")


def _clip01(values: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


# ---------------------------------------------------------------------------------------------- writing


def write_image(
    path: str | os.PathLike[str],
    image: Image,
    *,
    bit_depth: int | None = None,
    quality: int = 95,
    protect: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Encode ``image`` by the extension of ``path`` and swap it in atomically; returns ``path``.

    The depth is ``bit_depth`` or the source's, lowered to what the format stores (JPEG, WebP and BMP
    are 8-bit). Alpha is dropped for JPEG and BMP. ``quality`` (1-100) applies to JPEG and WebP; WebP at
    100 is lossless. Missing parent folders are created. Writing onto a ``protect``-ed path is refused.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        raise _write_error(path, _unsupported(path))
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1-100, got {quality!r}")
    if bit_depth not in (None, 8, 16, 32):
        raise ValueError(f"bit_depth must be 8, 16, 32 or None, got {bit_depth!r}")
    _refuse_protected(path, protect)
    if path.is_dir():
        raise _write_error(path, "it is a folder")
    depth = max(d for d in _DEEP_DEPTHS.get(ext, (8,)) if d <= (bit_depth or image.bit_depth))
    pixels = _to_storage(image, keep_alpha=ext in _ALPHA_EXTENSIONS, depth=depth)
    _atomic_write(path, _encode(path, ext, pixels, quality))
    return path


def _refuse_protected(path: Path, protect: Iterable[str | os.PathLike[str]]) -> None:
    for source in map(Path, protect):
        try:
            same = os.path.samefile(path, source)  # also catches hard links and case-insensitive names
        except OSError:
            same = path.resolve() == source.resolve()
        if same:
            raise _write_error(path, "it is an input file; choose another output folder or name")


def _to_storage(image: Image, *, keep_alpha: bool, depth: int) -> np.ndarray:
    """gantool's layout -> what OpenCV encodes: BGR(A) order, 2-D for gray, quantised to ``depth``.

    Works through bands of rows into one preallocated array: done on the whole image at once, the
    clip, scale, round and channel swap each made a full-size float copy (201 MB apiece for a
    4096x4096 result), which set the peak memory of a whole upscale run.
    """
    with_alpha = keep_alpha and image.alpha is not None
    channels = 4 if with_alpha else image.color.shape[2]  # RGBA: encoders have no gray + alpha layout
    dtype = {8: np.uint8, 16: np.uint16, 32: np.float32}[depth]
    storage = np.empty((image.height, image.width, channels), dtype)
    order = _SWAP_RB[channels]
    for top in range(0, image.height, _BAND_ROWS):
        band = image.color[top:top + _BAND_ROWS]
        if with_alpha:
            rgb = np.repeat(band, 3, axis=2) if band.shape[2] == 1 else band
            assert image.alpha is not None
            band = np.concatenate([rgb, image.alpha[top:top + _BAND_ROWS]], axis=2)
        storage[top:top + _BAND_ROWS] = _quantise(band, depth)[..., order]
    return storage[..., 0] if channels == 1 else storage


def _quantise(values: np.ndarray, depth: int) -> np.ndarray:
    """Round to the nearest code (truncating would darken every image by half a step)."""
    values = _clip01(values)
    if depth == 32:
        return values.astype(np.float32)
    top, dtype = (255, np.uint8) if depth == 8 else (65535, np.uint16)
    return np.rint(values * top).astype(dtype)


def _encode(path: Path, ext: str, pixels: np.ndarray, quality: int) -> bytes:
    cv2 = _cv2()
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, quality if quality < 100 else 101]  # above 100: lossless
    try:
        ok, buffer = cv2.imencode(ext, pixels, params)
    except cv2.error as exc:  # OpenCV's message spans lines; its last one says what went wrong
        raise _write_error(path, f"the {ext} encoder failed ({''.join(str(exc).strip().splitlines()[-1:])})") from exc
    if not ok:
        raise _write_error(path, f"the {ext} encoder failed")
    return buffer.tobytes()


def _atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the target folder, fsync, rename: readers see the old file or the new one, never half."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(path, f"cannot create folder '{folder}' ({_os_reason(exc)})") from exc
    prefix = f".{path.name[:_TEMP_NAME_CHARS]}.{os.getpid()}."
    _remove_stale_temporaries(folder, path.name[:_TEMP_NAME_CHARS])
    try:
        handle, temp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    except OSError as exc:
        raise _write_error(path, f"folder '{folder}' is not writable ({_os_reason(exc)})") from exc
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp creates 0600; give the output normal permissions
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.remove(temp)
        if isinstance(exc, OSError):
            raise _write_error(path, _os_reason(exc)) from exc
        raise


def _remove_stale_temporaries(folder: Path, stem: str) -> None:
    """Delete ``.NAME.PID.*.tmp`` left by a killed gantool process (its PID no longer runs)."""
    for temp in folder.glob(f".{glob_escape(stem)}.*.tmp"):
        pid = temp.name[len(stem) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
            with contextlib.suppress(OSError):
                temp.unlink()


def _running(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) is not a probe there: never guess, keep the file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


@functools.cache
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
