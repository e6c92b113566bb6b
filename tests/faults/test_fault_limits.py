"""Findings 3, 4 and 9 (images): bounded work before allocating, no decode of a file whose size is unknown,
animated images announced, long names and stale temporaries handled."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from gantool.errors import InputError
from gantool.image import io as gio
from gantool.image.limits import check_work_size
from gantool.image.pixels import Image


def _chunk(kind: bytes, data: bytes, bad_crc: bool = False) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc ^ int(bad_crc))


def png_bomb(path: Path, side: int, *, bad_crc: bool) -> Path:
    """A small 16-bit RGBA PNG of ``side`` x ``side`` zeros whose tEXt chunk may carry a wrong CRC, which
    makes Pillow give up on the header while libpng would still decode it."""
    row = b"\0" * (1 + side * 8)
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 16, 6, 0, 0, 0))
                     + _chunk(b"tEXt", b"Comment\0hi", bad_crc) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("bad_crc", [False, True])
def test_bomb_is_refused_from_the_header_even_when_pillow_cannot_read_it(tmp_path: Path, monkeypatch,
                                                                         bad_crc: bool) -> None:
    path = png_bomb(tmp_path / "bomb.png", 2000, bad_crc=bad_crc)
    assert (gio._pillow_header(path) is None) == bad_crc
    decoded = []
    monkeypatch.setattr(gio, "_decode", lambda *args: decoded.append(args))
    with pytest.raises(InputError, match=r"too large: 2000 x 2000 = 4,000,000 pixels"):
        gio.read_image(path, max_pixels=1_000_000)
    assert decoded == []  # never decoded


def test_a_header_without_a_size_is_never_decoded(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "odd.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"tEXt", b"no IHDR first", False) + b"\0" * 64)
    monkeypatch.setattr(gio, "_decode", lambda *args: pytest.fail("decoded"))
    with pytest.raises(InputError, match=r"corrupt PNG header \(it does not say the image size\); refused without"):
        gio.read_image(path)


@pytest.mark.parametrize(("fmt", "ext"), [("BMP", ".bmp"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("TIFF", ".tif"),
                                          ("PNG", ".png")])
def test_own_header_parser_agrees_with_pillow(tmp_path: Path, fmt: str, ext: str) -> None:
    path = tmp_path / f"x{ext}"
    PILImage.fromarray(np.zeros((37, 53, 3), np.uint8)).save(path, format=fmt)
    data = path.read_bytes()
    assert gio.raw_size(data, gio._sniff(path, data)) == (53, 37)


def test_float_tiff_size_comes_from_the_header_without_decoding(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "float.tif"
    gio.write_image(path, Image(np.random.rand(9, 13, 3).astype(np.float32), None, 32))
    monkeypatch.setattr(gio, "_decode", lambda *args: pytest.fail("decoded"))
    assert gio.read_image_size(path) == (13, 9)


def test_animated_webp_is_announced(tmp_path: Path, caplog) -> None:
    path = tmp_path / "anim.webp"
    frames = [PILImage.new("RGB", (8, 8), (i * 60, 0, 0)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    with caplog.at_level(logging.WARNING, logger="gantool.image.io"):
        image = gio.read_image(path)
    assert image.width == 8 and "has 3 frames (animation or pages); only the first is read" in caplog.text


@pytest.mark.parametrize(("size", "what"), [((3, 100_000), "aspect ratio over 100:1"),
                                             ((20_000, 20_000), "over the limit of 200,000,000")])
def test_work_size_limits(size, what) -> None:
    with pytest.raises(InputError, match=what):
        check_work_size(*size)
    check_work_size(100, 9_999)


def test_extreme_strip_is_refused_by_colorize_before_resizing(monkeypatch) -> None:
    from gantool_colorize import SPEC

    task = SPEC.load_implementation()(SPEC, SPEC.train_options())
    networks = task.build_inference_networks()
    strip = torch.rand(1, 3, 200, 3)  # 66:1 passes the aspect check, but 256 x 17066 ... is fine too
    monkeypatch.setenv("GANTOOL_MAX_PIXELS", "1000000")
    with pytest.raises(InputError, match=r"working size \(--render-size\) would be 256 x 17067"):
        task.predict(networks, strip)


def test_outscale_is_bounded_before_allocating(monkeypatch) -> None:
    from gantool_superres import SPEC
    from gantool_superres.options import UpscaleOptions

    task = SPEC.load_implementation()(SPEC, SPEC.train_options(width=8, blocks=1, scale=2))
    output = torch.rand(1, 3, 16, 16)
    with pytest.raises(InputError, match=r"output with --outscale 1000 would be 8000 x 8000"):
        monkeypatch.setenv("GANTOOL_MAX_PIXELS", "1000000")
        task.postprocess(output, (8, 8), UpscaleOptions(outscale=1000.0))


def test_long_names_get_short_temporaries(tmp_path: Path) -> None:
    name = "n" * 250 + ".png"  # legal (NAME_MAX 255); the old temporary name was longer than that
    gio.write_image(tmp_path / name, Image(np.zeros((4, 4, 3), np.float32), None, 8))
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f".photo.png.{dead}.abc123.tmp"
    stale.write_bytes(b"half")
    live = tmp_path / f".photo.png.{os.getppid()}.def456.tmp"  # a running process's: kept
    live.write_bytes(b"busy")
    gio.write_image(tmp_path / "photo.png", Image(np.zeros((4, 4, 3), np.float32), None, 8))
    assert not stale.exists() and live.exists()


@pytest.mark.parametrize(("given", "used"), [("1", 16), ("4", 16), ("15", 16), ("16", 16), ("0", 0), ("512", 512)])
def test_tiles_below_the_useful_minimum_are_raised_with_a_warning(given: str, used: int, caplog) -> None:
    from gantool.engine.inference import resolve_tile

    with caplog.at_level(logging.WARNING, logger="gantool.engine.inference"):
        assert resolve_tile(given) == used
    assert ("below the useful minimum of 16 pixels" in caplog.text) == (0 < int(given) < 16)


@pytest.mark.parametrize(("tile", "overlap", "used"), [(16, 16, 8), (16, 8, 8), (None, 64, 64), (0, 64, 64)])
def test_an_overlap_over_half_the_tile_is_lowered_with_a_warning(tile, overlap, used, caplog) -> None:
    """faults-2.md: `--tile 8 --tile-overlap 16` was clamped without a word."""
    from gantool.engine.inference import resolve_overlap

    with caplog.at_level(logging.WARNING, logger="gantool.engine.inference"):
        assert resolve_overlap(tile, overlap) == used
    assert ("more than half of --tile" in caplog.text) == (used != overlap)


def test_a_malformed_limit_is_one_usage_error_before_any_work(tmp_path: Path, monkeypatch) -> None:
    from gantool.engine.inference import run_inference
    from gantool.errors import UsageError
    from gantool.plugin.common import InferenceOptions
    from gantool_superres import SPEC

    monkeypatch.setenv("GANTOOL_MAX_PIXELS", "abc")
    with pytest.raises(UsageError, match="GANTOOL_MAX_PIXELS must be a positive whole number"):
        run_inference(spec=SPEC, model_path=tmp_path / "never-loaded.safetensors", options=InferenceOptions(),
                      task_options=None, inputs=[str(tmp_path)])


@pytest.mark.parametrize(("side", "fails"), [(1, True), (19, True), (20, False)])
def test_eval_of_a_tiny_hr_image_is_one_line(tmp_path: Path, side: int, fails: bool) -> None:
    from types import SimpleNamespace

    from gantool_superres import SPEC
    from gantool_superres.evaluate import evaluate_benchmark

    (tmp_path / "HR").mkdir()
    PILImage.fromarray(np.zeros((side, side, 3), np.uint8)).save(tmp_path / "HR" / "a.png")
    task = SPEC.load_implementation()(SPEC, SPEC.train_options(width=8, blocks=1, scale=4))
    options, context = SimpleNamespace(tile=0, scale=None), SimpleNamespace(device="cpu")
    if fails:
        with pytest.raises(InputError, match=rf"is {side}x{side} pixels: too small to score at x4 \(at least 20x20\)"):
            evaluate_benchmark(task, None, tmp_path, options, context)
    else:
        assert evaluate_benchmark(task, None, tmp_path, options, context).rows
