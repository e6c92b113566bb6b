"""The ``colorize`` plugin: card, Lab training pairs, full-resolution inference, the CLI verb and ``eval colorize``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import gantool_colorize
import gantool_superres
from gantool.engine.export import export_model
from gantool.engine.runtime import Runtime
from gantool.engine.step import TrainStep
from gantool.errors import UsageError
from gantool.image.io import Image, read_image, write_image
from gantool.lib.color import gray_lightness, is_gray, rec601_gray, rgb_to_lab
from gantool.weights import bundled_models_resolver
from gantool_colorize import SPEC
from gantool_colorize.options import ColorizeOptions, ColorizeTrainOptions
from gantool_colorize.task import Colorize, working_size

TINY = {"crop": 32, "width": 8, "critic_width": 8, "critic_layers": 2}


def tiny_options(**overrides: object) -> ColorizeTrainOptions:
    return ColorizeTrainOptions(**{**TINY, **overrides})  # type: ignore[arg-type]


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful (H, W, 3) image in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((1, 3, 4, 4)).astype(np.float32))
    image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return image[0].permute(1, 2, 0).numpy().copy()


def write_photos(folder: Path, count: int = 3, size: tuple[int, int] = (40, 52)) -> Path:
    for index in range(count):
        write_image(folder / f"photo{index}.png", Image(photo(*size, seed=index)))
    return folder


def tiny_model(tmp_path: Path) -> Path:
    task = Colorize(SPEC, tiny_options())
    return export_model(tmp_path / "colorize-tiny.safetensors", task, task.build_inference_networks())


def loaded(task: Colorize) -> dict[str, torch.nn.Module]:
    return {"generator": task.build_inference_networks()["generator"].eval().requires_grad_(False)}


def cli_app():
    from gantool.cli.app import build_app
    from gantool.plugin.manager import build_plugin_system

    system = build_plugin_system(entry_points=[], extra_plugins=[("superres", gantool_superres),
                                                                 ("colorize", gantool_colorize)])
    return build_app(system)


# ------------------------------------------------------------------------------------------------ card


def test_card_registered_through_entry_point() -> None:
    from gantool.plugin.manager import build_plugin_system

    system = build_plugin_system()
    assert system.info("colorize").status == "loaded"
    spec = system.registry.get("colorize")
    assert (spec.verb, spec.scale, spec.default_weights) == ("colorize", 1, "colorize")
    assert spec.infer_options is ColorizeOptions and ColorizeOptions().render_size is None  # the model's own
    assert spec.load_implementation() is Colorize
    assert Colorize.output_gray_for_gray_input is False and Colorize.tileable is False


def test_options_validation_and_defaults() -> None:
    assert ColorizeTrainOptions().shorter_side == 256 and tiny_options(load_size=48).shorter_side == 48
    with pytest.raises(UsageError, match="smaller than --crop"):
        tiny_options(load_size=16)


def test_missing_bundled_model_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    monkeypatch.setenv("GANTOOL_MODELS", str(tmp_path / "no-models-here"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "no-cache-here"))
    elsewhere = dataclasses.replace(gantool_colorize.MODELS, path=tmp_path)  # a package without its models
    monkeypatch.setattr(gantool_colorize, "gantool_resolve_weights", bundled_models_resolver(elsewhere))
    write_image(tmp_path / "gray.png", Image(np.full((8, 8, 1), 0.5, np.float32)))
    result = CliRunner().invoke(cli_app(), ["colorize", str(tmp_path / "gray.png"), "--device", "cpu"])
    assert result.exit_code == 1
    assert "bundled model 'colorize'" in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------------ data


def test_dataset_resizes_the_shorter_side_then_crops(tmp_path: Path) -> None:
    data = write_photos(tmp_path / "photos", count=2, size=(40, 100))
    dataset = Colorize(SPEC, tiny_options(load_size=32)).build_dataset(data)
    assert len(dataset) == 2
    item = dataset[0]["image"]
    assert item.shape == (3, 32, 32) and item.dtype == torch.float32


def test_training_pairs_are_gray_lightness_in_and_own_chroma_out() -> None:
    rgb = torch.from_numpy(photo(32, 32)).permute(2, 0, 1)[None]
    source, target = Colorize.make_pair(rgb)
    assert source.shape == (1, 1, 32, 32) and target.shape == (1, 2, 32, 32)
    assert torch.allclose(source, gray_lightness(rec601_gray(rgb)) / 50 - 1)
    assert torch.allclose(target, rgb_to_lab(rgb)[:, 1:] / 110, atol=1e-6)
    assert source.abs().max() <= 1 and target.abs().max() <= 1


def test_training_step_and_contract(tmp_path: Path) -> None:
    from gantool.testing import check_task

    task = Colorize(SPEC, tiny_options())
    networks = task.build_networks()
    runtime = Runtime(device=torch.device("cpu"))
    step = TrainStep(runtime=runtime, networks=networks, raw_networks=networks,
                     optimizers=task.build_optimizers(networks), scaler=runtime.grad_scaler())
    batch = {"image": torch.from_numpy(np.stack([photo(32, 32, s) for s in range(2)])).permute(0, 3, 1, 2)}
    losses = task.training_step(batch, step)
    assert {"d", "g", "l1"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
    with torch.no_grad():
        rows = task.visualize(batch, task.build_inference_networks())
    assert [tuple(r.shape) for r in rows] == [(2, 3, 32, 32)] * 3 and is_gray(rows[0])
    check_task(SPEC, write_photos(tmp_path / "photos"), tmp_path / "run", tiny_options(), steps=2, image_size=16)


# ------------------------------------------------------------------------------------------- inference


def test_working_size_keeps_the_aspect() -> None:
    assert working_size((512, 768), 256) == (256, 384)
    assert working_size((30, 20), 16) == (24, 16)


def test_predict_keeps_full_resolution_lightness_detail() -> None:
    task = Colorize(SPEC, tiny_options())
    networks = loaded(task)
    gray = torch.full((1, 1, 61, 83), 0.45)
    gray[0, 0, 30, 41] = 0.9  # a 1-pixel detail, far below the 16-pixel working size's resolution
    image = gray.expand(-1, 3, -1, -1)
    calls = []
    generator = networks["generator"]

    def spy(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return generator(x)

    with torch.no_grad():
        out = task.predict({"generator": spy}, image, ColorizeOptions(render_size=16))
    assert calls == [(1, 1, 16, 32)]  # 16 x 22 working size, padded to the U-Net's multiple of 16
    assert out.shape == (1, 3, 61, 83) and out.min() >= 0 and out.max() <= 1
    lightness_in, lightness_out = rgb_to_lab(image)[:, :1], rgb_to_lab(out)[:, :1]
    assert torch.allclose(lightness_out, lightness_in, atol=0.5)  # every pixel, the detail included
    assert lightness_out[0, 0, 30, 41] - lightness_out[0, 0, 30, 40] > 20


def test_default_working_size_is_the_models_training_size(tmp_path: Path) -> None:
    """Without --render-size the network sees images at the shorter side it was trained on (from the file)."""
    from gantool.engine.export import export_model, load_model

    task = Colorize(SPEC, tiny_options(load_size=48))
    model = load_model(export_model(tmp_path / "c.safetensors", task, task.build_inference_networks()), SPEC)
    calls = []
    generator = model.networks["generator"]

    def spy(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return generator(x)

    with torch.no_grad():
        model.task.predict({"generator": spy}, torch.rand(1, 3, 100, 150), ColorizeOptions())
        model.task.predict({"generator": spy}, torch.rand(1, 3, 100, 150), ColorizeOptions(render_size=32))
    assert calls == [(1, 1, 48, 80), (1, 1, 32, 48)]  # 48 x 72 and 32 x 48, padded to multiples of 16


def test_colour_input_is_recoloured_with_one_notice(caplog: pytest.LogCaptureFixture) -> None:
    task = Colorize(SPEC, tiny_options())
    networks = loaded(task)
    colour = torch.from_numpy(photo(20, 24)).permute(2, 0, 1)[None]
    with caplog.at_level(logging.WARNING, logger="gantool_colorize.task"), torch.no_grad():
        first = task.predict(networks, colour, None)
        task.predict(networks, colour, None)
        task.predict(networks, torch.full((1, 3, 20, 24), 0.5), None)
    assert len([r for r in caplog.records if "re-coloured from its lightness" in r.getMessage()]) == 1
    assert torch.allclose(rgb_to_lab(first)[:, :1], rgb_to_lab(colour)[:, :1], atol=0.5)
    with torch.no_grad():
        gray = torch.full((1, 1, 20, 24), 0.3)
        assert torch.equal(task.predict(networks, gray, None), task.predict(networks, gray.expand(-1, 3, -1, -1)))


def test_colorize_verb_keeps_alpha_and_16_bit(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    gray = photo(37, 50)[..., :1]
    alpha = np.linspace(0, 1, 37 * 50, dtype=np.float32).reshape(37, 50, 1)
    write_image(tmp_path / "in" / "old.png", Image(gray, alpha, 16))
    result = CliRunner().invoke(cli_app(), ["colorize", str(tmp_path / "in"), "--model", str(model), "-o",
                                            str(tmp_path / "out"), "--device", "cpu", "--tile", "0",
                                            "--render-size", "32"])
    assert result.exit_code == 0, result.output
    out = read_image(tmp_path / "out" / "old.png")
    assert out.color.shape == (37, 50, 3) and out.bit_depth == 16
    assert out.alpha is not None and np.allclose(out.alpha, alpha, atol=1 / 65535)


# -------------------------------------------------------------------------------------------------- eval


def evaluate(model: Path, data: Path, *, render_size: int | None = None, inception: bool = True):
    """``gantool eval colorize`` through the engine, as the CLI runs it; the EvalResult."""
    from gantool.engine.evaluation import run_evaluation
    from gantool.plugin.common import EvalOptions
    from gantool_colorize.options import ColorizeEvalOptions

    return run_evaluation(spec=SPEC, model_path=model, options=EvalOptions(data=data, device="cpu"),
                          task_options=ColorizeEvalOptions(render_size=render_size, inception=inception))


def test_eval_scores_model_and_gray_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gantool.lib import inception
    from gantool.lib.metrics import MEAN_ROW, psnr

    monkeypatch.setattr(inception, "inception_path", lambda: None)
    data, model = write_photos(tmp_path / "photos", count=2), tiny_model(tmp_path)
    result = evaluate(model, data, render_size=32)
    rows = result.rows
    assert [r.image for r in rows] == ["photo0", "photo1", MEAN_ROW]
    original = torch.from_numpy(read_image(data / "photo0.png").color).permute(2, 0, 1)[None]
    gray = rec601_gray(original).expand(-1, 3, -1, -1)
    assert rows[0].gray_psnr == pytest.approx(float(psnr(gray, original)))
    assert 0 < rows[0].gray_ssim <= 1 and 0 < rows[0].ssim <= 1
    assert rows[0].original_colorfulness > 10
    assert rows[2].psnr == pytest.approx((rows[0].psnr + rows[1].psnr) / 2)
    assert rows[0].colorfulness_ratio == pytest.approx(rows[0].colorfulness / rows[0].original_colorfulness)
    assert rows[2].colorfulness_ratio == pytest.approx((rows[0].colorfulness_ratio + rows[1].colorfulness_ratio) / 2)
    of_means = rows[2].colorfulness / rows[2].original_colorfulness
    assert list(result.notes) == [f"colourfulness: mean of per-image ratios {rows[2].colorfulness_ratio:.2f}, ratio "
                                  f"of means {of_means:.2f} ({100 * of_means:.0f}% of the originals')",
                                  inception.HOW_TO_GET]  # no Inception file: FID/KID say how to get it
    assert rows[2].fid is None and "fid" not in {c.name for c in result.columns}
    assert list(evaluate(model, data, render_size=32, inception=False).notes) == result.notes[:1]


def test_eval_adds_fid_and_kid_against_the_originals_next_to_the_gray_baseline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gantool.lib import inception

    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not really a network")
    monkeypatch.setattr(inception, "inception_path", lambda: fake)
    monkeypatch.setattr(inception, "load_inception", lambda device: None)
    monkeypatch.setattr(inception, "inception_features",  # a stand-in feature extractor: colour statistics
                        lambda images, network: torch.cat([images.flatten(2).mean(2), images.flatten(2).std(2)],
                                                          1).double().numpy())
    data = write_photos(tmp_path / "photos", count=4)
    result = evaluate(tiny_model(tmp_path), data, render_size=32)
    *images, mean = result.rows
    assert all(row.fid is None and row.gray_fid is None for row in images)
    assert mean.fid is not None and mean.gray_fid is not None and mean.kid is not None and mean.gray_kid is not None
    assert mean.gray_fid > 0 and mean.fid != mean.gray_fid
    assert {"fid", "gray_fid", "kid", "gray_kid"} <= {c.name for c in result.columns}
    assert any("FID and KID" in note for note in result.notes)


def test_eval_command_shares_the_eval_group_with_superres(tmp_path: Path) -> None:
    data = write_photos(tmp_path / "photos", count=2)
    app = cli_app()
    help_text = CliRunner().invoke(app, ["eval", "--help"]).output
    assert "colorize" in help_text and "superres" in help_text
    command_help = CliRunner().invoke(app, ["eval", "colorize", "--help"], env={"COLUMNS": "200"}).output
    assert "--render-size" in command_help and "--model" in command_help and "--scale" not in command_help
    result = CliRunner().invoke(app, ["eval", "colorize", "--data", str(data), "--model", str(tiny_model(tmp_path)),
                                      "--device", "cpu", "--render-size", "32", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["image"] for r in rows] == ["photo0", "photo1", "mean"]
    assert {"psnr", "ssim", "gray_psnr", "gray_ssim", "colorfulness", "original_colorfulness",
            "colorfulness_ratio"} <= set(rows[0])
    table = CliRunner().invoke(app, ["eval", "colorize", "--data", str(data), "--model", str(tiny_model(tmp_path)),
                                     "--device", "cpu", "--render-size", "32"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "of the originals'" in table.output
    missing = CliRunner().invoke(app, ["eval", "colorize", "--data", str(data), "--model", "no-such-model"])
    assert missing.exit_code == 1


def test_eval_without_model_scores_the_bundled_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    models.mkdir()
    tiny_model(tmp_path).rename(models / f"{gantool_colorize.DEFAULT_MODEL}.safetensors")
    monkeypatch.setenv("GANTOOL_MODELS", str(models))
    data = write_photos(tmp_path / "photos", count=1)
    result = CliRunner().invoke(cli_app(), ["eval", "colorize", "--data", str(data), "--device", "cpu",
                                            "--render-size", "32", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["psnr"] == pytest.approx(
        evaluate(models / "colorize.safetensors", data, render_size=32).rows[0].psnr)
