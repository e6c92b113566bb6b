"""Tests of the example plugin, run against the installed distribution (``pip install -e docs/plugins/example``).

They check the plugin the way gantool sees it: through its entry point, its CLI flags, its networks,
one real ``TrainStep``, and a short train -> export -> ``gantool sharpen`` run on generated images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gantool.cli import main
from gantool.engine.runtime import Runtime
from gantool.engine.step import TrainStep
from gantool.errors import InputError, UsageError
from gantool.io import Image, read_image, write_image
from gantool.plugins import build_plugin_system
from gantool.testing import check_task
from gantool.weights import read_metadata
from gantool_sharpen import SPEC, SharpenOptions, SharpenTrainOptions
from gantool_sharpen.task import Sharpen

CLI = [sys.executable, "-m", "gantool"]
TINY = {"width": 8, "blocks": 1, "critic_width": 8, "crop": 32, "blur_max": 1.5}


def _run_cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "GANTOOL_PLUGINS": "sharpen"}  # only this plugin; wide help
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def _tiny_task() -> Sharpen:
    return Sharpen(SPEC, SharpenTrainOptions(**TINY))


def _photo(seed: int, height: int = 40, width: int = 48) -> np.ndarray:
    """A small image with edges and texture (blur visibly changes it), (H, W, 3) float in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    stripes = ((x // (3 + seed % 3) + y // 5) % 2).astype(np.float32)
    noise = rng.random((height, width, 3), dtype=np.float32)
    return np.clip(0.6 * stripes[..., None] + 0.4 * noise, 0.0, 1.0)


def _detail(image: torch.Tensor) -> float:
    """Mean horizontal gradient: high for sharp texture, lower once blurred."""
    return float((image[..., 1:] - image[..., :-1]).abs().mean())


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    for index in range(4):
        write_image(folder / f"photo{index}.png", Image(color=_photo(index)))
    write_image(folder / "nested" / "small_gray.png", Image(color=_photo(9, 20, 24)[..., :1]))  # upscaled, gray
    return folder


# ------------------------------------------------------------------------------------------------ card


def test_card_registers_through_the_entry_point():
    system = build_plugin_system()
    info = system.info("sharpen")
    assert info.status == "loaded", info.error
    assert (info.module, info.distribution, info.tasks) == ("gantool_sharpen", "gantool-sharpen", ["sharpen"])
    spec = system.registry.get("sharpen")
    assert (spec.verb, spec.scale, spec.kind) == ("sharpen", 1, "image-to-image")
    assert system.registry.owner("sharpen") == "sharpen"
    assert spec.load_implementation().__name__ == "Sharpen"


def test_card_module_does_not_import_torch():
    probe = "import sys, gantool_sharpen; print(sorted(m for m in ('torch', 'kornia', 'cv2') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cli_help_shows_the_task_flags():
    verb = _run_cli("sharpen", "--help")
    assert verb.returncode == 0, verb.stderr
    assert "--strength" in verb.stdout and "Blend between input" in verb.stdout
    train = _run_cli("train", "sharpen", "--help")
    assert train.returncode == 0, train.stderr
    for flag in ("--width", "--blocks", "--crop", "--lr", "--blur-max", "--steps"):
        assert flag in train.stdout, flag
    assert "--strength" not in train.stdout


# -------------------------------------------------------------------------------------------- networks


def test_generator_keeps_shape_and_starts_as_identity():
    networks = _tiny_task().build_networks()
    image = torch.rand(2, 3, 37, 45)  # odd sizes: no stride or pooling may shrink them
    with torch.no_grad():
        out = networks["generator"](image)
        scores = networks["critic"](image)
    assert out.shape == image.shape
    assert torch.equal(out, image)  # zero-initialised last layer
    assert scores.shape[:2] == (2, 1) and scores.shape[-1] > 1  # one score per patch


def test_inference_builds_only_the_generator():
    assert list(_tiny_task().build_inference_networks()) == ["generator"]


def test_strength_zero_returns_the_input_and_one_the_full_result():
    task = _tiny_task()
    networks = task.build_inference_networks()
    torch.nn.init.normal_(networks["generator"].tail.weight, std=0.1)  # make it do something
    image = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(task.predict(networks, image, SharpenOptions(strength=0.0)), image)
        full = task.predict(networks, image, SharpenOptions(strength=1.0))
        half = task.predict(networks, image, SharpenOptions(strength=0.5))
        expected_full = networks["generator"](image).clamp(0, 1)
    assert not torch.equal(full, image)
    torch.testing.assert_close(full, expected_full)
    assert full.shape == half.shape == image.shape
    assert (half - image).abs().mean() < (full - image).abs().mean()


# ------------------------------------------------------------------------------------------------ data


def test_dataset_pairs_blurred_crops_with_their_originals(photo_folder):
    torch.manual_seed(0)
    dataset = _tiny_task().build_dataset(photo_folder)
    assert len(dataset) == 5
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["input"].shape == item["target"].shape == (3, 32, 32)
        assert item["input"].dtype == torch.float32
        assert item["input"].min() >= 0 and item["input"].max() <= 1
        assert _detail(item["input"]) < _detail(item["target"])  # the blur removed high frequencies


def test_empty_folder_and_impossible_blur_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no images in"):
        _tiny_task().build_dataset(tmp_path)
    with pytest.raises(UsageError, match="--crop 16 is too small"):
        Sharpen(SPEC, SharpenTrainOptions(crop=16, blur_max=6.0)).build_dataset(tmp_path)
    with pytest.raises(UsageError, match="--blur-min 2.0 is larger"):
        Sharpen(SPEC, SharpenTrainOptions(blur_min=2.0, blur_max=1.0)).build_dataset(tmp_path)


# -------------------------------------------------------------------------------------------- training


def test_one_training_step_gives_finite_losses_and_updates_both_networks(photo_folder):
    torch.manual_seed(0)
    task = _tiny_task()
    dataset = task.build_dataset(photo_folder)
    batch = {key: torch.stack([dataset[i][key] for i in range(2)]) for key in ("input", "target")}
    networks = task.build_networks()
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in networks.items()}
    runtime = Runtime(device=torch.device("cpu"))
    step = TrainStep(runtime=runtime, networks=networks, raw_networks=networks,
                     optimizers=task.build_optimizers(networks), scaler=runtime.grad_scaler())
    losses = task.training_step(batch, step)
    assert set(losses) >= {"critic", "generator", "l1"}
    assert all(torch.isfinite(value).all() for value in losses.values()), losses
    assert step.updated == ["critic", "generator"]
    for name, net in networks.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True)), name
    assert all(p.requires_grad for p in networks["critic"].parameters())  # frozen() switched them back
    rows = task.visualize(batch, networks)
    assert len(rows) == 3 and all(row.shape == batch["input"].shape for row in rows)


def test_task_meets_gantools_contract(photo_folder, tmp_path):
    """gantool's own smoke check: train 2 steps in process, export, reload from metadata, predict."""
    check_task(SPEC, photo_folder, tmp_path / "run", SharpenTrainOptions(**TINY), steps=2, image_size=24)


def _main(*args: str) -> int:
    """``gantool ARGS`` in this process (the console script's own ``main``), returning its exit code."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return exited.value.code


def test_train_export_and_sharpen_through_the_cli(photo_folder, tmp_path, monkeypatch, capsys):
    # Training and the strength-0 run go through gantool's CLI in this process (torch is already imported
    # here, which saves seconds); the main sharpen run is a real `python -m gantool` subprocess.
    monkeypatch.setenv("GANTOOL_PLUGINS", "sharpen")
    model = tmp_path / "sharpen-tiny.safetensors"
    code = _main(
        "train", "sharpen", "--data", str(photo_folder), "--run-dir", str(tmp_path / "run"),
        "--steps", "20", "--batch-size", "2", "--num-workers", "0", "--device", "cpu",
        "--log-every", "10", "--sample-every", "0", "--checkpoint-every", "20", "--export", str(model),
        *(part for key, value in TINY.items() for part in (f"--{key.replace('_', '-')}", str(value))),
    )
    assert code == 0, capsys.readouterr().err
    metadata = read_metadata(model)
    assert metadata["gantool.task"] == "sharpen" and metadata["gantool.steps"] == "20"
    assert json.loads(metadata["gantool.train_options"])["width"] == TINY["width"]  # architecture travels along

    source = tmp_path / "img.png"
    write_image(source, Image(color=_photo(7, 30, 44)))
    sharpened = _run_cli("sharpen", str(source), "--model", str(model), "-o", str(tmp_path / "out"),
                         "--device", "cpu")
    assert sharpened.returncode == 0, sharpened.stdout + sharpened.stderr
    result = read_image(tmp_path / "out" / "img.png")
    assert (result.height, result.width) == (30, 44)
    assert np.isfinite(result.color).all()

    code = _main("sharpen", str(source), "--model", str(model), "-o", str(tmp_path / "same"), "--strength", "0",
                 "--device", "cpu")
    assert code == 0, capsys.readouterr().err
    np.testing.assert_array_equal(read_image(tmp_path / "same" / "img.png").color, read_image(source).color)
