"""The ``superres`` plugin: card, networks, MATLAB-style imresize, metrics, training steps, inference, eval.

Everything runs on tiny synthetic images on the CPU; the check against real benchmark files (which live
outside the repository) is ``benchmarks/check_imresize.py``.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from gantool.engine.runtime import Runtime
from gantool.engine.step import TrainStep
from gantool.errors import InputError, UsageError
from gantool.image.io import Image, write_image
from gantool_superres import SPEC
from gantool_superres.metrics import psnr_from_mse, psnr_y, rgb_to_y, ssim_y, to_8bit
from gantool_superres.networks import BicubicPhases, VGGFeatures, build_critic, build_generator, count_parameters
from gantool_superres.options import SuperResTrainOptions, UpscaleOptions
from gantool_superres.resize import contributions, imresize
from gantool_superres.task import HRCrops, SuperResolution, degrade

TINY = {"width": 8, "blocks": 1, "critic_width": 8, "crop": 32}


def tiny_options(**overrides: object) -> SuperResTrainOptions:
    return SuperResTrainOptions(**{**TINY, **overrides})  # type: ignore[arg-type]


def smooth_batch(batch: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth random images (noise upsampled), more image-like than white noise."""
    coarse = torch.rand(batch, 3, size // 4, size // 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def make_step(task: SuperResolution, networks: dict[str, torch.nn.Module]) -> TrainStep:
    runtime = Runtime(device=torch.device("cpu"))
    return TrainStep(runtime=runtime, networks=networks, raw_networks=networks,
                     optimizers=task.build_optimizers(networks), scaler=runtime.grad_scaler())


def write_images(folder: Path, count: int = 3, size: tuple[int, int] = (40, 44)) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        coarse = rng.random((size[0] // 4 + 1, size[1] // 4 + 1, 3)).astype(np.float32)
        pixels = np.kron(coarse, np.ones((4, 4, 1), np.float32))[: size[0], : size[1]]
        write_image(folder / f"img{i}.png", Image(pixels))
    return folder


# ------------------------------------------------------------------------------------------------ card


def test_card_registered_through_entry_point() -> None:
    from gantool.plugin.manager import build_plugin_system

    system = build_plugin_system()
    spec = system.registry.get("superres")
    assert system.registry.owner("superres") == "superres"
    assert (spec.verb, spec.scale, spec.default_weights) == ("upscale", 4, "superres-x{scale}")
    assert spec.default_weights_for(spec.infer_options()) == "superres-x4"
    assert spec.infer_options is UpscaleOptions and spec.train_options is SuperResTrainOptions
    assert spec.load_implementation() is SuperResolution


def test_card_import_does_not_import_torch() -> None:
    code = "import sys, gantool_superres; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_options_are_validated_all_at_once() -> None:
    with pytest.raises(UsageError, match="scale must be 2, 3 or 4.*--pretrained is for --stage gan"):
        SuperResTrainOptions(scale=5, pretrained="x.safetensors")
    options = SuperResTrainOptions(scale=3, crop=128)
    assert options.hr_crop == 126 and options.body_blocks == 12 and options.learning_rate == 2e-4
    assert SuperResTrainOptions(stage="gan", arch="rrdb").body_blocks == 23


# -------------------------------------------------------------------------------------------- networks


@pytest.mark.parametrize("arch", ["compact", "srresnet", "rrdb"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_generator_scales_any_size(arch: str, scale: int) -> None:
    generator = build_generator(arch, scale=scale, width=8, blocks=1)
    with torch.no_grad():
        out = generator(torch.rand(2, 3, 7, 9))
    assert out.shape == (2, 3, 7 * scale, 9 * scale)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_in_phase_form_matches_torch_bicubic(scale: int) -> None:
    """The compact net's skip is a grouped conv + shuffle; it must be torch's bicubic, borders included."""
    image = torch.rand(2, 3, 11, 16)
    expected = torch.nn.functional.interpolate(image, scale_factor=scale, mode="bicubic", align_corners=False)
    actual = torch.nn.functional.pixel_shuffle(BicubicPhases(scale)(image), scale)
    torch.testing.assert_close(actual, expected, atol=2e-6, rtol=0)
    assert "weight" not in BicubicPhases(scale).state_dict()  # fixed, so not part of model files


def test_default_compact_generator_is_small() -> None:
    assert 300_000 < count_parameters(build_generator("compact", scale=4, width=64, blocks=12)) < 1_000_000


@pytest.mark.parametrize("size", [32, 48, 64])
def test_critic_is_fully_convolutional(size: int) -> None:
    critic = build_critic(SuperResTrainOptions(critic_width=8))
    logits, features = critic(torch.rand(2, 3, size, size), return_features=True)
    assert logits.shape == (2, 1, size // 8, size // 8)
    assert len(features) == 4 and torch.isfinite(logits).all()
    assert critic.min_size == 8 and critic.receptive_field == 68


def test_critic_is_spectrally_normalised_after_its_stem_by_default() -> None:
    """Real-ESRGAN's choice, kept from superres's own critic: every conv but the first is normalised."""
    convs = [m for m in build_critic(SuperResTrainOptions()).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [hasattr(c, "parametrizations") for c in convs] == [False] + [True] * (len(convs) - 1)
    plain = build_critic(SuperResTrainOptions(spectral_norm=False))
    assert not any(hasattr(m, "parametrizations") for m in plain.modules())


# --------------------------------------------------------------------------------------------- imresize


def test_imresize_keeps_a_constant_image_constant() -> None:
    image = torch.full((1, 3, 24, 20), 0.375, dtype=torch.float64)
    for kwargs in ({"scale": 0.25}, {"scale": 3.0}, {"size": (13, 17)}, {"scale": 0.5, "padding": "symmetric"}):
        out = imresize(image, **kwargs)  # type: ignore[arg-type]
        assert torch.allclose(out, torch.full_like(out, 0.375), atol=1e-12), kwargs


def test_imresize_output_sizes() -> None:
    image = torch.rand(2, 3, 30, 21)
    assert imresize(image, 0.25).shape == (2, 3, 8, 6)  # ceil, like MATLAB
    assert imresize(image, 1 / 3).shape == (2, 3, 10, 7)  # no float noise: 30 * (1/3) is 10, not 11
    assert imresize(image, 2.0).shape == (2, 3, 60, 42)
    assert imresize(image, size=(11, 50)).shape == (2, 3, 11, 50)
    assert imresize(torch.rand(5, 9), 2.0).shape == (10, 18)  # any leading dims


@pytest.mark.parametrize("factor", [2, 4])
def test_imresize_downscales_a_linear_ramp_to_the_ramp_at_pixel_centres(factor: int) -> None:
    width = 64
    ramp = torch.arange(width, dtype=torch.float64).expand(1, 1, 8, width)
    out = imresize(ramp, 1 / factor)[0, 0, 0]
    # Output pixel x (0-based) is centred on input position factor * (x + 0.5) - 0.5.
    expected = factor * (torch.arange(width // factor, dtype=torch.float64) + 0.5) - 0.5
    interior = slice(3, -3)  # away from the clamped edges
    assert torch.allclose(out[interior], expected[interior], atol=1e-9)


def test_imresize_matches_a_hand_computed_case() -> None:
    # Upscaling [0, 1, 2, 3] x2: output 1 samples input position 0.75 (1-based), taps -1..2 with cubic weights
    # -0.0234375, 0.2265625, 0.8671875, -0.0703125; edges replicate, so taps -1, 0, 1 all read x[0].
    row = torch.tensor([[0.0, 1.0, 2.0, 3.0]], dtype=torch.float64)
    out = imresize(row, size=(1, 8))[0]
    assert out[0].item() == pytest.approx(-0.0703125, abs=1e-12)
    assert out[1].item() == pytest.approx(0.2265625 - 2 * 0.0234375, abs=1e-12)
    assert out[3:5].tolist() == pytest.approx([1.25, 1.75], abs=1e-12)  # a linear ramp is exact away from edges
    mirrored = imresize(row, size=(1, 8), padding="symmetric")[0]
    assert mirrored[0].item() == pytest.approx(-0.09375, abs=1e-12)  # tap -1 mirrors to x[1]


def test_imresize_weights_and_errors() -> None:
    indices, weights = contributions(16, 4, 0.25)
    assert torch.allclose(weights.sum(1), torch.ones(4, dtype=torch.float64))
    assert indices.min() >= 0 and indices.max() <= 15
    quantized = imresize(torch.rand(1, 3, 16, 16), 0.5, quantize=255)
    assert torch.equal(quantized, (quantized * 255).round() / 255)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="floating-point"):
        imresize(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 0.5)


# ---------------------------------------------------------------------------------------------- metrics


def test_identical_images_have_infinite_psnr_and_ssim_one() -> None:
    image = smooth_batch(2, 32)
    assert torch.isinf(psnr_y(image, image, border=4)).all()
    assert torch.allclose(ssim_y(image, image, border=4), torch.ones(2, dtype=torch.float64))


def test_known_noise_gives_known_psnr() -> None:
    base = torch.full((1, 3, 24, 24), 0.5)
    delta = 4 / 255
    signs = torch.ones(24, 24)
    signs[::2, 1::2] = -1
    signs[1::2, ::2] = -1  # checkerboard of +-delta in every channel
    noisy = base + delta * signs
    y_step = (65.481 + 128.553 + 24.966) * delta  # Y moves by 219 * delta for an equal step in R, G, B
    assert psnr_y(noisy, base).item() == pytest.approx(psnr_from_mse(y_step**2), abs=1e-4)
    assert psnr_from_mse(y_step**2) == pytest.approx(20 * math.log10(255 / y_step))


def test_border_is_cropped_and_y_range() -> None:
    target = torch.full((1, 3, 20, 20), 0.25)
    prediction = target.clone()
    prediction[..., :2, :] = 1.0  # damage only the top 2 rows
    assert math.isfinite(psnr_y(prediction, target, border=1).item())
    assert math.isinf(psnr_y(prediction, target, border=2).item())
    assert rgb_to_y(torch.zeros(1, 3, 2, 2)).max().item() == pytest.approx(16.0)
    assert rgb_to_y(torch.ones(1, 3, 2, 2)).max().item() == pytest.approx(235.0)


def test_ssim_of_flat_images_follows_the_luminance_term() -> None:
    a, b = torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.6)
    mu_a, mu_b = 16 + 219 * 0.2, 16 + 219 * 0.6
    c1 = (0.01 * 255) ** 2
    expected = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)  # zero variances: contrast term is 1
    assert ssim_y(a, b).item() == pytest.approx(expected, rel=1e-6)  # 0.2 and 0.6 are float32
    assert to_8bit(torch.tensor([0.5, 1.2, -0.1])).tolist() == pytest.approx([128 / 255, 1.0, 0.0])


# ------------------------------------------------------------------------------------------ data, steps


def test_degradations_make_lr_of_the_right_size() -> None:
    hr = smooth_batch(3, 48)
    assert torch.equal(degrade(hr, 4, "bicubic"), imresize(hr, 0.25).clamp(0, 1))
    first = degrade(hr, 3, "realistic", generator=torch.Generator().manual_seed(1))
    again = degrade(hr, 3, "realistic", generator=torch.Generator().manual_seed(1))
    assert first.shape == (3, 3, 16, 16) and torch.equal(first, again)
    assert first.min() >= 0 and first.max() <= 1


def test_dataset_yields_hr_crops_rounded_to_the_scale(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = write_images(tmp_path / "data")  # 40 x 44 pixels
    task = SuperResolution(SPEC, tiny_options(scale=3, crop=32))
    with caplog.at_level(logging.WARNING, logger="gantool_superres.task"):
        dataset = task.build_dataset(data)
    assert not caplog.records
    assert isinstance(dataset, HRCrops) and len(dataset) == 3
    item = dataset[0]
    assert item["hr"].shape == (3, 30, 30) and item["hr"].dtype == torch.float32
    with caplog.at_level(logging.WARNING, logger="gantool_superres.task"):
        SuperResolution(SPEC, tiny_options(crop=64)).build_dataset(data)
    assert "3 of 3 training images checked are smaller than the 64-pixel crop" in caplog.text


def _changed(before: dict[str, torch.Tensor], network: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in network.state_dict().items())


def test_pretrain_step_trains_the_generator_on_l1() -> None:
    task = SuperResolution(SPEC, tiny_options())
    networks = task.build_networks()
    assert set(networks) == {"generator"}
    before = {k: v.clone() for k, v in networks["generator"].state_dict().items()}
    losses = task.training_step({"hr": smooth_batch(2, 32)}, make_step(task, networks))
    assert set(losses) == {"l1"} and torch.isfinite(losses["l1"])
    assert _changed(before, networks["generator"])


def test_gan_step_with_feature_matching_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    task = SuperResolution(SPEC, tiny_options(stage="gan", scale=2))
    with caplog.at_level(logging.WARNING, logger="gantool_superres.task"):
        networks = task.build_networks()
    assert len([r for r in caplog.records if "feature matching" in r.getMessage()]) == 1
    before = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in networks.items()}
    losses = task.training_step({"hr": smooth_batch(2, 32)}, make_step(task, networks))
    assert {"d", "g", "l1", "adv", "fm"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    assert _changed(before["generator"], networks["generator"]) and _changed(before["critic"], networks["critic"])


def test_relativistic_gan_step_with_vgg_perceptual_loss(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    vgg = VGGFeatures()
    weights = tmp_path / "vgg19.safetensors"
    save_file({f"features.{k}": v.contiguous() for k, v in vgg.features.state_dict().items()}, str(weights))
    task = SuperResolution(SPEC, tiny_options(stage="gan", gan_loss="relativistic", vgg_weights=str(weights),
                                              degradation="realistic"))
    networks = task.build_networks()
    losses = task.training_step({"hr": smooth_batch(2, 32)}, make_step(task, networks))
    assert "vgg" in losses and all(torch.isfinite(v) for v in losses.values())


def test_bad_vgg_file_is_reported(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from gantool.errors import CheckpointError

    path = tmp_path / "not_vgg.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a torchvision VGG19"):
        SuperResolution(SPEC, tiny_options(stage="gan", vgg_weights=str(path))).build_networks()


def test_gan_stage_starts_from_a_pretrained_model(tmp_path: Path) -> None:
    from gantool.engine.export import export_model

    pretrain = SuperResolution(SPEC, tiny_options(scale=2))
    generator = pretrain.build_networks()["generator"]
    path = export_model(tmp_path / "pre.safetensors", pretrain, {"generator": generator})
    gan = SuperResolution(SPEC, tiny_options(scale=2, stage="gan", pretrained=str(path)))
    loaded = gan.build_networks()["generator"]
    assert all(torch.equal(a, b) for a, b in zip(generator.state_dict().values(), loaded.state_dict().values(),
                                                    strict=True))
    with pytest.raises(UsageError, match="compact x2, 1 blocks, width 8 generator.*compact x4"):
        SuperResolution(SPEC, tiny_options(scale=4, stage="gan", pretrained=str(path))).build_networks()


# ------------------------------------------------------------------------------------ inference, export


def test_predict_is_tileable_and_outscale_resizes_the_whole_result() -> None:
    task = SuperResolution(SPEC, tiny_options())
    networks = task.build_inference_networks()
    assert set(networks) == {"generator"}
    image = smooth_batch(1, 12)[..., :10]
    with torch.no_grad():
        out = task.predict(networks, image, UpscaleOptions(outscale=3.5))
        assert out.shape == (1, 3, 48, 40) and out.min() >= 0 and out.max() <= 1
        resized = task.upscale(networks, image, UpscaleOptions(outscale=3.5))
        assert resized.shape == (1, 3, 42, 35)
        assert task.upscale(networks, image, UpscaleOptions()).shape == (1, 3, 48, 40)
        assert task.predict(networks, image[:, :1], None).shape == (1, 1, 48, 40)


def test_visualize_rows_and_export_metadata() -> None:
    task = SuperResolution(SPEC, tiny_options(scale=3, degradation="realistic"))
    networks = task.build_inference_networks()
    hr = smooth_batch(2, 30)
    with torch.no_grad():
        rows = task.visualize({"hr": hr}, networks)
        assert all(torch.equal(a, b) for a, b in zip(rows, task.visualize({"hr": hr}, networks), strict=True))
    assert [tuple(r.shape) for r in rows] == [(2, 3, 30, 30)] * 3
    metadata = task.export_metadata()
    assert metadata["gantool.architecture"] == "compact x3, 1 blocks, width 8"
    assert task.scale == 3 and SPEC.scale == 4  # export writes gantool.scale from task.scale


# ------------------------------------------------------------------------------------ end to end, eval


def evaluate(model: Path | None, bench: Path, scale: int | None = None, **options: object) -> list:
    """``gantool eval superres`` through the engine, as the CLI runs it; the rows."""
    from gantool.engine.evaluation import run_evaluation
    from gantool.plugin.common import EvalOptions
    from gantool_superres.options import SuperResEvalOptions

    return list(run_evaluation(spec=SPEC, model_path=model, options=EvalOptions(data=bench, device="cpu"),
                               task_options=SuperResEvalOptions(scale=scale, **options)).rows)


def test_train_export_reload_and_evaluate(tmp_path: Path) -> None:
    from gantool.engine.training import Trainer
    from gantool.testing import tiny_training_options

    data = write_images(tmp_path / "train")
    options = tiny_training_options(tmp_path / "run", data, steps=2, checkpoint_every=2)
    result = Trainer(SPEC, options, tiny_options(scale=2), progress=False).fit()
    assert result.exported is not None
    bench = tmp_path / "bench"
    write_images(bench / "HR", count=2, size=(33, 36))
    rows = evaluate(result.exported, bench)  # scale taken from the model file
    assert [r.image for r in rows] == ["img0", "img1", "mean"]
    assert all(r.model_psnr is not None and r.model_psnr > 10 for r in rows)
    assert evaluate(result.exported, bench, tile=17)[0].model_psnr == pytest.approx(rows[0].model_psnr, abs=0.01)
    with pytest.raises(UsageError, match="upscales x2"):
        evaluate(result.exported, bench, 4)


def test_evaluate_uses_stored_lr_files_and_checks_their_size(tmp_path: Path) -> None:
    from gantool.plugin.evaluation import EvalContext
    from gantool_superres.options import SuperResEvalOptions

    bench = tmp_path / "bench"
    write_images(bench / "HR", count=1, size=(32, 32))
    generator = build_generator("compact", scale=4, width=8, blocks=1).eval()
    task, context = SuperResolution(SPEC, tiny_options(scale=4)), EvalContext(device=torch.device("cpu"))

    def scores() -> list:
        return list(task.evaluate({"generator": generator}, bench, SuperResEvalOptions(scale=4), context).rows)

    first = scores()
    write_images(bench / "LR_bicubic" / "X4", count=1, size=(8, 8))  # right size, other pixels
    second = scores()
    assert first[0].bicubic_psnr != second[0].bicubic_psnr
    assert first[0].model_psnr is not None and second[0].model_psnr != first[0].model_psnr
    write_images(bench / "LR_bicubic" / "X4", count=1, size=(9, 8))
    with pytest.raises(InputError, match="expected \\(8, 8\\)"):
        evaluate(None, bench, 4)


def test_eval_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gantool.cli.app import build_app
    from gantool.plugin.manager import build_plugin_system

    bench = tmp_path / "bench"
    write_images(bench / "HR", count=2, size=(24, 24))
    app = build_app(build_plugin_system())
    result = CliRunner().invoke(app, ["eval", "superres", "--data", str(bench), "--scale", "2", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["image"] for r in rows] == ["img0", "img1", "mean"] and rows[0]["model_psnr"] is None
    assert rows[0]["bicubic_psnr"] == pytest.approx(evaluate(None, bench, 2)[0].bicubic_psnr)
    table = CliRunner().invoke(app, ["eval", "superres", "--data", str(bench), "--scale", "2"],
                               env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "bicubic PSNR" in table.output and "model PSNR" not in table.output
    missing = CliRunner().invoke(app, ["eval", "superres", "--data", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
    for bad in (["--scale", "5"], ["--tile", "8"]):
        refused = CliRunner().invoke(app, ["eval", "superres", "--data", str(bench), *bad])
        assert refused.exit_code == 2 and bad[0] in refused.output


def test_train_options_shape_the_cli() -> None:
    from typer.testing import CliRunner

    from gantool.cli.app import build_app
    from gantool.plugin.manager import build_plugin_system

    app = build_app(build_plugin_system())
    result = CliRunner().invoke(app, ["train", "superres", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for flag in ("--arch", "--stage", "--pretrained", "--gan-loss", "--vgg-weights", "--degradation"):
        assert flag in result.output
    assert replace(tiny_options(), arch="rrdb").describe_architecture() == "rrdb x4, 1 blocks, width 8"
