"""The PatchGAN discriminator of pix2pix (Isola et al. 2017) and CycleGAN (Zhu et al. 2017).

It classifies every overlapping ``N x N`` patch of the input as real or fake instead of the whole image,
so it has few parameters, runs on any image size, and models only local texture (the L1 / cycle losses
take care of the low frequencies). With ``n_layers=3`` each output logit sees a 70 x 70 input patch.
"""

from __future__ import annotations

from torch import Tensor, nn

from gantool.lib.nets.layers import conv_bias, init_weights, make_norm

_KERNEL, _PADDING = 4, 1


def receptive_field(n_layers: int) -> int:
    """Input patch side seen by one output logit: 70 for ``n_layers=3``, 34 for 2, 142 for 4.

    The network is ``n_layers`` stride-2 4x4 convs followed by two stride-1 4x4 convs; walking back from
    one output pixel, each 4x4 conv adds ``3 * (product of the strides before it)`` pixels.
    """
    strides = [2] * n_layers + [1, 1]
    field, jump = 1, 1
    for stride in strides:
        field += (_KERNEL - 1) * jump
        jump *= stride
    return field


class PatchDiscriminator(nn.Module):
    """``(B, in_channels, H, W)`` to a ``(B, 1, H', W')`` map of real/fake logits (no sigmoid).

    Layout (the reference ``NLayerDiscriminator``): 4x4 stride-2 conv + LeakyReLU(0.2) without norm, then
    ``n_layers - 1`` stride-2 convs and one stride-1 conv, each with norm and LeakyReLU, channels doubling
    up to ``8 * width``, and a final stride-1 conv to one channel. At 256 x 256 input and ``n_layers=3``
    the output is 30 x 30.

    Args:
        in_channels: Input channels (3 for CycleGAN; 6 for pix2pix, which sees input and output stacked).
        width: Channels of the first layer (64 in the papers).
        n_layers: Stride-2 convolutions; sets the receptive field (see :func:`receptive_field`).
        norm: ``"instance"`` (CycleGAN), ``"batch"`` (pix2pix) or ``"none"``. Batch norm mixes the samples
            of a batch, so do not feed real and fake through it concatenated; instance norm is per sample.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 3, norm: str = "instance") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, _KERNEL, 2, _PADDING), nn.LeakyReLU(0.2, True)]
        channels = width
        for index in range(1, n_layers + 1):
            out = width * min(2**index, 8)
            stride = 2 if index < n_layers else 1
            layers += [nn.Conv2d(channels, out, _KERNEL, stride, _PADDING, bias=bias), make_norm(norm, out),
                       nn.LeakyReLU(0.2, True)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, _KERNEL, 1, _PADDING))
        self.model = nn.Sequential(*layers)
        self.n_layers = n_layers
        init_weights(self)

    @property
    def receptive_field(self) -> int:
        """Input patch side seen by one output logit (70 at ``n_layers=3``)."""
        return receptive_field(self.n_layers)

    def forward(self, image: Tensor) -> Tensor:
        """Logits, one per patch; needs ``H, W >= 2**n_layers * 2`` or so to leave a non-empty map."""
        return self.model(image)
