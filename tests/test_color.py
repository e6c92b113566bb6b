"""Lab conversions, gray detection, full-resolution chroma transfer and colourfulness (gantool.color)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gantool.lib.color import (
    AB_SCALE,
    colorfulness,
    denormalize_ab,
    denormalize_l,
    gray_lightness,
    is_gray,
    lab_to_rgb,
    normalize_ab,
    normalize_l,
    rec601_gray,
    rgb_to_lab,
    transfer_chroma,
)


def test_lab_round_trip_and_ranges() -> None:
    rgb = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    lab = rgb_to_lab(rgb)
    assert torch.allclose(lab_to_rgb(lab), rgb, atol=1e-4)
    corners = torch.tensor([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]],
                           dtype=torch.float32).T.reshape(1, 3, 8, 1)
    lab = rgb_to_lab(corners)
    assert lab[0, 0, 0].item() == pytest.approx(0.0, abs=1e-3) and lab[0, 0, 1].item() == pytest.approx(100.0, abs=1e-2)
    assert lab[0, 1:, :2].abs().max() < 1e-2  # black and white are neutral
    assert lab[0, 1:].abs().max() < AB_SCALE  # the whole sRGB gamut fits the network's tanh range


def test_normalisation_is_invertible_and_maps_to_unit_range() -> None:
    lightness = torch.tensor([0.0, 50.0, 100.0])
    assert normalize_l(lightness).tolist() == [-1.0, 0.0, 1.0]
    assert torch.allclose(denormalize_l(normalize_l(lightness)), lightness)
    ab = torch.tensor([-86.0, 0.0, 98.0])
    assert torch.allclose(denormalize_ab(normalize_ab(ab)), ab)


def test_rec601_gray_and_its_lightness() -> None:
    rgb = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    exact = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    assert torch.allclose(rec601_gray(rgb, quantize=False), exact)
    quantized = rec601_gray(rgb)
    assert torch.equal(quantized, (exact * 255).round() / 255)
    assert torch.allclose(gray_lightness(quantized), rgb_to_lab(quantized.expand(-1, 3, -1, -1))[:, :1])
    # A gray image with no chroma comes back as itself: the colouriser's "predict nothing" baseline.
    zero_ab = torch.zeros(1, 2, 8, 8)
    assert torch.allclose(transfer_chroma(zero_ab, gray_lightness(quantized)), quantized.expand(-1, 3, -1, -1),
                          atol=1e-4)


def test_gray_detection() -> None:
    gray = torch.rand(1, 1, 6, 6)
    assert is_gray(gray) and is_gray(gray[0])
    assert is_gray(gray.expand(-1, 3, -1, -1))
    jittered = gray.expand(-1, 3, -1, -1).clone()
    jittered[:, 0] += 1 / 255  # 8-bit / JPEG noise between channels
    assert is_gray(jittered)
    stamped = gray.expand(-1, 3, -1, -1).clone()
    stamped[0, :, 2, 3] = torch.tensor([1.0, 0.0, 0.0])  # one red pixel
    assert not is_gray(stamped)
    assert is_gray(np.full((4, 5, 1), 0.3, np.float32)) and is_gray(np.full((4, 5, 3), 0.3, np.float32))
    colour = np.zeros((4, 5, 3), np.float32)
    colour[..., 2] = 0.5
    assert not is_gray(colour)
    with pytest.raises(ValueError):
        is_gray(torch.rand(1, 4, 3, 3))
    with pytest.raises(ValueError):
        is_gray(np.zeros((3, 3, 2), np.float32))


def test_chroma_transfer_keeps_a_one_pixel_detail_of_the_full_resolution_lightness() -> None:
    lightness = torch.full((1, 1, 64, 80), 50.0)
    lightness[0, 0, 20, 33] = 80.0  # one bright pixel
    ab = torch.empty(1, 2, 8, 10)
    ab[:, 0], ab[:, 1] = 20.0, -15.0  # a low-resolution, bluish-pink chroma
    rgb = transfer_chroma(ab, lightness)
    assert rgb.shape == (1, 3, 64, 80)
    back = rgb_to_lab(rgb)
    assert torch.allclose(back[:, :1], lightness, atol=0.05)  # every pixel's L, the detail included
    assert torch.allclose(back[:, 1:, :, :], torch.tensor([20.0, -15.0]).view(1, 2, 1, 1).expand(1, 2, 64, 80),
                          atol=0.1)
    # Smooth chroma is interpolated, not blocky: a ramp of a stays monotonic after upsampling.
    ramp = torch.zeros(1, 2, 4, 4)
    ramp[:, 0] = torch.linspace(-20, 20, 4)
    a = rgb_to_lab(transfer_chroma(ramp, torch.full((1, 1, 32, 32), 60.0)))[0, 1, 10]
    assert (a[1:] - a[:-1] >= -1e-3).all() and len(torch.unique((a * 10).round())) > 8


def test_colorfulness_of_known_images() -> None:
    assert colorfulness(torch.rand(2, 1, 4, 4)).tolist() == [0.0, 0.0]
    gray = torch.rand(1, 1, 8, 8).expand(-1, 3, -1, -1)
    assert colorfulness(gray).item() == pytest.approx(0.0, abs=1e-9)
    # Half pure red, half pure green: rg = +-255 (std 255, mean 0), yb = 127.5 everywhere.
    image = torch.zeros(1, 3, 4, 4)
    image[0, 0, :, :2] = 1.0
    image[0, 1, :, 2:] = 1.0
    assert colorfulness(image).item() == pytest.approx(255.0 + 0.3 * 127.5)
    with pytest.raises(ValueError):
        colorfulness(torch.rand(3, 4, 4))
