"""The ResNet generator of CycleGAN (Zhu et al. 2017), after Johnson et al.'s style-transfer network.

c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-3: a 7x7 conv, two stride-2 downsampling convs, ``n``
residual blocks at 1/4 resolution (6 for 128-pixel training images, 9 for 256 in the paper), two
upsamplings and a 7x7 conv with tanh. Reflect padding everywhere avoids dark borders; instance norm
without running statistics makes train and eval mode identical.

Upsampling (``upsample``): the paper's stride-2 transposed convolutions (``"transposed"``, the default, so
models stored without the choice load as they were trained) overlap unevenly and leave a checkerboard
pattern in young models (Odena et al. 2016, "Deconvolution and checkerboard artifacts"); ``"nearest"`` or
``"bilinear"`` resize by 2 and then apply a 3x3 conv, which cannot produce it. The parameter count is the
same. For contrastive training (CUT), ``forward(..., features=True)`` also returns encoder activations.

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

#: The upsampling layers the generator can use (see the module docstring); ``"transposed"`` is the paper's.
UPSAMPLE_MODES: tuple[str, ...] = ("transposed", "nearest", "bilinear")


def upsampling(channels: int, out: int, mode: str, bias: bool) -> list[nn.Module]:
    """Layers doubling the side from ``channels`` to ``out`` channels: a transposed conv, or resize + 3x3 conv."""
    if mode == "transposed":
        return [nn.ConvTranspose2d(channels, out, 3, stride=2, padding=1, output_padding=1, bias=bias)]
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
    resize = nn.Upsample(scale_factor=2, mode=mode, **({} if mode == "nearest" else {"align_corners": False}))
    return [resize, nn.ReflectionPad2d(1), nn.Conv2d(channels, out, 3, bias=bias)]


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
        upsample: ``"transposed"`` (the paper), ``"nearest"`` or ``"bilinear"`` resize + conv (no checkerboard).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64, blocks: int = 9,
                 norm: str = "instance", dropout: float = 0.0, upsample: str = "transposed") -> None:
        super().__init__()
        if blocks < 0:
            raise ValueError(f"blocks must be >= 0, got {blocks}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, width, 7, bias=bias),
                                   make_norm(norm, width), nn.ReLU(True)]
        taps = [0, len(layers) - 1]  # the padded image, the stem
        channels = width
        for _ in range(2):  # downsampling
            layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=bias),
                       make_norm(norm, channels * 2), nn.ReLU(True)]
            channels *= 2
            taps.append(len(layers) - 1)
        tap_channels = [in_channels, width, width * 2, width * 4]
        for index in range(blocks):
            layers.append(ResnetBlock(channels, norm, dropout))
            if index == blocks // 2:
                taps.append(len(layers) - 1)
                tap_channels.append(channels)
        for _ in range(2):
            layers += [*upsampling(channels, channels // 2, upsample, bias), make_norm(norm, channels // 2),
                       nn.ReLU(True)]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.blocks, self.upsample = blocks, upsample
        #: Indices in :attr:`model` whose outputs ``forward(..., features=True)`` returns: the padded input,
        #: the stem, each downsampling and the middle residual block (CUT's choice of layers).
        self.feature_layers = tuple(taps)
        #: Channels of those feature maps, in order (what a projection head needs to know).
        self.feature_channels = tuple(tap_channels)
        init_weights(self)

    def forward(self, image: Tensor, features: bool = False,
                encode_only: bool = False) -> Tensor | tuple[Tensor, list[Tensor]] | list[Tensor]:
        """Translate ``image``; any spatial size (padded to a multiple of 4 internally).

        With ``features`` also the activations of :attr:`feature_layers` (of the padded input), as
        ``(output, features)``; with ``encode_only`` only those features, stopping after the last one (a
        flag rather than a method so DDP and compiled wrappers, which only forward ``__call__``, can ask).
        """
        height, width = image.shape[-2:]
        pad_h, pad_w = -height % STRIDE, -width % STRIDE
        padded = bool(pad_h or pad_w or torch.compiler.is_exporting())  # exporting: one graph for every size
        if padded:
            mode = "reflect" if height > pad_h and width > pad_w else "replicate"
            image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
        if not (features or encode_only):
            output = self.model(image)
            return output[..., :height, :width] if padded else output
        found: list[Tensor] = []
        x = image
        for index, layer in enumerate(self.model):
            x = layer(x)
            if index in self.feature_layers:
                found.append(x)
                if encode_only and len(found) == len(self.feature_layers):
                    return found
        return (x[..., :height, :width] if padded else x), found
