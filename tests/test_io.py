"""Tests for gantool.io: every image is made here, in tmp_path, a few pixels big."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import PIL.ImageOps
import pytest

from gantool.errors import InputError, OutputError, UsageError
from gantool.image import io as gio
from gantool.image.io import Image, read_image, read_image_size, write_image

ROOT = Path(__file__).resolve().parents[1]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
H, W = 6, 10
LAYOUTS = {"L": (1, False), "RGB": (3, False), "RGBA": (3, True)}
TOP = {8: 255, 16: 65535}


def codes_image(mode: str, depth: int, seed: int = 0) -> Image:
    """Random pixels that sit exactly on the depth's grid, so lossless formats must round-trip exactly."""
    channels, has_alpha = LAYOUTS[mode]
    rng = np.random.default_rng(seed)

    def plane(c: int, low: int = 0) -> np.ndarray:
        if depth == 32:
            return rng.random((H, W, c), dtype=np.float32)
        return rng.integers(low, TOP[depth] + 1, (H, W, c)).astype(np.float32) / np.float32(TOP[depth])

    # Fully transparent pixels may have their color discarded by WebP, so alpha stays above 0.
    return Image(plane(channels), plane(1, low=1) if has_alpha else None, depth)


def smooth_image(mode: str, size: tuple[int, int] = (32, 48)) -> Image:
    """Gradients: what lossy codecs handle well, so a small tolerance is meaningful."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([x / w, y / h, (x + y) / (w + h)], axis=2)
    channels, has_alpha = LAYOUTS[mode]
    alpha = 0.25 + 0.75 * rgb[..., :1]  # never 0: codecs may drop the color of fully transparent pixels
    return Image(rgb[..., :channels].copy(), alpha if has_alpha else None, 8)


def assert_same(actual: Image, expected: Image, tolerance: float = 0.0) -> None:
    assert actual.mode == expected.mode
    assert actual.color.dtype == np.float32
    np.testing.assert_allclose(actual.color, expected.color, atol=tolerance, rtol=0)
    if expected.alpha is not None:
        np.testing.assert_allclose(actual.alpha, expected.alpha, atol=tolerance, rtol=0)


# ---------------------------------------------------------------------------------------------- round trips

LOSSLESS = [
    *[(".png", m, d) for m in LAYOUTS for d in (8, 16)],
    *[(".tif", m, d) for m in LAYOUTS for d in (8, 16, 32)],
    *[(".tiff", "RGB", 16)],
    *[(".bmp", m, 8) for m in ("L", "RGB")],
    *[(".webp", m, 8) for m in ("RGB", "RGBA")],
]


@pytest.mark.parametrize(("ext", "mode", "depth"), LOSSLESS)
def test_lossless_round_trip_is_exact(tmp_path: Path, ext: str, mode: str, depth: int) -> None:
    image = codes_image(mode, depth)
    path = write_image(tmp_path / f"out{ext}", image, quality=100)
    back = read_image(path)
    assert back.bit_depth == depth
    assert (back.height, back.width) == (H, W)
    assert_same(back, image)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA"])
def test_images_taller_than_one_write_band_round_trip_exactly(tmp_path: Path, mode: str) -> None:
    """Writing quantises in bands of rows; every band, the last partial one included, must land in place."""
    rows = 2 * gio._BAND_ROWS + 37
    rng = np.random.default_rng(3)
    channels = 1 if mode.startswith("L") else 3
    color = rng.integers(0, 65536, (rows, 5, channels)).astype(np.float32) / np.float32(65535)
    alpha = rng.integers(1, 65536, (rows, 5, 1)).astype(np.float32) / np.float32(65535) if "A" in mode else None
    image = Image(color, alpha, 16)
    back = read_image(write_image(tmp_path / "tall.png", image))
    np.testing.assert_array_equal(back.color, image.rgb() if mode == "LA" else image.color)
    if alpha is not None:
        np.testing.assert_array_equal(back.alpha, alpha)


@pytest.mark.parametrize(("ext", "mode"), [(".jpg", "L"), (".jpg", "RGB"), (".jpeg", "RGB"), (".webp", "RGB")])
def test_lossy_round_trip_is_close(tmp_path: Path, ext: str, mode: str) -> None:
    image = smooth_image(mode)
    back = read_image(write_image(tmp_path / f"out{ext}", image, quality=90))
    assert back.bit_depth == 8
    assert_same(back, image, tolerance=0.05)


def test_lossy_webp_keeps_alpha(tmp_path: Path) -> None:
    image = smooth_image("RGBA")
    assert_same(read_image(write_image(tmp_path / "a.webp", image, quality=90)), image, tolerance=0.05)


@pytest.mark.parametrize("ext", [".jpg", ".bmp"])
def test_alpha_is_dropped_where_the_format_has_none(tmp_path: Path, ext: str) -> None:
    image = smooth_image("RGBA")
    back = read_image(write_image(tmp_path / f"out{ext}", image))
    assert back.mode == "RGB"
    np.testing.assert_allclose(back.color, image.color, atol=0.05)


def test_gray_with_alpha_is_written_as_rgba(tmp_path: Path) -> None:
    gray = codes_image("L", 8)
    image = Image(gray.color, codes_image("RGBA", 8, seed=1).alpha, 8)
    assert image.mode == "LA"
    back = read_image(write_image(tmp_path / "la.png", image))
    assert back.mode == "RGBA"
    np.testing.assert_array_equal(back.color, image.rgb())
    np.testing.assert_array_equal(back.alpha, image.alpha)


def test_gray_and_alpha_from_pillow_la_png_stay_gray(tmp_path: Path) -> None:
    codes = np.random.default_rng(2).integers(0, 256, (H, W, 2), dtype=np.uint8)
    PIL.Image.fromarray(codes, "LA").save(tmp_path / "la.png")
    back = read_image(tmp_path / "la.png")
    assert back.mode == "LA"
    np.testing.assert_array_equal(back.color[..., 0], codes[..., 0] / np.float32(255))
    np.testing.assert_array_equal(back.alpha[..., 0], codes[..., 1] / np.float32(255))


@pytest.mark.parametrize("ext", [".jpg", ".tif"])
def test_cmyk_reads_as_rgb(tmp_path: Path, ext: str) -> None:
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 200
    PIL.Image.fromarray(red).convert("CMYK").save(tmp_path / f"cmyk{ext}")
    image = read_image(tmp_path / f"cmyk{ext}")
    assert image.mode == "RGB"
    np.testing.assert_allclose(image.color[0, 0], [200 / 255, 0, 0], atol=0.02)


def test_webp_has_no_gray_so_gray_reads_back_as_rgb(tmp_path: Path) -> None:
    image = codes_image("L", 8)
    back = read_image(write_image(tmp_path / "g.webp", image, quality=100))
    assert back.mode == "RGB"
    np.testing.assert_array_equal(back.color, image.rgb())


@pytest.mark.parametrize(
    ("ext", "source_depth", "requested", "stored"),
    [(".jpg", 16, None, 8), (".bmp", 32, None, 8), (".png", 32, None, 16), (".png", 8, 16, 16), (".tif", 16, 32, 32)],
)
def test_depth_is_lowered_to_what_the_format_stores(
    tmp_path: Path, ext: str, source_depth: int, requested: int | None, stored: int
) -> None:
    image = Image(smooth_image("RGB").color, None, source_depth)
    assert read_image(write_image(tmp_path / f"d{ext}", image, bit_depth=requested)).bit_depth == stored


def test_quantising_rounds_instead_of_truncating(tmp_path: Path) -> None:
    codes = np.arange(H * W, dtype=np.float32).reshape(H, W, 1)
    back = read_image(write_image(tmp_path / "r.png", Image((codes + 0.6) / 255, None, 8)))
    np.testing.assert_array_equal(np.rint(back.color * 255), codes + 1)


def test_out_of_range_and_nan_values_are_clipped_on_write(tmp_path: Path) -> None:
    color = np.array([[[-0.5], [1.5], [np.nan]]], dtype=np.float32)
    back = read_image(write_image(tmp_path / "c.png", Image(color, None, 8)))
    np.testing.assert_array_equal(back.color[0, :, 0], [0.0, 1.0, 0.0])


def test_unicode_and_spaces_in_path(tmp_path: Path) -> None:
    path = tmp_path / "фото и 写真" / "a b.png"
    image = codes_image("RGB", 8)
    assert write_image(path, image) == path
    assert_same(read_image(path), image)
    assert read_image_size(path) == (W, H)


def test_uppercase_extension_is_accepted(tmp_path: Path) -> None:
    image = codes_image("RGB", 8)
    assert_same(read_image(write_image(tmp_path / "UP.PNG", image)), image)


# ---------------------------------------------------------------------------------------------- value range


def test_range_comes_from_the_dtype_not_the_pixels(tmp_path: Path) -> None:
    dark16 = np.zeros((H, W), dtype=np.uint16)
    dark16[0, 0] = 300
    PIL.Image.fromarray(dark16).save(tmp_path / "dark16.png")
    dark8 = np.full((H, W), 10, dtype=np.uint8)
    PIL.Image.fromarray(dark8).save(tmp_path / "dark8.png")

    image16 = read_image(tmp_path / "dark16.png")
    assert (image16.bit_depth, image16.mode) == (16, "L")
    assert image16.color.max() == pytest.approx(300 / 65535)
    assert read_image(tmp_path / "dark8.png").color.max() == pytest.approx(10 / 255)


def test_float_tiff_values_are_taken_as_is(tmp_path: Path) -> None:
    values = np.linspace(0.0, 0.5, H * W, dtype=np.float32).reshape(H, W)
    PIL.Image.fromarray(values, "F").save(tmp_path / "f.tif")
    image = read_image(tmp_path / "f.tif")
    assert (image.bit_depth, image.mode) == (32, "L")
    np.testing.assert_array_equal(image.color[..., 0], values)


# ---------------------------------------------------------------------------------------------- EXIF orientation


def blocks_rgb() -> np.ndarray:
    """2 x 3 blocks of clearly different colors: no flip or rotation maps it onto itself."""
    palette = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]])
    blocks = palette.reshape(2, 3, 3).astype(np.uint8)
    return np.kron(blocks, np.ones((16, 16, 1), dtype=np.uint8))  # 32 x 48, blocks aligned to JPEG MCUs


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    path = tmp_path / f"o{orientation}.jpg"
    exif = PIL.Image.Exif()
    exif[0x0112] = orientation
    PIL.Image.fromarray(blocks_rgb()).save(path, quality=95, exif=exif)

    with PIL.Image.open(path) as im:
        upright = np.asarray(PIL.ImageOps.exif_transpose(im).convert("RGB"), dtype=np.float32) / 255
    image = read_image(path)
    assert image.color.shape == upright.shape
    np.testing.assert_allclose(image.color, upright, atol=0.06)
    assert read_image_size(path) == (upright.shape[1], upright.shape[0])


def test_orientation_6_means_rotate_clockwise(tmp_path: Path) -> None:
    exif = PIL.Image.Exif()
    exif[0x0112] = 6
    PIL.Image.fromarray(blocks_rgb()).save(tmp_path / "cw.jpg", quality=95, exif=exif)
    color = read_image(tmp_path / "cw.jpg").color
    assert color.shape == (48, 32, 3)
    np.testing.assert_allclose(color[8, 8], [1, 1, 0], atol=0.06)  # stored bottom-left block is now top-left


# ---------------------------------------------------------------------------------------------- read failures


def expect_read_error(path: Path, reason: str, **kwargs: object) -> InputError:
    with pytest.raises(InputError) as info:
        read_image(path, **kwargs)
    message = str(info.value)
    assert path.name in message and reason in message and "\n" not in message
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    expect_read_error(tmp_path / "nope.png", "no such file")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "dir.png").mkdir()
    expect_read_error(tmp_path / "dir.png", "folder")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    expect_read_error(tmp_path / "empty.png", "empty file")


def test_text_file_with_image_name(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("not really a picture\n")
    expect_read_error(tmp_path / "notes.png", "not an image")


@pytest.mark.parametrize("ext", [".heic", ".gif", ""])
def test_unsupported_extension(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"photo{ext}"
    path.write_bytes(b"GIF89a" + bytes(32))
    error = expect_read_error(path, "unsupported format")
    assert ".png" in str(error) and ".webp" in str(error)


def encoded(tmp_path: Path, ext: str) -> bytes:
    return write_image(tmp_path / f"full{ext}", smooth_image("RGB"), quality=90).read_bytes()


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif", ".bmp"])
def test_truncated_file(tmp_path: Path, ext: str) -> None:
    data = encoded(tmp_path, ext)
    (tmp_path / f"half{ext}").write_bytes(data[: len(data) // 2])
    expect_read_error(tmp_path / f"half{ext}", "truncated")


def test_jpeg_without_end_marker_is_truncated_even_if_the_decoder_would_cope(tmp_path: Path) -> None:
    (tmp_path / "cut.jpg").write_bytes(encoded(tmp_path, ".jpg")[:-2])
    expect_read_error(tmp_path / "cut.jpg", "end-of-image marker")


def test_jpeg_check_skips_segments_that_contain_an_end_marker(tmp_path: Path) -> None:
    data = encoded(tmp_path, ".jpg")
    payload = b"thumbnail \xff\xd8 ... \xff\xd9"
    app15 = b"\xff\xef" + (len(payload) + 2).to_bytes(2, "big") + payload
    with_segment = data[:2] + app15 + data[2:]
    (tmp_path / "ok.jpg").write_bytes(with_segment + b"trailing bytes after EOI are fine")
    assert read_image(tmp_path / "ok.jpg").mode == "RGB"
    (tmp_path / "cut.jpg").write_bytes(with_segment[: len(with_segment) * 3 // 4])
    expect_read_error(tmp_path / "cut.jpg", "truncated")


@pytest.mark.parametrize("options", [{"progressive": True}, {"restart_marker_rows": 1}, {"optimize": True}])
def test_jpeg_check_accepts_jpeg_variants(tmp_path: Path, options: dict[str, object]) -> None:
    PIL.Image.fromarray(blocks_rgb()).save(tmp_path / "v.jpg", quality=90, **options)
    assert read_image(tmp_path / "v.jpg").color.shape == (32, 48, 3)
    data = (tmp_path / "v.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) - len(data) // 10])
    expect_read_error(tmp_path / "cut.jpg", "truncated")


def test_corrupt_body_behind_a_valid_signature(tmp_path: Path) -> None:
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    expect_read_error(tmp_path / "junk.png", "corrupt")


@pytest.mark.skipif(IS_ROOT or os.name != "posix", reason="root reads files whatever their mode")
def test_permission_denied_on_read(tmp_path: Path) -> None:
    path = write_image(tmp_path / "secret.png", codes_image("RGB", 8))
    path.chmod(0)
    try:
        expect_read_error(path, "permission denied")
    finally:
        path.chmod(0o600)


def test_permission_denied_on_read_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs as root too, where chmod cannot take read access away."""
    path = write_image(tmp_path / "secret.png", codes_image("RGB", 8))

    def denied(self: Path) -> bytes:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    expect_read_error(path, "permission denied")


# ---------------------------------------------------------------------------------------------- pixel limit


def test_pixel_limit_rejects_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "big.png", codes_image("RGB", 8))

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded despite the pixel limit")

    monkeypatch.setattr(gio, "_decode", no_decoding)
    error = expect_read_error(path, "too large", max_pixels=H * W - 1)
    assert f"{W} x {H}" in str(error)


def test_pixel_limit_at_exactly_the_limit_is_fine(tmp_path: Path) -> None:
    path = write_image(tmp_path / "ok.png", codes_image("RGB", 8))
    assert read_image(path, max_pixels=H * W).width == W


def test_pixel_limit_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "env.png", codes_image("RGB", 8))
    monkeypatch.setenv(gio.MAX_PIXELS_ENV, "10")
    expect_read_error(path, gio.MAX_PIXELS_ENV)
    assert read_image(path, max_pixels=10_000).width == W  # the argument wins over the environment
    monkeypatch.setenv(gio.MAX_PIXELS_ENV, "lots")
    with pytest.raises(UsageError, match=gio.MAX_PIXELS_ENV):
        read_image(path)


def test_pixel_limit_without_a_pillow_header_is_checked_after_decoding(tmp_path: Path) -> None:
    path = write_image(tmp_path / "float_rgb.tif", codes_image("RGB", 32))  # Pillow cannot open these
    assert gio._pillow_header(path) is None
    expect_read_error(path, "too large", max_pixels=10)
    assert read_image_size(path) == (W, H)


def test_pillow_decompression_bomb_checks_do_not_leak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "bomb.png", codes_image("RGB", 8))
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 10)  # 60 pixels is a "bomb" to Pillow now
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path).width == W
        assert read_image_size(path) == (W, H)
    assert PIL.Image.MAX_IMAGE_PIXELS == 10


# ---------------------------------------------------------------------------------------------- writing


def expect_write_error(path: Path, reason: str, **kwargs: object) -> OutputError:
    with pytest.raises(OutputError) as info:
        write_image(path, codes_image("RGB", 8), **kwargs)
    message = str(info.value)
    assert path.name in message and reason in message and "\n" not in message
    return info.value


def test_write_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c.png"
    write_image(path, codes_image("RGB", 8))
    assert path.is_file()


def test_write_unsupported_extension(tmp_path: Path) -> None:
    expect_write_error(tmp_path / "out.gif", "unsupported format '.gif'")


def test_write_onto_a_folder(tmp_path: Path) -> None:
    (tmp_path / "out.png").mkdir()
    expect_write_error(tmp_path / "out.png", "folder")


def test_write_below_a_file_cannot_create_the_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    expect_write_error(tmp_path / "file" / "out.png", "cannot create folder")


@pytest.mark.skipif(IS_ROOT or os.name != "posix", reason="root writes anywhere")
def test_write_into_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        expect_write_error(folder / "out.png", "not writable")
    finally:
        folder.chmod(0o700)


def test_write_into_read_only_folder_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(**kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(gio.tempfile, "mkstemp", denied)
    error = expect_write_error(tmp_path / "out.png", "not writable (permission denied)")
    assert str(tmp_path) in str(error)


def test_write_leaves_only_the_output(tmp_path: Path) -> None:
    write_image(tmp_path / "out.png", codes_image("RGB", 8))
    write_image(tmp_path / "out.png", codes_image("RGB", 8, seed=1))  # overwriting an output is fine
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_written_file_gets_normal_permissions(tmp_path: Path) -> None:
    path = write_image(tmp_path / "out.png", codes_image("RGB", 8))
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~gio._umask()


@pytest.mark.parametrize("failure", ["returns False", "raises"])
def test_encoder_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    cv2 = gio._cv2()

    def broken_encoder(*args: object) -> tuple[bool, None]:
        if failure == "raises":
            raise cv2.error("OpenCV(5.0.0) somewhere.cpp:1: error: (-215)\nunsupported layout\n")
        return False, None

    monkeypatch.setattr(cv2, "imencode", broken_encoder)
    error = expect_write_error(tmp_path / "out.png", "encoder failed")
    assert failure == "returns False" or "unsupported layout" in str(error)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_removes_temp_file_and_keeps_old_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "out.png", codes_image("RGB", 8))
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(gio.os, "fsync", disk_full)
    expect_write_error(path, "no space left on device")
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert path.read_bytes() == before


@pytest.mark.parametrize("spelling", ["same", "dotdot", "hardlink"])
def test_protected_input_is_never_overwritten(tmp_path: Path, spelling: str) -> None:
    source = write_image(tmp_path / "in.png", codes_image("RGB", 8))
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    target = {"same": source, "dotdot": tmp_path / "sub" / ".." / "in.png", "hardlink": tmp_path / "link.png"}[spelling]
    if spelling == "hardlink":
        os.link(source, target)
    expect_write_error(target, "input file", protect=[str(source)])
    assert source.read_bytes() == before


def test_protect_does_not_block_other_outputs(tmp_path: Path) -> None:
    source = write_image(tmp_path / "in.png", codes_image("RGB", 8))
    write_image(tmp_path / "out.png", codes_image("RGB", 8), protect=[source, tmp_path / "missing.png"])
    assert (tmp_path / "out.png").is_file()


def test_bad_write_arguments_are_programming_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "q.jpg", codes_image("RGB", 8), quality=0)
    with pytest.raises(ValueError, match="bit_depth"):
        write_image(tmp_path / "d.png", codes_image("RGB", 8), bit_depth=12)


# ---------------------------------------------------------------------------------------------- Image and module


def test_image_properties() -> None:
    image = codes_image("RGBA", 8)
    assert (image.height, image.width, image.is_gray, image.mode) == (H, W, False, "RGBA")
    assert codes_image("L", 8).mode == "L"
    assert codes_image("L", 8).rgb().shape == (H, W, 3)


@pytest.mark.parametrize(
    ("color", "alpha", "depth", "match"),
    [
        (np.zeros((2, 2, 3), np.uint8), None, 8, "float"),
        (np.zeros((2, 2), np.float32), None, 8, "shape"),
        (np.zeros((2, 2, 2), np.float32), None, 8, "shape"),
        (np.zeros((2, 2, 3), np.float32), np.zeros((3, 3, 1), np.float32), 8, "alpha"),
        (np.zeros((2, 2, 3), np.float32), None, 12, "bit_depth"),
    ],
)
def test_image_rejects_malformed_pixels(color: np.ndarray, alpha: np.ndarray | None, depth: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Image(color, alpha, depth)


def test_read_image_size_is_header_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "s.webp", codes_image("RGB", 8))
    monkeypatch.setattr(gio, "_decode", lambda *args: pytest.fail("decoded for a size probe"))
    assert read_image_size(path) == (W, H)


def test_read_image_size_reports_failures(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("hello")
    with pytest.raises(InputError, match="notes.jpg.*not an image"):
        read_image_size(tmp_path / "notes.jpg")
    with pytest.raises(InputError, match="no such file"):
        read_image_size(tmp_path / "missing.jpg")


def test_importing_io_does_not_import_cv2() -> None:
    code = "import sys, gantool.io; assert 'cv2' not in sys.modules and 'torch' not in sys.modules, 'heavy'"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
