"""The inpainting generator: gated convolutions (Yu et al. 2019, DeepFill v2) around a dilated bottleneck.

A gated convolution learns, per pixel and channel, how much of its feature to let through
(``feature * sigmoid(gate)``), so the network can tell hole pixels (whose input values are made up) from
known ones at every layer, which a plain convolution cannot. The dilated convolutions in the middle
(rates 2, 4, 8, 8 at a quarter of the resolution) reach about 90 input pixels across, enough to see both
sides of a hole at the training crop, without FFT layers (which break ONNX export) or attention.

The generator refines a prior (OpenCV's TELEA fill, or the image with holes zeroed) and outputs
``prior + residual``; the residual's last layer starts at zero, so an untrained model returns the prior
exactly and training can only start from the classical fill, never below it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Dilation rates of the bottleneck (at 1/4 of the input resolution).
DILATIONS = (2, 4, 8, 8)
#: Input sides must be multiples of this (two stride-2 convolutions).
MULTIPLE = 4


#: Weights are drawn with std ``GAIN / sqrt(fan_in)``: ELU times a sigmoid gate (about 0.5) shrinks the signal,
#: and with PyTorch's default init the activations of the 13 gated layers fell to under 1 % of the input's
#: standard deviation, so the network barely learned; 2.3 keeps them between 0.4 and 1 (measured at init).
GAIN = 2.3


class GatedConv2d(nn.Module):
    """``ELU(conv_f(x)) * sigmoid(conv_g(x))``, both convolutions computed as one (twice the channels)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        padding = dilation * (kernel - 1) // 2
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel, stride, padding, dilation=dilation)
        nn.init.normal_(self.conv.weight, std=GAIN / (in_channels * kernel * kernel) ** 0.5)
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        feature, gate = self.conv(x).chunk(2, dim=1)
        return F.elu(feature) * torch.sigmoid(gate)


class InpaintGenerator(nn.Module):
    """``(prior (B, 3, H, W) in [-1, 1], hole (B, 1, H, W) in {0, 1})`` to the filled image in [-1, 1].

    ``H`` and ``W`` must be multiples of :data:`MULTIPLE` (:func:`run_padded` pads any size). The output
    is the raw prediction everywhere; compositing known pixels back is the caller's job.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            GatedConv2d(4, w, 5), GatedConv2d(w, 2 * w, 3, 2), GatedConv2d(2 * w, 2 * w),
            GatedConv2d(2 * w, 4 * w, 3, 2), GatedConv2d(4 * w, 4 * w))
        self.bottleneck = nn.Sequential(*(GatedConv2d(4 * w, 4 * w, dilation=rate) for rate in DILATIONS))
        self.up1 = nn.Sequential(GatedConv2d(8 * w, 2 * w), GatedConv2d(2 * w, 2 * w))
        self.up2 = nn.Sequential(GatedConv2d(2 * w, w), GatedConv2d(w, w // 2 or 1))
        self.head = nn.Conv2d(w // 2 or 1, 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        if self.head.bias is not None:
            nn.init.zeros_(self.head.bias)

    def forward(self, prior: Tensor, hole: Tensor) -> Tensor:
        x = torch.cat([prior, hole], dim=1)
        encoded = self.encoder(x)
        x = torch.cat([encoded, self.bottleneck(encoded)], dim=1)
        x = self.up1(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        x = self.up2(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return prior + self.head(x)


def run_padded(generator: nn.Module, prior: Tensor, hole: Tensor) -> Tensor:
    """The generator at any size: pad (replicate; the hole with zeros) to a multiple of 4, then crop back."""
    height, width = prior.shape[-2:]
    bottom, right = -height % MULTIPLE, -width % MULTIPLE
    if bottom or right or torch.compiler.is_exporting():  # exporting: one graph for every size
        prior = F.pad(prior, (0, right, 0, bottom), mode="replicate")
        hole = F.pad(hole, (0, right, 0, bottom))
    return generator(prior, hole)[..., :height, :width]
