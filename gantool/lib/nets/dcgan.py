"""Small generation networks: a DCGAN generator and critic, and a LapGAN level generator.

All work in [-1, 1] (``gantool.lib.ranges`` converts), take an optional class label (``classes > 0``:
a one-hot appended to the noise or as constant planes; the critic uses a projection term, Miyato and
Koyama 2018), and can carry SAGAN self-attention blocks (:class:`~gantool.lib.nets.attention.SelfAttention2d`)
after the layers whose feature maps have a side listed in ``attention``, and spectral norm on every
weight layer. Widths follow DCGAN: ``width`` channels at half the image side, doubling per halving up
to ``8 * width``.

- :class:`DCGANGenerator`: noise (+ label) -> linear 4x4 map -> 4x4 stride-2 transposed convs (batch norm,
  ReLU) -> tanh image of ``size``.
- :class:`DCGANCritic`: image (``in_channels``, e.g. 6 for a LapGAN level that also sees its coarse
  condition) -> 4x4 stride-2 convs (leaky ReLU, no norm) down to 4x4 -> one logit per image.
- :class:`LevelGenerator`: a LapGAN level: upsampled coarse image + one noise plane (+ label planes) ->
  the band-pass residual, through a small U-shaped net (full side and half side features).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantool.lib.nets.attention import SelfAttention2d
from gantool.lib.nets.layers import init_weights, with_spectral_norm


def dcgan_channels(size: int, side: int, width: int) -> int:
    """Channels of the feature map of side ``side`` in a ``size`` network: ``width`` at ``size / 2``, doubling
    per halving, at most ``8 * width``."""
    return width * max(1, min(8, size // (2 * side)))


def feature_sides(size: int) -> tuple[int, ...]:
    """The sides of the inner feature maps of a ``size`` DCGAN generator or critic: 4, 8, ..., size / 2."""
    check_power_of_two(size)
    return tuple(2 ** k for k in range(2, int(math.log2(size))))


def check_power_of_two(size: int, smallest: int = 8) -> None:
    """A one-line ``ValueError`` unless ``size`` is a power of two of at least ``smallest``."""
    if size < smallest or size & (size - 1):
        raise ValueError(f"image size must be a power of two of at least {smallest}, got {size}")


def _label_vector(labels: Tensor | None, classes: int, like: Tensor) -> Tensor | None:
    if not classes:
        return None
    if labels is None:
        raise ValueError(f"this network is conditioned on {classes} classes and needs labels")
    return F.one_hot(labels.long(), classes).to(like.dtype)


class DCGANGenerator(nn.Module):
    """Noise ``(B, latent)`` (+ labels ``(B,)``) to ``(B, 3, size, size)`` in [-1, 1]."""

    def __init__(self, latent: int, size: int, *, width: int = 64, classes: int = 0,
                 attention: Sequence[int] = (), spectral_norm: bool = False) -> None:
        super().__init__()
        check_power_of_two(size)
        self.latent, self.size, self.classes = latent, size, classes
        sides = feature_sides(size)
        first = dcgan_channels(size, 4, width)
        self.project = with_spectral_norm(nn.Linear(latent + classes, first * 16), spectral_norm)
        layers: list[nn.Module] = [nn.Unflatten(1, (first, 4, 4)), nn.BatchNorm2d(first), nn.ReLU(True)]
        for side in sides:
            if side in attention:
                layers.append(SelfAttention2d(dcgan_channels(size, side, width), spectral_norm=spectral_norm))
            cin = dcgan_channels(size, side, width)
            last = side * 2 == size
            cout = 3 if last else dcgan_channels(size, side * 2, width)
            layers.append(with_spectral_norm(nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=last), spectral_norm))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(cout), nn.ReLU(True)]
        self.body = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, noise: Tensor, labels: Tensor | None = None) -> Tensor:
        onehot = _label_vector(labels, self.classes, noise)
        return self.body(self.project(noise if onehot is None else torch.cat([noise, onehot], 1)))


class DCGANCritic(nn.Module):
    """``(B, in_channels, size, size)`` (+ labels) to ``(B,)`` logits."""

    def __init__(self, size: int, *, in_channels: int = 3, width: int = 64, classes: int = 0,
                 attention: Sequence[int] = (), spectral_norm: bool = False) -> None:
        super().__init__()
        check_power_of_two(size)
        self.classes = classes
        layers: list[nn.Module] = []
        cin = in_channels
        for side in reversed(feature_sides(size)):  # size / 2, ..., 4: the side after each conv
            cout = dcgan_channels(size, side, width)
            layers += [with_spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2, True)]
            if side in attention:
                layers.append(SelfAttention2d(cout, spectral_norm=spectral_norm))
            cin = cout
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.linear = with_spectral_norm(nn.Linear(cin * 16, 1), spectral_norm)
        self.embed = with_spectral_norm(nn.Embedding(classes, cin * 16), spectral_norm) if classes else None
        init_weights(self)

    def forward(self, image: Tensor, labels: Tensor | None = None) -> Tensor:
        features = self.body(image)
        logits = self.linear(features).squeeze(1)
        if self.embed is not None:
            if labels is None:
                raise ValueError(f"this critic is conditioned on {self.classes} classes and needs labels")
            logits = logits + (self.embed(labels.long()) * features).sum(1)
        return logits


class LevelGenerator(nn.Module):
    """A LapGAN level: ``(B, 3, S, S)`` upsampled coarse image + noise plane (+ labels) to the band ``(B, 3, S, S)``.

    Features at side ``S`` (``width``) and ``S / 2`` (``2 * width``, where attention goes when ``S / 2`` is
    listed); a skip joins the two sides. No output activation: bands are signed.
    """

    def __init__(self, size: int, *, width: int = 64, classes: int = 0, attention: Sequence[int] = (),
                 spectral_norm: bool = False) -> None:
        super().__init__()
        self.classes = classes

        def sn(module: nn.Module) -> nn.Module:
            return with_spectral_norm(module, spectral_norm)

        self.head = nn.Sequential(sn(nn.Conv2d(3 + 1 + classes, width, 3, 1, 1)), nn.ReLU(True))
        middle: list[nn.Module] = [sn(nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False)), nn.BatchNorm2d(2 * width),
                                   nn.ReLU(True)]
        if size // 2 in attention:
            middle.append(SelfAttention2d(2 * width, spectral_norm=spectral_norm))
        middle += [sn(nn.Conv2d(2 * width, 2 * width, 3, 1, 1, bias=False)), nn.BatchNorm2d(2 * width), nn.ReLU(True),
                   sn(nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False)), nn.BatchNorm2d(width), nn.ReLU(True)]
        self.middle = nn.Sequential(*middle)
        self.tail = sn(nn.Conv2d(2 * width, 3, 3, 1, 1))
        init_weights(self)

    def forward(self, coarse: Tensor, noise: Tensor, labels: Tensor | None = None) -> Tensor:
        planes = [coarse, noise]
        onehot = _label_vector(labels, self.classes, coarse)
        if onehot is not None:
            planes.append(onehot[:, :, None, None].expand(-1, -1, *coarse.shape[-2:]))
        head = self.head(torch.cat(planes, 1))
        return self.tail(torch.cat([head, self.middle(head)], 1))
