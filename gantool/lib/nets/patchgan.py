"""The PatchGAN critic of pix2pix (Isola et al. 2017) and CycleGAN (Zhu et al. 2017), and its VGG-style variant.

It classifies every overlapping ``N x N`` patch of the input as real or fake instead of the whole image,
so it has few parameters, runs on any image size above a minimum, and models only local texture (the L1
/ cycle losses take care of the low frequencies). With ``n_layers=3`` each output logit sees a 70 x 70
input patch. Options every task can switch on: spectral norm and intermediate features for
feature-matching losses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from gantool.lib.nets.geometry import PATCH_LAYOUTS, ConvShape, PatchLayout, min_input_side, patch_convs
from gantool.lib.nets.geometry import receptive_field as _field_of
from gantool.lib.nets.layers import conv_bias, init_weights, make_norm, with_spectral_norm

if TYPE_CHECKING:
    from gantool.lib.options import CriticOptions


def receptive_field(n_layers: int, layout: PatchLayout = "nlayer") -> int:
    """Input patch side seen by one output logit: 70 for ``n_layers=3``, 34 for 2, 142 for 4 (``nlayer``)."""
    return _field_of(patch_convs(n_layers, layout))


class PatchDiscriminator(nn.Module):
    """``(B, in_channels, H, W)`` to a ``(B, 1, H', W')`` map of real/fake logits (no sigmoid).

    Layouts (see :func:`gantool.lib.nets.geometry.patch_convs` for the exact convolutions):

    - ``nlayer`` (the reference ``NLayerDiscriminator``): 4x4 stride-2 conv + LeakyReLU(0.2) without norm,
      then ``n_layers - 1`` stride-2 convs and one stride-1 conv, each with norm and LeakyReLU, and a
      final stride-1 4x4 conv to one channel. ``H' = floor(H / 2**n_layers) - 2``: 30 x 30 at 256 x 256 and
      ``n_layers=3``; the smallest input is ``3 * 2**n_layers`` (24).
    - ``vgg`` (super-resolution's critic): a 3x3 stem conv, then ``n_layers`` stages of a 4x4 stride-2 conv
      and a 3x3 conv (each with norm and LeakyReLU), and a 3x3 head. Sizes are kept except for the
      strides, so ``H' = floor(H / 2**n_layers)`` and the smallest input is ``2**n_layers`` (8).

    Channels double per stride-2 level up to ``8 * width``. The smallest accepted side is computed from
    the layers (:attr:`min_size`) and checked in :meth:`forward`.

    Args:
        in_channels: Input channels (3 for CycleGAN; 6 for pix2pix, which sees input and output stacked).
        width: Channels of the first layer (64 in the papers).
        n_layers: Stride-2 convolutions; sets the receptive field (see :func:`receptive_field`).
        norm: ``"instance"`` (CycleGAN), ``"batch"`` (pix2pix) or ``"none"``. Batch norm mixes the samples
            of a batch, so do not feed real and fake through it concatenated; instance norm is per sample.
        layout: ``"nlayer"`` or ``"vgg"``, as above.
        spectral_norm: Spectral norm (:func:`gantool.lib.nets.layers.with_spectral_norm`) on the convs:
            every conv in ``nlayer`` (as Miyato et al.); every conv but the stem in ``vgg`` (as Real-ESRGAN,
            whose first conv on raw pixels stays free). It changes the state-dict keys of those convs.
        init_std: Conv weights from N(0, init_std) and zero biases (:func:`init_weights`, the papers'
            init); ``None`` keeps PyTorch's default (Kaiming-uniform) initialisation.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, n_layers: int = 3, norm: str = "instance", *,
                 layout: PatchLayout = "nlayer", spectral_norm: bool = False,
                 init_std: float | None = 0.02) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        if layout not in PATCH_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(PATCH_LAYOUTS)}, got {layout!r}")
        bias = conv_bias(norm)
        kernel = 4 if layout == "nlayer" else 3  # of the first and the last conv
        # The first conv sees the image: no norm (as in the papers), hence its own bias.
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, kernel, 2 if layout == "nlayer" else 1, 1),
                                   nn.LeakyReLU(0.2, True)]
        taps = [len(layers) - 1]
        channels = width
        for index in range(1, n_layers + 1):
            out = width * min(2**index, 8)
            if layout == "nlayer":
                stride = 2 if index < n_layers else 1
                layers += [nn.Conv2d(channels, out, 4, stride, 1, bias=bias), make_norm(norm, out),
                           nn.LeakyReLU(0.2, True)]
            else:
                layers += [nn.Conv2d(channels, out, 4, 2, 1, bias=bias), make_norm(norm, out),
                           nn.LeakyReLU(0.2, True),
                           nn.Conv2d(out, out, 3, 1, 1, bias=bias), make_norm(norm, out), nn.LeakyReLU(0.2, True)]
            taps.append(len(layers) - 1)
            channels = out
        layers.append(nn.Conv2d(channels, 1, kernel, 1, 1))
        self.model = nn.Sequential(*layers)
        self.n_layers, self.layout = n_layers, layout
        self._taps = frozenset(taps)

        convs = [layer for layer in self.model if isinstance(layer, nn.Conv2d)]
        self._shapes = tuple(ConvShape(c.kernel_size[0], c.stride[0], int(c.padding[0])) for c in convs)
        #: Smallest input side (height and width) that leaves a non-empty logit map, from the layers themselves.
        self.min_size = min_input_side(self._shapes)
        if init_std is not None:
            init_weights(self, init_std)
        if spectral_norm:  # after init: the power iteration starts from the final weights
            for conv in convs[1:] if layout == "vgg" else convs:
                with_spectral_norm(conv)

    @classmethod
    def from_options(cls, options: CriticOptions, in_channels: int = 3, *, norm: str = "instance",
                     layout: PatchLayout = "nlayer", init_std: float | None = 0.02) -> PatchDiscriminator:
        """The critic that a task's :class:`gantool.lib.options.CriticOptions` describe.

        Width, layers and spectral norm come from the options; what is the task's own choice (norm, layout,
        init) is passed here. Tasks build critics through this, so a new critic option reaches all of them.
        """
        return cls(in_channels, options.critic_width, options.critic_layers, norm, layout=layout,
                   spectral_norm=options.spectral_norm, init_std=init_std)

    @property
    def receptive_field(self) -> int:
        """Input patch side seen by one output logit (70 at ``n_layers=3``, ``nlayer``)."""
        return _field_of(self._shapes)

    def forward(self, image: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Logits, one per patch; ``H`` and ``W`` must be at least :attr:`min_size`.

        With ``return_features`` also the activations after the first conv and after each following block
        (``n_layers + 1`` maps, for feature matching), as ``(logits, features)``. A flag rather than a
        method so DDP and compiled wrappers, which only forward ``__call__``, can ask for it.

        Raises:
            ValueError: the input is smaller than :attr:`min_size` (one line naming both sizes).
        """
        height, width = image.shape[-2:]
        if min(height, width) < self.min_size:
            raise ValueError(f"PatchDiscriminator ({self.layout}, {self.n_layers} layers) needs inputs of at least "
                             f"{self.min_size}x{self.min_size} pixels, got {height}x{width}")
        if not return_features:
            return self.model(image)
        features = []
        for index, layer in enumerate(self.model):
            image = layer(image)
            if index in self._taps:
                features.append(image)
        return image, features
