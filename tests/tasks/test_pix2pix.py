"""The ``pix2pix`` plugin: card, options, paired data layouts and direction, training, deterministic inference.

Everything runs on tiny synthetic images on the CPU; the facades smoke run is in docs/pix2pix.md.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import gantool_pix2pix
from gantool.engine.runtime import Runtime
from gantool.engine.step import TrainStep
from gantool.errors import UsageError
from gantool.image.io import Image, read_image, write_image
from gantool.lib.conditional import ConditionalGANOptions
from gantool_pix2pix import SPEC
from gantool_pix2pix.options import Pix2PixTrainOptions, TranslateOptions
from gantool_pix2pix.task import Pix2Pix

TINY = {"crop": 32, "width": 8, "critic_width": 8, "critic_layers": 2}


def tiny_options(**overrides: object) -> Pix2PixTrainOptions:
    return Pix2PixTrainOptions(**{**TINY, **overrides})  # type: ignore[arg-type]


def smooth(height: int, width: int, seed: int) -> np.ndarray:
    """Blocky random RGB (H, W, 3) in [0, 1]: more image-like than white noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 4 + 1, width // 4 + 1, 3)).astype(np.float32)
    return np.kron(coarse, np.ones((4, 4, 1), np.float32))[:height, :width]


def write_side_by_side(folder: Path, count: int = 4, size: int = 36) -> Path:
    """A|B files where B is the negative of A (an easy mapping to learn)."""
    for index in range(count):
        a = smooth(size, size, index)
        write_image(folder / f"{index}.png", Image(np.concatenate([a, 1 - a], axis=1)))
    return folder


def write_folders(root: Path, count: int = 3, size: int = 36) -> Path:
    for index in range(count):
        a = smooth(size, size, index)
        write_image(root / "A" / f"p{index}.png", Image(a))
        write_image(root / "B" / f"p{index}.bmp", Image(1 - a))  # extensions may differ
    return root


def make_step(task: Pix2Pix, networks: dict[str, torch.nn.Module]) -> TrainStep:
    runtime = Runtime(device=torch.device("cpu"))
    return TrainStep(runtime=runtime, networks=networks, raw_networks=networks,
                     optimizers=task.build_optimizers(networks), scaler=runtime.grad_scaler())


def cli_app():
    from gantool.cli.app import build_app
    from gantool.plugin.manager import build_plugin_system

    return build_app(build_plugin_system(entry_points=[], extra_plugins=[("pix2pix", gantool_pix2pix)]))


# ------------------------------------------------------------------------------------------------ card


def test_card_registered_through_entry_point() -> None:
    from gantool.plugin.manager import build_plugin_system

    system = build_plugin_system()
    assert system.info("pix2pix").status == "loaded"
    spec = system.registry.get("pix2pix")
    assert (spec.verb, spec.scale, spec.default_weights) == ("translate", 1, None)
    assert spec.load_implementation() is Pix2Pix
    # CycleGAN's translate options own --direction; a pix2pix model maps the way it was trained.
    assert "direction" not in {f.name for f in dataclasses.fields(TranslateOptions)}


def test_cards_and_shared_helpers_do_not_import_torch() -> None:
    code = ("import sys, gantool_pix2pix, gantool_colorize, gantool.cgan, gantool.cli.eval; "
            "gantool_pix2pix.options.Pix2PixTrainOptions(); print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_options_are_validated_all_at_once() -> None:
    with pytest.raises(UsageError, match="multiple of 32.*smaller than --crop"):
        Pix2PixTrainOptions(crop=100, load_size=64)
    assert Pix2PixTrainOptions().resize_to == 286 and Pix2PixTrainOptions().unet_depth == 7
    assert Pix2PixTrainOptions(crop=100, depth=2).unet_depth == 2
    assert isinstance(Pix2PixTrainOptions(), ConditionalGANOptions)


# ------------------------------------------------------------------------------------------------ data


def test_side_by_side_layout_and_direction(tmp_path: Path) -> None:
    data = write_side_by_side(tmp_path / "pairs", count=2)
    a_to_b = Pix2Pix(SPEC, tiny_options(flip=False, load_size=36, crop=32)).build_dataset(data)
    item = a_to_b[0]
    assert item["A"].shape == item["B"].shape == (3, 32, 32)
    assert torch.allclose(item["A"] + item["B"], torch.ones_like(item["A"]), atol=1 / 255)
    b_to_a = Pix2Pix(SPEC, tiny_options(flip=False, load_size=32, direction="BtoA")).build_dataset(data)
    first = b_to_a[0]
    original = torch.from_numpy(smooth(36, 36, 0)).permute(2, 0, 1)
    resized = torch.nn.functional.interpolate(original[None], size=(32, 32), mode="bilinear", antialias=True)[0]
    assert torch.allclose(first["B"], resized, atol=2 / 255)  # the left half (A) became the target


def test_folder_layout_pairs_files_by_name(tmp_path: Path) -> None:
    root = write_folders(tmp_path / "folders")
    dataset = Pix2Pix(SPEC, tiny_options(flip=False, load_size=32)).build_dataset(root)
    assert len(dataset) == 3 and dataset.layout == "folders"
    item = dataset[1]
    assert torch.allclose(item["A"] + item["B"], torch.ones_like(item["A"]), atol=1 / 255)


def test_a_train_split_is_used_when_present(tmp_path: Path) -> None:
    root = tmp_path / "facades"
    write_side_by_side(root / "train", count=3)
    write_side_by_side(root / "test", count=5)
    assert len(Pix2Pix(SPEC, tiny_options()).build_dataset(root)) == 3


# -------------------------------------------------------------------------------------------- training


def test_training_step_updates_both_networks() -> None:
    task = Pix2Pix(SPEC, tiny_options(gan_loss="lsgan"))
    networks = task.build_networks()
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in networks.items()}
    batch = {"A": torch.rand(2, 3, 32, 32), "B": torch.rand(2, 3, 32, 32)}
    losses = task.training_step(batch, make_step(task, networks))
    assert {"d", "g", "g_gan", "l1"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
    for name, net in networks.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True)), name
    rows = task.visualize(batch, task.build_inference_networks())
    assert [tuple(r.shape) for r in rows] == [(2, 3, 32, 32)] * 3


def test_short_cpu_training_run_lowers_the_l1_loss(tmp_path: Path) -> None:
    from gantool.engine.training import Trainer
    from gantool.testing import tiny_training_options

    data = write_side_by_side(tmp_path / "pairs", count=8)
    options = tiny_training_options(tmp_path / "run", data, steps=80, batch_size=4, checkpoint_every=80,
                                    sample_every=80, ema_decay=0.0)
    result = Trainer(SPEC, options, tiny_options(lr=1e-3), progress=False).fit()
    l1 = [json.loads(line)["losses"]["l1"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(l1) == 80
    assert np.mean(l1[-10:]) < 0.7 * np.mean(l1[:10]), l1
    assert result.exported is not None and (tmp_path / "run" / "samples").is_dir()


def test_task_meets_gantools_contract(tmp_path: Path) -> None:
    from gantool.testing import check_task

    data = write_side_by_side(tmp_path / "pairs", count=2)
    check_task(SPEC, data, tmp_path / "run", tiny_options(), steps=2, image_size=16)


# ------------------------------------------------------------------------------------------- inference


def test_predict_keeps_any_size_and_is_deterministic() -> None:
    task = Pix2Pix(SPEC, tiny_options())
    generator = task.build_inference_networks()["generator"].eval().requires_grad_(False)
    image = torch.rand(1, 3, 37, 45)
    with torch.no_grad():
        first = task.predict({"generator": generator}, image, TranslateOptions())
        again = task.predict({"generator": generator}, image, None)
        noisy = task.predict({"generator": generator}, image, TranslateOptions(seed=7))
        noisy_again = task.predict({"generator": generator}, image, TranslateOptions(seed=7))
    assert first.shape == (1, 3, 37, 45) and first.min() >= 0 and first.max() <= 1
    assert torch.equal(first, again)
    with torch.no_grad():
        gray = image[:, :1]
        assert torch.equal(task.predict({"generator": generator}, gray), task.predict(
            {"generator": generator}, gray.expand(-1, 3, -1, -1)))
    assert torch.equal(noisy, noisy_again) and not torch.equal(noisy, first)
    assert Pix2Pix.tileable is False


def test_translate_through_the_cli_is_deterministic(tmp_path: Path) -> None:
    from gantool.engine.export import export_model

    task = Pix2Pix(SPEC, tiny_options(norm="batch"))
    networks = task.build_inference_networks()
    model = export_model(tmp_path / "tiny.safetensors", task, networks)
    write_image(tmp_path / "in" / "photo.png", Image(smooth(37, 45, 3)))
    app = cli_app()
    outputs = []
    for run, extra in enumerate(([], [], ["--seed", "5"], ["--seed", "5"])):
        out = tmp_path / f"out{run}"
        result = CliRunner().invoke(app, ["translate", str(tmp_path / "in" / "photo.png"), "--model", str(model),
                                          "-o", str(out), "--device", "cpu", "--tile", "0", *extra])
        assert result.exit_code == 0, result.output
        outputs.append(read_image(out / "photo.png").color)
    assert outputs[0].shape == (37, 45, 3)
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[2], outputs[3])
    assert not np.array_equal(outputs[0], outputs[2])  # --seed turns pix2pix's dropout noise on


def test_export_metadata_names_architecture_and_direction() -> None:
    metadata = Pix2Pix(SPEC, tiny_options(direction="BtoA")).export_metadata()
    assert metadata["gantool.architecture"] == "U-Net 3->3, depth 4, width 8, instance norm"
    assert metadata["gantool.direction"] == "BtoA"


# ------------------------------------------------------------------------------------------ evaluation


def evaluate(model: Path, data: Path, *, size: int | None = None) -> list:
    """``gantool eval pix2pix`` through the engine, as the CLI runs it; the rows."""
    from gantool.engine.evaluation import run_evaluation
    from gantool.plugin.common import EvalOptions
    from gantool_pix2pix.options import Pix2PixEvalOptions

    return list(run_evaluation(spec=SPEC, model_path=model, options=EvalOptions(data=data, device="cpu"),
                               task_options=Pix2PixEvalOptions(size=size)).rows)


def test_eval_scores_the_test_split_in_the_models_direction(tmp_path: Path) -> None:
    from gantool.engine.export import export_model, load_model
    from gantool.lib.metrics import MEAN_ROW, psnr, to_8bit

    task = Pix2Pix(SPEC, tiny_options(direction="BtoA"))
    model = export_model(tmp_path / "tiny.safetensors", task, task.build_inference_networks())
    write_side_by_side(tmp_path / "facades" / "train", count=2)
    test = tmp_path / "facades" / "test"
    for index in range(3):
        a = smooth(40, 40, 10 + index)
        write_image(test / f"t{index}.png", Image(np.concatenate([a, 1 - a], axis=1)))

    rows = evaluate(model, tmp_path / "facades")
    assert [r.image for r in rows] == ["t0", "t1", "t2", MEAN_ROW]
    # Recompute one row by hand: BtoA means the right half goes in, the left half is the target, at the
    # model's crop size (32).
    loaded = load_model(model, SPEC, device=torch.device("cpu"))
    pair = torch.from_numpy(read_image(test / "t1.png").color).permute(2, 0, 1)[None]
    resize = torch.nn.functional.interpolate
    source = resize(pair[..., 40:], size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    target = resize(pair[..., :40], size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        result = to_8bit(loaded.task.predict(loaded.networks, source))
    assert rows[1].psnr == pytest.approx(float(psnr(result, to_8bit(target.clamp(0, 1)))), abs=0.05)
    assert rows[-1].l1 == pytest.approx(np.mean([r.l1 for r in rows[:-1]]))
    native = evaluate(model, tmp_path / "facades", size=0)
    assert native[0].psnr != rows[0].psnr  # --size 0 runs at the stored 40x40


def test_eval_through_the_cli(tmp_path: Path) -> None:
    from gantool.engine.export import export_model

    task = Pix2Pix(SPEC, tiny_options())
    model = export_model(tmp_path / "tiny.safetensors", task, task.build_inference_networks())
    data = write_folders(tmp_path / "pairs")
    result = CliRunner().invoke(cli_app(), ["eval", "pix2pix", "--data", str(data), "--model", str(model),
                                            "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["image"] for r in rows] == ["p0", "p1", "p2", "mean"] and 0 < rows[-1]["l1"] < 1
    assert list(rows[0]) == ["image", "l1", "psnr", "ssim"]
    no_model = CliRunner().invoke(cli_app(), ["eval", "pix2pix", "--data", str(data)])
    assert no_model.exit_code == 2 and "needs --model" in no_model.output
    missing = CliRunner().invoke(cli_app(), ["eval", "pix2pix", "--data", str(tmp_path / "nowhere"),
                                             "--model", str(model)])
    assert missing.exit_code != 0 and "nowhere" in missing.output
