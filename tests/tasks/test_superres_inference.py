"""``gantool upscale`` end to end on the real bundled network (the superres plugin's
``models/superres-x4.safetensors``, compact x4).

Every test runs the CLI entry point ``gantool.cli.main`` on a tiny image (about 24x20, well under a second
each on a CPU) and reads the written file back, so the whole path is covered: plugin discovery, model
resolution, the engine's processor (gray, alpha, bit depth, tiling, the whole-image postprocess) and I/O.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

import gantool_superres
from gantool.cli.app import main
from gantool.image.io import Image, read_image, write_image
from gantool_superres import SPEC

MODEL = gantool_superres.MODELS.path / "superres-x4.safetensors"

pytestmark = pytest.mark.skipif(not MODEL.is_file(), reason="the bundled superres-x4 model is missing")


def upscale(*args: str | Path) -> None:
    """Run ``gantool upscale ... --device cpu`` like a shell would; fail the test on a non-zero exit."""
    argv = ["upscale", *map(str, args), "--device", "cpu", "--workers", "0"]
    if "--model" not in argv:
        argv += ["--model", str(MODEL)]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 0, f"gantool {' '.join(argv)} exited with {exited.value.code}"


def photo(height: int = 20, width: int = 24, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like RGB image: coarse noise upsampled, so the network sees edges and gradients."""
    coarse = np.random.default_rng(seed).random((height // 4 + 2, width // 4 + 2, 3)).astype(np.float32)
    t = torch.nn.functional.interpolate(torch.from_numpy(coarse).permute(2, 0, 1)[None], size=(height, width),
                                        mode="bilinear", align_corners=False)
    return t[0].permute(1, 2, 0).numpy().copy()


def red_disc(height: int = 20, width: int = 24, radius: float = 7.0) -> Image:
    """An opaque red disc (antialiased edge) on a fully transparent background whose hidden colour is black."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    alpha = np.clip(radius + 0.5 - np.hypot(yy - (height - 1) / 2, xx - (width - 1) / 2), 0, 1)[..., None]
    color = np.zeros((height, width, 3), np.float32)
    color[alpha[..., 0] > 0] = (1.0, 0.0, 0.0)
    return Image(color, alpha)


def test_rgba_keeps_alpha_and_opaque_edges_keep_their_colour(tmp_path: Path) -> None:
    source = red_disc()
    write_image(tmp_path / "disc.png", source)
    upscale(tmp_path / "disc.png", "-o", tmp_path / "out")
    out = read_image(tmp_path / "out" / "disc.png")
    assert out.mode == "RGBA" and out.color.shape == (80, 96, 3) and out.alpha.shape == (80, 96, 1)
    assert out.alpha.max() == 1.0 and out.alpha[:4, :4].max() == 0.0  # opaque centre, transparent corners
    opaque = out.alpha[..., 0] > 0.5
    assert opaque.sum() > 500
    assert out.color[opaque][:, 0].min() > 0.8  # no dark fringe where the disc is visible
    assert out.color[opaque][:, 1:].max() < 0.2  # nor a coloured one

    # The naive way (the stored colour, black under the transparent part, straight into the network)
    # fails the same check: that is the bug the engine's transparent fill fixes.
    from gantool.engine.export import load_model

    model = load_model(MODEL, SPEC)
    with torch.inference_mode():
        naive = model.task.predict(model.networks, torch.from_numpy(source.color).permute(2, 0, 1)[None])
    assert naive[0, 0].numpy()[opaque].min() < 0.8


def test_16_bit_png_gives_16_bit_output(tmp_path: Path) -> None:
    write_image(tmp_path / "deep.png", Image(photo(), None, 16))
    upscale(tmp_path / "deep.png", "-o", tmp_path / "out")
    out = read_image(tmp_path / "out" / "deep.png")
    assert out.bit_depth == 16 and out.color.shape == (80, 96, 3)
    codes = out.color * 255
    assert np.abs(codes - np.round(codes)).max() > 0.1  # finer than 8-bit steps


def test_gray_stays_gray(tmp_path: Path) -> None:
    write_image(tmp_path / "gray.png", Image(photo()[..., :1]))
    upscale(tmp_path / "gray.png", "-o", tmp_path / "out")
    out = read_image(tmp_path / "out" / "gray.png")
    assert out.mode == "L" and out.color.shape == (80, 96, 1)


def test_exif_rotated_jpeg_is_upscaled_upright(tmp_path: Path) -> None:
    stored = np.zeros((20, 24, 3), np.uint8)  # as stored: 24 wide, 20 high
    stored[:8, :8] = 255  # bright block in the stored top-left corner
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": upright it is 20 wide, 24 high
    PIL.Image.fromarray(stored).save(tmp_path / "turned.jpg", quality=95, exif=exif)
    upscale(tmp_path / "turned.jpg", "-o", tmp_path / "out")
    out = read_image(tmp_path / "out" / "turned.jpg")
    assert out.color.shape == (96, 80, 3)
    # Turned clockwise, the stored top-left corner is the upright top-right corner.
    assert out.color[:24, -24:].mean() > 0.9 and out.color[:24, :24].mean() < 0.1
    assert out.color[-24:, -24:].mean() < 0.1


def test_quality_sets_the_jpeg_size(tmp_path: Path) -> None:
    write_image(tmp_path / "p.png", Image(photo(seed=3)))
    sizes = {}
    for quality in (30, 95):
        upscale(tmp_path / "p.png", "-o", tmp_path / f"q{quality}", "--ext", "jpg", "--quality", str(quality))
        sizes[quality] = (tmp_path / f"q{quality}" / "p.jpg").stat().st_size
    assert sizes[30] < 0.8 * sizes[95]


def test_tiled_equals_untiled(tmp_path: Path) -> None:
    """2x2 tiles of 16 match the whole image within 2/255; 5x4 tiles of 8 only on average.

    The compact network sees 14 pixels around each output pixel, but a tile of 8 gives it at most 4 (the
    tile border is zero-padded like the image border), and ``tiled_apply``'s blend can only average such
    estimates: 4.8/255 at worst on this image, 0.43/255 on average (1.9 and 0.11 with 12-pixel tiles).
    """
    write_image(tmp_path / "p.png", Image(photo(seed=5), None, 16))  # 16-bit: compare without 8-bit rounding
    upscale(tmp_path / "p.png", "-o", tmp_path / "whole", "--tile", "0")
    for tile in (8, 16):
        upscale(tmp_path / "p.png", "-o", tmp_path / f"tile{tile}", "--tile", str(tile))
    whole, tile8, tile16 = (read_image(tmp_path / name / "p.png").color for name in ("whole", "tile8", "tile16"))
    assert whole.shape == tile8.shape == tile16.shape == (80, 96, 3)
    assert np.abs(whole - tile16).max() <= 2 / 255
    assert np.abs(whole - tile8).mean() <= 1 / 255 and np.abs(whole - tile8).max() <= 8 / 255
    assert not np.array_equal(whole, tile8)  # the tiled path really ran


def test_outscale_resizes_the_whole_result_and_its_alpha(tmp_path: Path) -> None:
    source = red_disc()
    write_image(tmp_path / "disc.png", source)
    upscale(tmp_path / "disc.png", "-o", tmp_path / "out", "--outscale", "3", "--tile", "8")
    out = read_image(tmp_path / "out" / "disc.png")
    assert out.color.shape == (60, 72, 3) and out.alpha.shape == (60, 72, 1)
    write_image(tmp_path / "p.png", Image(photo()))
    upscale(tmp_path / "p.png", "-o", tmp_path / "half", "--outscale", "0.5")
    assert read_image(tmp_path / "half" / "p.png").color.shape == (10, 12, 3)


def test_bundled_default_and_an_exported_x2_model_by_path(tmp_path: Path) -> None:
    from gantool.engine.export import export_model
    from gantool_superres.options import SuperResTrainOptions
    from gantool_superres.task import SuperResolution

    write_image(tmp_path / "p.png", Image(photo()))
    with pytest.raises(SystemExit) as exited:  # no --model: the bundled default, superres-x4
        main(["upscale", str(tmp_path / "p.png"), "-o", str(tmp_path / "default"), "--device", "cpu"])
    assert exited.value.code == 0
    assert read_image(tmp_path / "default" / "p.png").color.shape == (80, 96, 3)

    task = SuperResolution(SPEC, SuperResTrainOptions(scale=2, width=8, blocks=1))
    model = export_model(tmp_path / "tiny-x2.safetensors", task, task.build_inference_networks())
    upscale(tmp_path / "p.png", "-o", tmp_path / "x2", "--model", model)
    assert read_image(tmp_path / "x2" / "p.png").color.shape == (40, 48, 3)  # the scale comes from the file


def test_scale_option_picks_the_bundled_model_of_that_scale(tmp_path: Path) -> None:
    write_image(tmp_path / "p.png", Image(photo()))
    with pytest.raises(SystemExit) as exited:
        main(["upscale", str(tmp_path / "p.png"), "--scale", "2", "-o", str(tmp_path / "x2"), "--device", "cpu"])
    assert exited.value.code == 0
    assert read_image(tmp_path / "x2" / "p.png").color.shape == (40, 48, 3)
