"""The one PatchGAN critic: its real minimum input size, spectral norm, feature outputs, layouts and geometry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gantool.lib.nets.geometry import ConvShape, min_input_side, output_side, patch_convs, patch_min_side
from gantool.lib.nets.layers import fold_spectral_norm, with_spectral_norm
from gantool.lib.nets.patchgan import PatchDiscriminator, receptive_field
from gantool.lib.options import CriticOptions

CASES = [("nlayer", 1, 6), ("nlayer", 2, 12), ("nlayer", 3, 24), ("nlayer", 4, 48),
         ("vgg", 1, 2), ("vgg", 2, 4), ("vgg", 3, 8)]


@pytest.mark.parametrize(("layout", "n_layers", "smallest"), CASES)
def test_minimum_input_size_is_exact(layout: str, n_layers: int, smallest: int) -> None:
    """The smallest accepted side gives a logit map; one pixel less would break the layers themselves."""
    critic = PatchDiscriminator(3, width=4, n_layers=n_layers, norm="none", layout=layout)
    assert critic.min_size == smallest == patch_min_side(n_layers, layout)
    assert critic(torch.rand(1, 3, smallest, smallest)).shape[-2:] == (1, 1)
    with pytest.raises(RuntimeError):  # not a conservative bound: the unchecked layers fail below it
        critic.model(torch.rand(1, 3, smallest - 1, smallest - 1))
    with pytest.raises(ValueError) as raised:
        critic(torch.rand(1, 3, smallest, smallest - 1))
    message = str(raised.value)
    assert f"at least {smallest}x{smallest} pixels, got {smallest}x{smallest - 1}" in message and "\n" not in message


def test_default_critic_needs_24_pixels_not_16() -> None:
    """The old docstring said ``2**n_layers * 2`` (16 at 3 layers); 16 leaves an empty map."""
    critic = PatchDiscriminator(3, width=4)
    assert critic.min_size == 24 and output_side(patch_convs(3), 16) <= 0
    with pytest.raises(ValueError, match="got 16x16"):
        critic(torch.rand(1, 3, 16, 16))


@pytest.mark.parametrize("side", [24, 37, 64, 100])
@pytest.mark.parametrize("layout", ["nlayer", "vgg"])
def test_geometry_predicts_the_real_output_size(layout: str, side: int) -> None:
    critic = PatchDiscriminator(3, width=4, n_layers=3, norm="none", layout=layout)
    assert critic(torch.rand(1, 3, side, side)).shape[-1] == output_side(patch_convs(3, layout), side)


def test_receptive_fields_of_both_layouts() -> None:
    assert receptive_field(3) == 70 and receptive_field(3, "vgg") == 68
    assert PatchDiscriminator(3, 4, 3, layout="vgg").receptive_field == 68


def test_min_input_side_walks_back_through_any_convs() -> None:
    assert min_input_side([ConvShape(3, 1, 0)]) == 3
    assert min_input_side([ConvShape(3, 1, 1)] * 4) == 1
    assert min_input_side([ConvShape(4, 2, 1), ConvShape(7, 1, 0)]) == 14


def _largest_singular_value(weight: torch.Tensor) -> float:
    return torch.linalg.matrix_norm(weight.detach().reshape(weight.shape[0], -1), ord=2).item()


def test_spectral_norm_constrains_the_largest_singular_value() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3)
    nn.init.normal_(conv.weight, 0.0, 1.0)
    assert _largest_singular_value(conv.weight) > 5
    conv = with_spectral_norm(conv)
    for _ in range(5):  # each training forward runs one power iteration
        conv(torch.rand(2, 8, 6, 6))
    assert _largest_singular_value(conv.weight) == pytest.approx(1.0, abs=1e-3)
    assert "parametrizations.weight.original" in conv.state_dict()
    assert with_spectral_norm(nn.Conv2d(2, 2, 1), enabled=False).state_dict().keys() == {"weight", "bias"}


@pytest.mark.parametrize("layout", ["nlayer", "vgg"])
def test_spectral_norm_option_normalises_the_critic(layout: str) -> None:
    torch.manual_seed(0)
    critic = PatchDiscriminator(3, width=8, n_layers=2, layout=layout, spectral_norm=True, norm="none")
    for _ in range(20):  # one power iteration per training forward; wide layers converge more slowly
        critic(torch.rand(2, 3, 32, 32))
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    normalised = [c for c in convs if hasattr(c, "parametrizations")]
    assert len(normalised) == (len(convs) if layout == "nlayer" else len(convs) - 1)  # vgg: stem stays free
    for conv in normalised:
        assert _largest_singular_value(conv.weight) == pytest.approx(1.0, abs=1e-2)


def test_init_reaches_spectrally_normalised_weights() -> None:
    torch.manual_seed(0)
    critic = PatchDiscriminator(3, width=16, n_layers=2, spectral_norm=True)
    original = critic.model[2].parametrizations.weight.original
    assert abs(original.std().item() - 0.02) < 0.004


def test_fold_spectral_norm_keeps_the_function_and_plain_keys() -> None:
    torch.manual_seed(0)
    critic = PatchDiscriminator(3, width=8, n_layers=2, spectral_norm=True).eval()
    image = torch.rand(1, 3, 32, 32)
    before = critic(image)
    fold_spectral_norm(critic)
    assert not any("parametrizations" in key for key in critic.state_dict())
    torch.testing.assert_close(critic(image), before)


@pytest.mark.parametrize("layout", ["nlayer", "vgg"])
def test_feature_outputs(layout: str) -> None:
    torch.manual_seed(0)
    critic = PatchDiscriminator(3, width=4, n_layers=3, layout=layout)
    image = torch.rand(2, 3, 64, 64, requires_grad=True)
    logits, features = critic(image, return_features=True)
    torch.testing.assert_close(logits, critic(image))
    assert [f.shape[1] for f in features] == [4, 8, 16, 32]
    sides = [32, 16, 8, 7] if layout == "nlayer" else [64, 32, 16, 8]
    assert [f.shape[-1] for f in features] == sides and all(f.shape[0] == 2 for f in features)
    sum(f.mean() for f in features).backward()  # feature matching needs gradients through them
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_from_options_builds_what_the_options_say() -> None:
    options = CriticOptions(critic_width=8, critic_layers=2, spectral_norm=True)
    critic = PatchDiscriminator.from_options(options, 6, norm="batch")
    assert critic.n_layers == 2 and critic.model[0].in_channels == 6 and critic.model[0].out_channels == 8
    assert any(hasattr(m, "parametrizations") for m in critic.modules())
    assert isinstance(critic.model[3], nn.BatchNorm2d)
    assert options.critic_size_problems(12) == [] and "at least 12" in options.critic_size_problems(11)[0]
    assert "at least 4" in options.critic_size_problems(3, "vgg")[0]


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="nlayer, vgg"):
        PatchDiscriminator(3, layout="unet")  # type: ignore[arg-type]
