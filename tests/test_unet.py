"""The pix2pix U-Net: depth from the crop, shapes, any-size inference, dropout and norms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gantool.lib.conditional import ConditionalGANOptions
from gantool.lib.nets.layers import count_parameters
from gantool.lib.nets.unet import MAX_DEPTH, UNet, depth_for_crop, dropout_active, run_any_size


@pytest.mark.parametrize(("crop", "depth"), [(8, 2), (32, 4), (128, 6), (256, 7), (512, 8), (2048, 8), (100, 5)])
def test_depth_from_crop(crop: int, depth: int) -> None:
    assert depth_for_crop(crop) == depth


def test_options_derive_the_same_depth_without_torch() -> None:
    # ConditionalGANOptions repeats the formula so that option parsing stays torch-free; keep them equal.
    for crop in (8, 16, 24, 32, 64, 96, 128, 256, 512, 1024, 4096):
        options = ConditionalGANOptions.__new__(ConditionalGANOptions)
        options.crop, options.depth = crop, None
        assert options.unet_depth == depth_for_crop(crop), crop


def test_shapes_and_range() -> None:
    net = UNet(3, 3, width=4, depth=3).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 16, 24) * 2 - 1)
    assert out.shape == (2, 3, 16, 24) and out.abs().max() <= 1
    colour = UNet(1, 2, width=4, depth=4)
    assert colour(torch.zeros(1, 1, 32, 16)).shape == (1, 2, 32, 16)


def test_paper_configuration_has_the_published_size() -> None:
    # pix2pix's unet_256 with batch norm is reported as 54.414 M parameters.
    assert abs(count_parameters(UNet(3, 3, width=64, depth=8, norm="batch")) - 54.414e6) < 1e3


def test_sizes_that_are_not_multiples_are_padded_and_cropped() -> None:
    net = UNet(3, 3, width=4, depth=3).eval()
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.rand(1, 3, 17, 23))
    with torch.no_grad():
        image = torch.rand(1, 3, 17, 23)
        out = net.forward_any_size(image)
        assert out.shape == (1, 3, 17, 23)
        padded = torch.nn.functional.pad(image, (0, 1, 0, 7), mode="reflect")
        assert torch.equal(out, net(padded)[..., :17, :23])
        assert net.forward_any_size(torch.rand(1, 3, 5, 3)).shape == (1, 3, 5, 3)  # replicate: pad > side
        assert run_any_size(net, torch.rand(1, 3, 16, 8), 8).shape == (1, 3, 16, 8)


@pytest.mark.parametrize(("depth", "expected"), [(2, 0), (3, 1), (4, 2), (7, 3), (8, 3)])
def test_dropout_sits_in_the_decoder_blocks_next_to_the_bottleneck(depth: int, expected: int) -> None:
    net = UNet(3, 3, width=2, depth=depth)
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == expected
    assert not any(isinstance(m, nn.Dropout) for m in UNet(3, 3, width=2, depth=depth, dropout=0).modules())


def test_eval_is_deterministic_and_dropout_can_be_switched_on() -> None:
    torch.manual_seed(0)
    net = UNet(3, 3, width=4, depth=4).eval()
    image = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        first, second = net(image), net(image)
        assert torch.equal(first, second)
        with dropout_active(net):
            assert all(m.training for m in net.modules() if isinstance(m, nn.Dropout))
            torch.manual_seed(1)
            noisy = net(image)
            torch.manual_seed(1)
            again = net(image)
    assert torch.equal(noisy, again) and not torch.equal(noisy, first)
    assert not any(m.training for m in net.modules())


def test_batch_norm_variant_uses_running_statistics_in_eval() -> None:
    net = UNet(3, 3, width=4, depth=3, norm="batch")
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    net.train()(torch.rand(4, 3, 16, 16))
    net.eval()
    with torch.no_grad():
        single = net(torch.rand(1, 3, 16, 16))  # batch of one works in eval
    assert torch.isfinite(single).all()


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="depth"):
        UNet(depth=MAX_DEPTH + 1)
    with pytest.raises(ValueError, match="dropout"):
        UNet(depth=3, dropout=1.0)
    with pytest.raises(ValueError, match="crop"):
        depth_for_crop(2)
