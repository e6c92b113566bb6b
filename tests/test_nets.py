"""Shared GAN building blocks: PatchGAN discriminator, ResNet generator and the norm helper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gantool.lib.nets.layers import InstanceNorm, count_parameters, init_weights, make_norm
from gantool.lib.nets.patchgan import PatchDiscriminator, receptive_field
from gantool.lib.nets.resnet import ResnetGenerator


def test_make_norm_kinds() -> None:
    assert isinstance(make_norm("instance", 8), InstanceNorm)
    assert isinstance(make_norm("batch", 8), nn.BatchNorm2d)
    assert isinstance(make_norm("none", 8), nn.Identity)
    with pytest.raises(ValueError, match="instance, batch, none"):
        make_norm("layer", 8)


def test_instance_norm_matches_torch_instance_norm() -> None:
    x = torch.randn(3, 8, 9, 7) * 4 + 2
    reference = nn.InstanceNorm2d(8, affine=False, track_running_stats=False)
    ours = InstanceNorm(8)
    assert torch.allclose(ours(x), reference(x), atol=1e-5)
    assert ours.state_dict() == {} and reference.state_dict() == {}
    assert torch.equal(ours.eval()(x), ours.train()(x))


def test_init_weights_follows_the_gan_recipe() -> None:
    torch.manual_seed(0)
    net = init_weights(nn.Sequential(nn.Conv2d(16, 64, 3), nn.BatchNorm2d(64)))
    assert abs(net[0].weight.std().item() - 0.02) < 0.002 and torch.all(net[0].bias == 0)
    assert abs(net[1].weight.mean().item() - 1.0) < 0.01


@pytest.mark.parametrize(("n_layers", "field"), [(1, 16), (2, 34), (3, 70), (4, 142)])
def test_receptive_field_formula(n_layers: int, field: int) -> None:
    assert receptive_field(n_layers) == field


def test_patchgan_70x70_receptive_field_measured_by_gradients() -> None:
    critic = PatchDiscriminator(3, width=4, n_layers=3, norm="none")
    image = torch.rand(1, 3, 128, 128, requires_grad=True)
    logits = critic(image)
    logits[0, 0, logits.shape[2] // 2, logits.shape[3] // 2].backward()
    rows = image.grad.abs().sum(dim=(0, 1, 3)).nonzero().flatten()
    cols = image.grad.abs().sum(dim=(0, 1, 2)).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70
    assert critic.receptive_field == 70


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_patchgan_output_shape(norm: str) -> None:
    critic = PatchDiscriminator(6, width=8, norm=norm)
    assert critic(torch.rand(2, 6, 64, 64)).shape == (2, 1, 6, 6)  # 256 -> 30, 64 -> 6
    assert critic(torch.rand(1, 6, 256, 256)).shape == (1, 1, 30, 30)


def test_patchgan_parameter_count_matches_the_paper_network() -> None:
    # The reference 70x70 PatchGAN (3 input channels, instance norm) has 2,764,737 parameters.
    assert count_parameters(PatchDiscriminator(3)) == 2_764_737


@pytest.mark.parametrize("size", [(32, 32), (30, 45), (7, 9)])
def test_resnet_generator_keeps_any_size_and_range(size: tuple[int, int]) -> None:
    generator = ResnetGenerator(3, 3, width=8, blocks=2)
    out = generator(torch.rand(2, 3, *size) * 2 - 1)
    assert out.shape == (2, 3, *size)
    assert out.min() >= -1 and out.max() <= 1


def test_resnet_generator_parameter_counts_match_the_paper_networks() -> None:
    # The reference resnet_9blocks / resnet_6blocks generators have 11,378,179 and 7,837,699 parameters.
    assert count_parameters(ResnetGenerator(blocks=9)) == 11_378_179
    assert count_parameters(ResnetGenerator(blocks=6)) == 7_837_699


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_resize_convolution_upsampling_leaves_no_checkerboard(mode: str) -> None:
    """A flat input through random weights (no norm, so nothing hides it): the transposed convolutions'
    uneven overlap makes a pattern of period 2 and 4 in the output; resize + conv keeps the inside flat."""
    flat = torch.full((1, 3, 96, 96), 0.3)

    def pattern(upsample: str) -> float:
        torch.manual_seed(0)
        generator = ResnetGenerator(width=8, blocks=1, norm="none", upsample=upsample)
        for layer in generator.modules():  # loud random weights and biases, so that a pattern would show
            if isinstance(layer, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                torch.nn.init.kaiming_normal_(layer.weight)
                torch.nn.init.normal_(layer.bias, 0.0, 0.1)
        with torch.no_grad():
            inside = generator(flat)[..., 32:-32, 32:-32]  # beyond the reach of the zero-padded borders
        return float(inside.flatten(2).std(2).mean())  # spatial spread per channel

    assert pattern("transposed") > 0.1 and pattern(mode) < 1e-5
    # Same parameters, one name per upsampling mode; the default stays the paper's transposed conv.
    assert count_parameters(ResnetGenerator(blocks=9, upsample=mode)) == 11_378_179
    assert ResnetGenerator().upsample == "transposed"
    with pytest.raises(ValueError, match="upsample must be one of"):
        ResnetGenerator(upsample="pixelshuffle")


def test_resnet_generator_returns_encoder_features_for_contrastive_losses() -> None:
    generator = ResnetGenerator(width=4, blocks=3, upsample="nearest")
    image = torch.rand(2, 3, 30, 18) * 2 - 1
    with torch.no_grad():
        plain = generator(image)
        output, features = generator(image, features=True)
        encoded = generator(image, encode_only=True)
    assert torch.equal(output, plain) and len(features) == len(encoded) == 5
    assert [f.shape[1] for f in features] == list(generator.feature_channels) == [3, 4, 8, 16, 16]
    assert all(torch.equal(a, b) for a, b in zip(features, encoded, strict=True))
    assert features[2].shape[-2:] == (16, 10) and features[-1].shape[-2:] == (8, 5)  # of the padded 32x20


def test_resnet_generator_is_the_same_in_train_and_eval_mode() -> None:
    generator = ResnetGenerator(width=8, blocks=1)
    image = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        train = generator.train()(image)
        evaluated = generator.eval()(image)
    assert torch.equal(train, evaluated)
