"""gantool.engine.normstats: tiles of one image share the instance-norm statistics of the whole image."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gantool.engine.normstats import instance_norms, shrink_to, whole_image_norm_statistics
from gantool.engine.tiling import tiled_apply
from gantool.lib.nets.resnet import ResnetGenerator


def sky_and_ground() -> torch.Tensor:
    """(1, 3, 96, 128) in [-1, 1]: a flat 'sky' over a textured 'ground', the case per-tile norm gets wrong."""
    generator = torch.Generator().manual_seed(1)
    image = torch.empty(1, 3, 96, 128)
    image[:, :, :48] = torch.tensor([0.6, 0.7, 0.9]).view(1, 3, 1, 1)
    image[:, :, 48:] = torch.rand(1, 3, 48, 128, generator=generator) * 0.5 + 0.2
    return image * 2 - 1


@pytest.fixture
def generator() -> nn.Module:
    torch.manual_seed(0)
    return ResnetGenerator(width=8, blocks=2).eval()


def test_whole_image_statistics_bring_tiles_closer_to_the_untiled_result(generator: nn.Module) -> None:
    image = sky_and_ground()
    with torch.inference_mode():
        whole = generator(image)
        per_tile = tiled_apply(generator, image, tile=48, overlap=16)
        with whole_image_norm_statistics({"g": generator}, generator, image, max_side=128) as frozen:
            shared = tiled_apply(generator, image, tile=48, overlap=16)
    assert frozen == len(instance_norms({"g": generator})) > 0
    shared_error, per_tile_error = (shared - whole).abs().mean(), (per_tile - whole).abs().mean()
    assert shared_error < 0.75 * per_tile_error, (shared_error, per_tile_error)


def test_statistics_are_released_after_the_block_even_on_error(generator: nn.Module) -> None:
    image = sky_and_ground()
    with pytest.raises(RuntimeError, match="boom"), whole_image_norm_statistics(
            {"g": generator}, generator, image, max_side=64):
        assert all(norm.frozen_statistics is not None for norm in instance_norms({"g": generator}))
        raise RuntimeError("boom")
    assert all(norm.frozen_statistics is None for norm in instance_norms({"g": generator}))
    with torch.inference_mode():
        torch.testing.assert_close(generator(image), generator(image))  # back to per-input statistics


def test_networks_without_instance_norm_are_left_alone() -> None:
    calls = []

    def run(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.shape)
        return x

    with whole_image_norm_statistics({"conv": nn.Conv2d(3, 3, 3)}, run, torch.rand(1, 3, 40, 40), max_side=16) as n:
        assert n == 0
    assert calls == []  # no calibration pass at all


def test_calibration_copy_is_shrunk_to_fit_a_tile() -> None:
    image = torch.rand(1, 3, 300, 200)
    assert shrink_to(image, 150).shape[-2:] == (150, 100)
    assert shrink_to(image, 400) is image


def test_translate_pipeline_uses_shared_statistics_when_it_tiles(generator: nn.Module) -> None:
    from types import SimpleNamespace

    from gantool.engine.processor import make_processor
    from gantool.engine.runtime import Runtime
    from gantool.image.io import Image

    class Identity:  # the smallest task: predict runs the generator in [-1, 1]
        tileable = True

        def predict(self, networks, image, options=None):
            return (networks["g"](image * 2 - 1) + 1) / 2

    image = ((sky_and_ground() + 1) / 2)[0].permute(1, 2, 0).contiguous().numpy()
    runtime = Runtime(device=torch.device("cpu"))
    seen: list[bool] = []
    for norm in instance_norms({"g": generator}):
        norm.register_forward_pre_hook(lambda module, _: seen.append(module.frozen_statistics is not None))
    process = make_processor(Identity(), {"g": generator}, SimpleNamespace(), scale=1, tile=48, overlap=16,
                             runtime=runtime)
    process(Image(image))
    assert seen and any(seen)  # tiles ran with the whole image's statistics
    assert all(norm.frozen_statistics is None for norm in instance_norms({"g": generator}))
