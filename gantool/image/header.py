"""Image headers without decoding: size, orientation, mode and frame count, so limits hold before decoding.

Pillow reads most headers; when it cannot (a damaged ancillary chunk, a float RGB TIFF) the size is
parsed here from the bytes (PNG IHDR, BMP, JPEG SOF, WebP, TIFF IFD). An image whose size cannot be
found either way is never decoded: a few hundred bytes could otherwise claim gigabytes of pixels.
"""

from __future__ import annotations

import struct
import threading
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

EXIF_ORIENTATION = 0x0112
_PILLOW_LIMIT_LOCK = threading.Lock()
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True)
class Header:
    size: tuple[int, int]  # (width, height) as stored, before orientation
    orientation: int
    mode: str
    frames: int = 1  # animation frames or TIFF pages; only the first is read


def pillow_header(source: Path | BytesIO, orientations: Any) -> Header | None:
    """Size, EXIF orientation, mode and frame count without decoding pixels; None where Pillow cannot parse.

    Pillow's own decompression-bomb limit is lifted while the header is read: gantool applies its own,
    configurable limit, and Pillow's would otherwise leak warnings or reject images we allow.
    ``orientations``: the orientation values gantool knows (others read as 1).
    """
    import PIL.Image

    with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data" from a damaged file: reported below instead
        saved, PIL.Image.MAX_IMAGE_PIXELS = PIL.Image.MAX_IMAGE_PIXELS, None
        try:
            with PIL.Image.open(source) as im:
                frames = int(getattr(im, "n_frames", 1) or 1)
                return Header(im.size, _orientation(im, orientations), im.mode, frames)
        except Exception:  # any parse failure just means "no header": the raw parser or a refusal follows
            return None
        finally:
            PIL.Image.MAX_IMAGE_PIXELS = saved


def _orientation(im: Any, known: Any) -> int:
    if im.format == "PNG" and "exif" not in im.info:
        return 1  # Pillow would decode the whole PNG looking for an eXIf chunk after the pixels
    try:
        value = int(im.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block should not make the pixels unreadable
        return 1
    return value if value in known else 1


def raw_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """``(width, height)`` parsed from the file's own header bytes, or None when it cannot be found."""
    try:
        parser = {"PNG": _png, "BMP": _bmp, "JPEG": _jpeg, "WEBP": _webp, "TIFF": _tiff}[kind]
        size = parser(data)
    except (struct.error, KeyError, IndexError, ValueError):
        return None
    return size if size is not None and size[0] > 0 and size[1] > 0 else None


def _png(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _bmp(data: bytes) -> tuple[int, int] | None:
    if struct.unpack("<I", data[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
        return width, height
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _jpeg(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height
        pos += 2 + length
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack(order + "H", data[2:4])[0] == 43
    if big:
        offset = struct.unpack(order + "Q", data[8:16])[0]
        count = struct.unpack(order + "Q", data[offset:offset + 8])[0]
        entry_size, first, fmt = 20, offset + 8, "HHQ"
    else:
        offset = struct.unpack(order + "I", data[4:8])[0]
        count = struct.unpack(order + "H", data[offset:offset + 2])[0]
        entry_size, first, fmt = 12, offset + 2, "HHI"
    found: dict[int, int] = {}
    for index in range(min(count, 4096)):
        at = first + index * entry_size
        tag, kind, _count = struct.unpack(order + fmt, data[at:at + (12 if big else 8)])
        value_at = at + (12 if big else 8)
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), data[value_at:value_at + (2 if kind == 3
                                                                                                   else 4)])[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None
