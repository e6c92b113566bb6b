"""``colorize --head classification``: ab-bin logits, rebalancing estimated once, annealed-mean inference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gantool.engine.export import export_model, load_model, train_options_from_metadata
from gantool.engine.runtime import Runtime
from gantool.engine.step import TrainStep
from gantool.errors import UsageError
from gantool.image.io import Image, write_image
from gantool.lib.abbins import ABClassifier, gamut_bins
from gantool.lib.nets.unet import UNet, run_any_size
from gantool_colorize import SPEC
from gantool_colorize.options import (
    DEFAULT_PRIOR_CORRECTION,
    DEFAULT_TEMPERATURE,
    ColorizeOptions,
    ColorizeTrainOptions,
)
from gantool_colorize.task import Colorize

TINY = {"crop": 32, "width": 8, "critic_width": 8, "critic_layers": 2}


def tiny_options(**overrides: object) -> ColorizeTrainOptions:
    return ColorizeTrainOptions(**{**TINY, **overrides})  # type: ignore[arg-type]


def classifier_options(**overrides: object) -> ColorizeTrainOptions:
    return tiny_options(head="classification", **overrides)


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful (H, W, 3) image in [0, 1]."""
    coarse = torch.from_numpy(np.random.default_rng(seed).random((1, 3, 4, 4)).astype(np.float32))
    image = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return image[0].permute(1, 2, 0).numpy().copy()


def write_photos(folder: Path, count: int = 3) -> Path:
    for index in range(count):
        write_image(folder / f"photo{index}.png", Image(photo(40, 52, seed=index)))
    return folder


def train_step(task: Colorize, networks: dict[str, torch.nn.Module]) -> TrainStep:
    runtime = Runtime(device=torch.device("cpu"))
    return TrainStep(runtime=runtime, networks=networks, raw_networks=networks,
                     optimizers=task.build_optimizers(networks), scaler=runtime.grad_scaler())


def batch(count: int = 2) -> dict[str, torch.Tensor]:
    return {"image": torch.from_numpy(np.stack([photo(32, 32, s) for s in range(count)])).permute(0, 3, 1, 2)}


def test_half_resolution_logits_of_the_unet() -> None:
    net = UNet(1, 7, width=4, depth=3, half_res_logits=True)
    out = net(torch.randn(2, 1, 16, 24))
    assert out.shape == (2, 7, 8, 12) and out.abs().max() > 0  # no tanh: unbounded logits
    assert run_any_size(net, torch.randn(1, 1, 13, 21), net.multiple, downscale=2).shape == (1, 7, 7, 11)
    assert set(UNet(1, 2, width=4, depth=3).state_dict()) - set(net.state_dict()) == set()  # same parameter names


def test_classification_step_and_contract(tmp_path: Path) -> None:
    from gantool.testing import check_task

    task = Colorize(SPEC, classifier_options())
    networks = task.build_networks()
    assert isinstance(networks["generator"], ABClassifier) and "critic" in networks
    losses = task.training_step(batch(), train_step(task, networks))
    assert {"ce", "d", "g_gan", "g"} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
    assert losses["g"] > losses["ce"] > 0
    with torch.no_grad():
        rows = task.visualize(batch(), networks)
    assert [tuple(r.shape) for r in rows] == [(2, 3, 32, 32)] * 3
    without_gan = Colorize(SPEC, classifier_options(adversarial_weight=0.0))
    assert set(without_gan.build_networks()) == {"generator"}  # no critic to train
    check_task(SPEC, write_photos(tmp_path / "photos"), tmp_path / "run", classifier_options(), steps=2,
               image_size=16)


def test_rebalancing_is_estimated_once_from_the_data_and_kept(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    task = Colorize(SPEC, classifier_options(adversarial_weight=0.0, rebalance_images=2))
    task.build_dataset(write_photos(tmp_path / "photos", count=3))
    networks = task.build_networks()
    generator = networks["generator"]
    state = torch.get_rng_state()
    estimated = task.estimate_rebalancing(torch.zeros(1, 3, 8, 8))
    assert torch.equal(torch.get_rng_state(), state)  # the training's random stream is untouched
    assert torch.equal(estimated, task.estimate_rebalancing(torch.zeros(1, 3, 8, 8)))  # repeatable
    step = train_step(task, networks)
    task.training_step(batch(), step)
    assert generator.has_rebalancing and torch.equal(generator.rebalance, estimated)
    assert not torch.allclose(estimated, torch.ones_like(estimated))

    resumed = Colorize(SPEC, classifier_options(adversarial_weight=0.0))
    again = resumed.build_networks()
    again["generator"].load_state_dict(generator.state_dict())  # what a checkpoint restores
    monkeypatch.setattr(Colorize, "estimate_rebalancing", lambda self, fallback: pytest.fail("re-estimated"))
    resumed.training_step(batch(), train_step(resumed, again))
    assert torch.equal(again["generator"].rebalance, estimated)

    model = load_model(export_model(tmp_path / "c.safetensors", task, {"generator": generator}), SPEC)
    assert model.task.options.head == "classification" and "ab bins" in model.metadata["gantool.architecture"]
    assert torch.equal(model.networks["generator"].rebalance, estimated)
    assert torch.equal(model.networks["generator"].bins, gamut_bins())


def test_files_without_a_head_are_regression(tmp_path: Path) -> None:
    stored = {"gantool.train_options": json.dumps({"crop": 32, "width": 8, "critic_width": 8, "critic_layers": 2})}
    options = train_options_from_metadata(SPEC, stored)
    assert options.head == "regression" and options.temperature == DEFAULT_TEMPERATURE
    assert options.prior_correction == DEFAULT_PRIOR_CORRECTION  # files from before the option get the default
    assert isinstance(Colorize(SPEC, options).build_inference_networks()["generator"], UNet)


def test_inference_temperature_defaults_to_the_models(tmp_path: Path) -> None:
    task = Colorize(SPEC, classifier_options(temperature=0.5))
    networks = task.build_inference_networks()
    with torch.no_grad():  # a generator with confident, varied logits, so the temperature matters
        torch.nn.init.normal_(networks["generator"].network.up[-1][1].weight, std=3.0)
    model = load_model(export_model(tmp_path / "c.safetensors", task, networks), SPEC)
    assert model.task.options.temperature == 0.5
    image = torch.rand(1, 3, 29, 41, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        default = model.task.predict(model.networks, image, ColorizeOptions(render_size=32))
        same = model.task.predict(model.networks, image, ColorizeOptions(render_size=32, temperature=0.5))
        mean = model.task.predict(model.networks, image, ColorizeOptions(render_size=32, temperature=1.0))
        vivid = model.task.predict(model.networks, image, ColorizeOptions(render_size=32, temperature=0.1))
    assert default.shape == (1, 3, 29, 41) and torch.equal(default, same)

    def chroma(rgb: torch.Tensor) -> float:
        return float((rgb.amax(1) - rgb.amin(1)).mean())

    assert chroma(vivid) > chroma(default) > chroma(mean)


def test_prior_correction_defaults_to_the_models_and_mutes_boosted_colour(tmp_path: Path) -> None:
    task = Colorize(SPEC, classifier_options(prior_correction=0.3))
    networks = task.build_inference_networks()
    head = networks["generator"]
    with torch.no_grad():
        torch.nn.init.normal_(head.network.up[-1][1].weight, std=3.0)
    head.set_rebalancing(1.0 + head.bins.norm(dim=1) / 10.0)  # saturated bins boosted, as rebalancing does
    model = load_model(export_model(tmp_path / "c.safetensors", task, networks), SPEC)
    assert model.task.options.prior_correction == 0.3
    image = torch.rand(1, 3, 29, 41, generator=torch.Generator().manual_seed(2))

    def run(correction: float | None) -> torch.Tensor:
        with torch.no_grad():
            return model.task.predict(model.networks, image, ColorizeOptions(render_size=32,
                                                                             prior_correction=correction))

    def chroma(rgb: torch.Tensor) -> float:
        return float((rgb.amax(1) - rgb.amin(1)).mean())

    assert torch.equal(run(None), run(0.3))
    assert chroma(run(0.0)) > chroma(run(0.3)) > chroma(run(1.0))
    with pytest.raises(UsageError, match="--prior-correction must be in"):
        classifier_options(prior_correction=1.5)
