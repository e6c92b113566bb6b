"""The U-Net generator of pix2pix (Isola et al. 2017): an encoder-decoder with skip connections.

Why a U-Net: in paired translation input and output share their structure (edges, layout), so every
encoder level hands its features straight to the mirrored decoder level and the bottleneck only has to
carry what changes. Layout, as in the paper's ``unet_256``: ``depth`` 4x4 stride-2 convs (LeakyReLU 0.2,
norm on all but the first and the innermost), channels ``width * 2**i`` capped at ``8 * width``; then as
many 4x4 stride-2 transposed convs (ReLU before, norm after, tanh at the end), each decoder level seeing
its own output concatenated with the encoder's. Dropout 0.5 in the few decoder blocks next to the
bottleneck is pix2pix's only source of noise.

Values are in [-1, 1] in and out (tanh); tasks working in [0, 1] map ``x * 2 - 1`` and ``(y + 1) / 2``.
The network is fully convolutional for sizes that are multiples of ``2**depth``; :meth:`UNet.forward_any_size`
and :func:`run_any_size` pad other sizes (reflect) and crop the result back, as inference on real photos needs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantool.lib.nets.geometry import MAX_UNET_DEPTH, depth_for_crop
from gantool.lib.nets.layers import conv_bias, init_weights, make_norm

__all__ = ["MAX_DEPTH", "MAX_MULTIPLIER", "UNet", "depth_for_crop", "dropout_active", "run_any_size"]

#: Deepest U-Net we build: 8 downsamplings is pix2pix's ``unet_256`` (a 1x1 bottleneck at 256 pixels).
MAX_DEPTH = MAX_UNET_DEPTH
#: Channel multiplier cap: ``width * 8`` (512 at width 64) from the fourth level on, as in the paper.
MAX_MULTIPLIER = 8


class UNet(nn.Module):
    """``(B, in_channels, H, W)`` in [-1, 1] to ``(B, out_channels, H, W)`` in [-1, 1].

    ``H`` and ``W`` must be multiples of ``2**depth`` for :meth:`forward`; :meth:`forward_any_size` takes
    any size.

    Args:
        in_channels, out_channels: 3 and 3 for RGB translation; 1 and 2 for colourisation (L in, ab out).
        width: Channels of the first encoder level (64 in the paper).
        depth: Stride-2 downsamplings (see :func:`depth_for_crop`).
        norm: ``"instance"``, ``"batch"`` or ``"none"`` (:func:`gantool.nets.layers.make_norm`).
        dropout: Dropout probability in the ``dropout_blocks`` decoder blocks next to the innermost one
            (0.5 in the paper; 0 disables it). In eval mode it is off unless :func:`dropout_active` is used.
        dropout_blocks: How many decoder blocks get dropout (3 in the paper).
        half_res_logits: Replace the last decoder block (transposed conv to full size, tanh) by a 1x1 conv at
            half the input size with no activation: unbounded per-pixel logits at a quarter of the cost, for
            classifier heads with many channels (colorize's ab bins). :func:`run_any_size` then needs
            ``downscale=2``.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, *, width: int = 64, depth: int = 7,
                 norm: str = "instance", dropout: float = 0.5, dropout_blocks: int = 3,
                 half_res_logits: bool = False) -> None:
        super().__init__()
        if not 1 <= depth <= MAX_DEPTH:
            raise ValueError(f"depth must be between 1 and {MAX_DEPTH}, got {depth}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.depth = depth
        channels = [width * min(2**level, MAX_MULTIPLIER) for level in range(depth)]
        bias = conv_bias(norm)
        innermost = depth - 1

        self.down = nn.ModuleList()
        for level in range(depth):
            normed = 0 < level < innermost
            layers: list[nn.Module] = [] if level == 0 else [nn.LeakyReLU(0.2)]
            layers.append(nn.Conv2d(in_channels if level == 0 else channels[level - 1], channels[level], 4, 2, 1,
                                    bias=bias or not normed))
            if normed:
                layers.append(make_norm(norm, channels[level]))
            self.down.append(nn.Sequential(*layers))

        # up[k] undoes down[innermost - k]: it reads that level's features (plus the skip, except innermost).
        self.up = nn.ModuleList()
        for level in reversed(range(depth)):
            source = channels[level] * (1 if level == innermost else 2)
            if level == 0 and half_res_logits:
                layers = [nn.ReLU(), nn.Conv2d(source, out_channels, 1)]
            elif level == 0:
                layers = [nn.ReLU(), nn.ConvTranspose2d(source, out_channels, 4, 2, 1), nn.Tanh()]
            else:
                layers = [nn.ReLU(), nn.ConvTranspose2d(source, channels[level - 1], 4, 2, 1, bias=bias),
                          make_norm(norm, channels[level - 1])]
                if dropout > 0 and innermost - dropout_blocks <= level < innermost:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        init_weights(self)

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this for :meth:`forward` (``2**depth``)."""
        return 2**self.depth

    def forward(self, image: Tensor) -> Tensor:
        """The translation; raises ``ValueError`` for sizes that are not multiples of :attr:`multiple`."""
        height, width = image.shape[-2:]
        if height % self.multiple or width % self.multiple:
            raise ValueError(f"UNet of depth {self.depth} needs sides that are multiples of {self.multiple}, got "
                             f"{height}x{width}; use forward_any_size()")
        skips = []
        features = image
        for block in self.down:
            features = block(features)
            skips.append(features)
        features = skips.pop()
        for block in self.up:
            features = block(features)
            if skips:
                features = torch.cat([features, skips.pop()], dim=1)
        return features

    def forward_any_size(self, image: Tensor) -> Tensor:
        """:meth:`forward` for any size (see :func:`run_any_size`)."""
        return run_any_size(self, image, self.multiple)


def run_any_size(network: Callable[[Tensor], Tensor], image: Tensor, multiple: int, *, downscale: int = 1) -> Tensor:
    """Run ``network`` on an image of any size: pad right and bottom up to ``multiple``, then crop back.

    ``downscale``: the network's output is this many times smaller than its input (2 for
    ``UNet(half_res_logits=True)``); the crop keeps ``ceil(side / downscale)``.

    A function rather than only a method so that it also works on a wrapped network (``torch.compile``,
    DDP) whose class is no longer :class:`UNet`. Reflect padding where the image is large enough (no dark
    border for the convs to react to), replicate otherwise (reflect needs the pad to be smaller than the side).
    """
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not pad_h and not pad_w and not torch.compiler.is_exporting():  # exporting: one graph for every size
        return network(image)
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    padded = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
    return network(padded)[..., :(height + downscale - 1) // downscale, :(width + downscale - 1) // downscale]


@contextlib.contextmanager
def dropout_active(module: nn.Module) -> Iterator[nn.Module]:
    """Switch every dropout layer of ``module`` to training mode (noise on) for the duration, then back.

    pix2pix's generator draws its only noise from dropout; inference normally runs in eval mode and is
    deterministic. Use this (with a seeded RNG) to get varied but repeatable outputs; norm layers stay in
    whatever mode they were, so batch norm keeps its running statistics.
    """
    layers = [m for m in module.modules() if isinstance(m, nn.Dropout | nn.Dropout2d)]
    before = [m.training for m in layers]
    for layer in layers:
        layer.train(True)
    try:
        yield module
    finally:
        for layer, mode in zip(layers, before, strict=True):
            layer.train(mode)
