"""The Python API (``gantool.load`` / ``gantool.generate``) gives what the CLI writes, on arrays and files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_generate import DREAM, app_with, exported
from test_generate import generate as cli_generate
from test_inputs import SPEC as FILL_SPEC
from test_inputs import FillPlugin, FillTask, FillTrainOptions
from typer.testing import CliRunner

import gantool
import gantool_superres
from gantool.cli.app import build_app
from gantool.engine.export import export_model
from gantool.errors import CheckpointError, UsageError
from gantool.image.io import Image, write_image
from gantool.plugin.manager import build_plugin_system

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
SUPERRES = [("superres", gantool_superres)]


@pytest.fixture(scope="module")
def upscaler():
    return gantool.load("superres-x4", device="cpu", tile=0,
                        plugins=build_plugin_system(entry_points=[], extra_plugins=SUPERRES))


def rng_pixels(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype is np.float32:
        return rng.random(shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def cli_upscale(tmp_path: Path, image: Image, *args: str) -> np.ndarray:
    """What ``gantool upscale`` writes for ``image``, as stored (uint8 or uint16 with alpha last)."""
    source = write_image(tmp_path / "in.png", image)
    app = build_app(build_plugin_system(entry_points=[], extra_plugins=SUPERRES))
    result = runner.invoke(app, ["upscale", str(source), "-o", str(tmp_path / "out"), "--device", "cpu",
                                 "--workers", "0", *(args or ("--tile", "0"))])
    assert result.exit_code == 0, result.output
    return read_stored(tmp_path / "out" / "in.png")


def read_stored(path: Path) -> np.ndarray:
    import cv2  # the test reads the file's own codes, not gantool's float view of them

    stored = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return stored if stored.ndim == 2 else stored[..., [2, 1, 0, 3][: stored.shape[2]]]


@pytest.mark.parametrize(("shape", "dtype"), [((14, 11), np.uint8), ((14, 11, 4), np.uint8),
                                              ((14, 11, 3), np.uint16)])
def test_load_gives_exactly_what_the_cli_writes(upscaler, tmp_path: Path, shape, dtype) -> None:
    """Gray stays 2-D, RGBA keeps its alpha, 16-bit stays 16-bit, and every code equals the CLI's file."""
    pixels = rng_pixels(shape, dtype)
    out = upscaler(pixels)
    assert out.dtype == dtype and out.shape == (56, 44, *shape[2:])
    top = np.iinfo(dtype).max
    values = (pixels[..., None] if pixels.ndim == 2 else pixels).astype(np.float32) / top
    alpha = values[..., 3:] if values.shape[2] == 4 else None
    image = Image(values[..., :3] if alpha is not None else values, alpha, 16 if dtype is np.uint16 else 8)
    np.testing.assert_array_equal(out, cli_upscale(tmp_path, image))


def test_float_arrays_and_paths(upscaler, tmp_path: Path) -> None:
    pixels = rng_pixels((10, 9, 2), np.float32)  # gray + alpha, float
    out = upscaler(pixels)
    assert out.dtype == np.float32 and out.shape == (40, 36, 2) and out.min() >= 0 and out.max() <= 1
    np.testing.assert_array_equal(out[..., 1:], upscaler(pixels)[..., 1:])  # deterministic
    path = write_image(tmp_path / "photo.png", Image(rng_pixels((10, 9, 3), np.float32)), bit_depth=16)
    from_file = upscaler(path)
    assert from_file.dtype == np.uint16 and from_file.shape == (40, 36, 3)
    np.testing.assert_array_equal(from_file, upscaler(str(path)))


def test_task_options_tiling_and_info(tmp_path: Path) -> None:
    system = build_plugin_system(entry_points=[], extra_plugins=SUPERRES)
    path = gantool_superres.MODELS.find("superres-x4")
    model = gantool.load(path, plugins=system, device="cpu", outscale=2)
    pixels = rng_pixels((40, 36, 3), np.uint8)
    assert model(pixels).shape == (80, 72, 3)  # --outscale 2
    assert model.info["gantool.task"] == "superres" and model.scale == 4 and model.path == path
    tiled = gantool.load("superres-x4", plugins=system, device="cpu", tile=24, tile_overlap=8)(pixels)
    cli = cli_upscale(tmp_path, Image(pixels.astype(np.float32) / 255), "--tile", "24", "--tile-overlap", "8")
    np.testing.assert_array_equal(tiled, cli)  # the CLI's tiling, not a second implementation
    with pytest.raises(UsageError, match="no option 'outscal'"):
        gantool.load("superres-x4", plugins=system, outscal=2)
    with pytest.raises(CheckpointError, match="not found"):
        gantool.load("no-such-model", plugins=system)
    with pytest.raises(UsageError, match="expected an"):
        model(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(UsageError, match="uint8, uint16 or float"):
        model(np.zeros((4, 4, 3), np.int32))


def test_extra_inputs_by_name(tmp_path: Path) -> None:
    task = FillTask(FILL_SPEC, FillTrainOptions())
    path = export_model(tmp_path / "fill.safetensors", task, task.build_inference_networks())
    model = gantool.load(path, device="cpu", plugins=build_plugin_system(entry_points=[],
                                                                       extra_plugins=[("fill", FillPlugin())]))
    image = rng_pixels((12, 10, 3), np.float32)
    holes = np.zeros((12, 10), np.float32)
    holes[3:6, 2:5] = 1
    out = model(image, mask=holes)
    np.testing.assert_allclose(out[holes == 0], image[holes == 0], atol=1e-6)  # kept where no hole
    assert np.abs(out[holes == 1] - image[holes == 1]).max() > 0.05  # painted in the holes
    rgba = np.concatenate([image, 1 - holes[..., None]], axis=2)  # alpha="as-mask": transparent = hole
    np.testing.assert_allclose(model(rgba)[..., :3], out, atol=1e-6)
    with pytest.raises(UsageError, match="takes no input 'mask2'"):
        model(image, mask2=holes)


def test_generate_equals_the_files_of_the_cli(tmp_path: Path) -> None:
    from gantool.testing import TaskCards

    model = exported(tmp_path)
    system = build_plugin_system(entry_points=[], extra_plugins=[("dream", TaskCards(DREAM))])
    images = gantool.generate(model, 3, seed=5, device="cpu", plugins=system)
    cli_generate(app_with(DREAM), model, tmp_path / "out", "-n", "3", "--seed", "5")
    for index, array in enumerate(images):
        assert array.dtype == np.uint8 and array.shape == (8, 8, 3)
        np.testing.assert_array_equal(array, read_stored(tmp_path / "out" / f"dream-seed5-{index:04d}.png"))
    with pytest.raises(UsageError, match="generates images"):
        gantool.load(model, plugins=system)(np.zeros((4, 4, 3), np.uint8))


def test_importing_gantool_and_resolving_the_api_imports_no_torch() -> None:
    code = ("import sys, gantool; gantool.load; gantool.generate; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
