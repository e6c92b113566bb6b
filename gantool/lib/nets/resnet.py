"""The ResNet generator of CycleGAN (Zhu et al. 2017), after Johnson et al.'s style-transfer network.

c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-3: a 7x7 conv, two stride-2 downsampling convs, ``n``
residual blocks at 1/4 resolution (6 for 128-pixel training images, 9 for 256 in the paper), two
transposed-conv upsamplings and a 7x7 conv with tanh. Reflect padding everywhere avoids dark borders;
instance norm without running statistics makes train and eval mode identical.

Values are in [-1, 1] in and out (tanh), the papers' convention; a task working in [0, 1] maps
``x * 2 - 1`` before and ``(y + 1) / 2`` after.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantool.lib.nets.layers import conv_bias, init_weights, make_norm

#: Total stride of the two downsampling convs: inputs are padded to a multiple of this.
STRIDE = 4


class ResnetBlock(nn.Module):
    """``x + (reflect-pad, 3x3 conv, norm, ReLU, [dropout], reflect-pad, 3x3 conv, norm)(x)``."""

    def __init__(self, channels: int, norm: str = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                                   make_norm(norm, channels), nn.ReLU(True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias), make_norm(norm, channels)]
        self.branch = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


class ResnetGenerator(nn.Module):
    """``(B, in_channels, H, W)`` in [-1, 1] to ``(B, out_channels, H, W)`` in [-1, 1], for any ``H, W``.

    Sizes that are not multiples of 4 are reflect-padded up to one and the output cropped back, so the
    generator is usable at full resolution and on tiles of any size (the transposed convs alone would
    otherwise round odd sizes up).

    Args:
        in_channels, out_channels: Image channels (3 and 3 for RGB translation).
        width: Channels of the first conv (64 in the paper); 2x and 4x that after the downsamplings.
        blocks: Residual blocks (6 or 9 in the paper; any positive number works).
        norm: ``"instance"`` (the paper), ``"batch"`` or ``"none"``.
        dropout: Dropout inside the residual blocks (0 in CycleGAN).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64, blocks: int = 9,
                 norm: str = "instance", dropout: float = 0.0) -> None:
        super().__init__()
        if blocks < 0:
            raise ValueError(f"blocks must be >= 0, got {blocks}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias),
                                   make_norm(norm, width), nn.ReLU(True)]
        channels = width
        for _ in range(2):  # downsampling
            layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=bias),
                       make_norm(norm, channels * 2), nn.ReLU(True)]
            channels *= 2
        layers += [ResnetBlock(channels, norm, dropout) for _ in range(blocks)]
        for _ in range(2):  # upsampling
            layers += [nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=bias), make_norm(norm, channels // 2), nn.ReLU(True)]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.blocks = blocks
        init_weights(self)

    def forward(self, image: Tensor) -> Tensor:
        """Translate ``image``; any spatial size (padded to a multiple of 4 internally)."""
        height, width = image.shape[-2:]
        pad_h, pad_w = -height % STRIDE, -width % STRIDE
        if pad_h or pad_w or torch.compiler.is_exporting():  # exporting: one graph for every size
            mode = "reflect" if height > pad_h and width > pad_w else "replicate"
            image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
            return self.model(image)[..., :height, :width]
        return self.model(image)
