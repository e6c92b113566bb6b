"""Super-resolution generators (compact, SRResNet, RRDB) and a fully convolutional patch critic.

Every generator maps ``(B, 3, h, w)`` RGB in [0, 1] to ``(B, 3, h*s, w*s)`` for s in 2, 3, 4 and any
``h, w``; none uses batch norm, so a tile gives the same result in train and eval mode and tiled inference
stays valid. Outputs are not clamped (the task clamps at inference; L1 training wants the raw values).

- :class:`CompactSR` (default, fast on CPU): plain 3x3 convs + PReLU at low resolution, a PixelShuffle
  tail, and a global bicubic skip so the body learns only the residual (the Real-ESRGAN "compact" idea).
- :class:`SRResNet`: the SRGAN generator (Ledig et al. 2017) with batch norm removed (as EDSR showed BN
  hurts SR and it makes train/eval differ); 9x9 head and tail, residual blocks, sub-pixel upsampling.
- :class:`RRDBNet`: the ESRGAN generator (Wang et al. 2018): residual-in-residual dense blocks with
  residuals scaled by 0.2, then nearest-neighbour upsampling + conv (no checkerboard from PixelShuffle).
- :func:`build_critic`: gantool's PatchGAN critic (:mod:`gantool.lib.nets.patchgan`) in its VGG layout with
  spectral norm: a 1-channel logit map for any crop of at least 8 pixels, and features for feature matching.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

if TYPE_CHECKING:
    from gantool.lib.options import CriticOptions


def upsample_stages(scale: int) -> list[int]:
    """Factors of successive x2/x3 upsampling stages for ``scale`` (4 is done as two x2 stages)."""
    stages = {2: [2], 3: [3], 4: [2, 2]}
    if scale not in stages:
        raise ValueError(f"scale must be 2, 3 or 4, got {scale}")
    return stages[scale]


def _cubic(distance: float, a: float = -0.75) -> float:
    """Keys' cubic convolution weight at ``distance`` (a = -0.75, as torch's bicubic uses)."""
    d = abs(distance)
    if d <= 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    if d < 2:
        return (((d - 5) * d + 8) * d - 4) * a
    return 0.0


class BicubicPhases(nn.Module):
    """Bicubic upsampling by an integer ``scale`` as sub-pixel phases: ``(B, 3, h, w)`` to ``(B, 3*s*s, h, w)``.

    ``PixelShuffle(scale)`` of the result equals ``F.interpolate(x, scale_factor=scale, mode="bicubic")``
    (align_corners=False, edges replicated), up to float rounding. In this form it is one small grouped
    convolution at input resolution whose output adds onto a network's sub-pixel tail before the shuffle:
    on the CPU in channels_last that is ~7x cheaper than torch's bicubic kernel, which cost 9% of the
    compact network's inference time.
    """

    weight: Tensor  # a non-persistent buffer: the 5x5 phase kernels

    def __init__(self, scale: int, channels: int = 3) -> None:
        super().__init__()
        self.scale, self.channels = scale, channels
        taps = [[0.0] * 5 for _ in range(scale)]  # per output phase, weights on input offsets -2..2
        for phase in range(scale):
            position = (phase + 0.5) / scale - 0.5  # source coordinate of this phase relative to its pixel
            base = math.floor(position)
            for offset in range(base - 1, base + 3):
                taps[phase][offset + 2] = _cubic(position - offset)
        # Plain Python, then one factory call: the network is also built on the meta device (the model
        # check), where tensor ops such as einsum or repeat go through decompositions that import
        # torch._dynamo, 1.7 s of a one-image command's start.
        kernel = [[[[taps[i][y] * taps[j][x] for x in range(5)] for y in range(5)]]
                  for i in range(scale) for j in range(scale)]
        self.register_buffer("weight", torch.tensor(kernel * channels, dtype=torch.float32), persistent=False)

    def forward(self, image: Tensor) -> Tensor:
        padded = F.pad(image, (2, 2, 2, 2), mode="replicate")
        return F.conv2d(padded, self.weight.to(image.dtype), groups=self.channels)


def _conv(in_channels: int, out_channels: int, kernel: int = 3) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)


def _scale_init(module: nn.Module, factor: float) -> None:
    """Shrink the default init of every conv in ``module`` (residual branches start near identity)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, a=0.0, mode="fan_in")
            layer.weight.data.mul_(factor)
            if layer.bias is not None:
                layer.bias.data.zero_()


class CompactSR(nn.Module):
    """Fast generator: ``blocks`` conv+PReLU layers at input resolution, PixelShuffle, bicubic skip.

    Args:
        scale: 2, 3 or 4.
        width: Feature channels.
        blocks: Conv layers between the first conv and the tail (each 3x3, ``width`` to ``width``).
        skip: The global skip: ``bicubic`` (gantool's) or ``nearest`` (Real-ESRGAN's SRVGGNetCompact, so
            its published weights run unchanged after ``gantool models import``).
    """

    def __init__(self, scale: int = 4, width: int = 64, blocks: int = 12, skip: str = "bicubic") -> None:
        super().__init__()
        upsample_stages(scale)  # validates
        self.scale = scale
        layers: list[nn.Module] = [_conv(3, width), nn.PReLU(width)]
        for _ in range(blocks):
            layers += [_conv(width, width), nn.PReLU(width)]
        self.body = nn.Sequential(*layers)
        self.tail = _conv(width, 3 * scale * scale)
        self.bicubic = BicubicPhases(scale) if skip == "bicubic" else NearestPhases(scale)
        self.shuffle = nn.PixelShuffle(scale)
        _scale_init(self.tail, 0.1)  # start close to plain bicubic

    def forward(self, image: Tensor) -> Tensor:
        """``(B, 3, h, w)`` in [0, 1] to ``(B, 3, h*s, w*s)``: bicubic plus a learned residual, in phase form."""
        return self.shuffle(self.tail(self.body(image)) + self.bicubic(image))


class NearestPhases(nn.Module):
    """Nearest-neighbour upsampling as sub-pixel phases: every phase is the pixel itself."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, image: Tensor) -> Tensor:
        return image.repeat_interleave(self.scale * self.scale, dim=1)


class _ResidualBlock(nn.Module):
    """conv-PReLU-conv with an identity skip (SRGAN's block without its batch norms)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(_conv(width, width), nn.PReLU(width), _conv(width, width))
        _scale_init(self.branch, 0.1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.branch(x)


class SRResNet(nn.Module):
    """The SRGAN generator without batch norm.

    Args:
        scale: 2, 3 or 4 (x4 is two x2 sub-pixel stages).
        width: Feature channels (64 in the paper).
        blocks: Residual blocks (16 in the paper).
    """

    def __init__(self, scale: int = 4, width: int = 64, blocks: int = 16) -> None:
        super().__init__()
        self.scale = scale
        self.head = nn.Sequential(_conv(3, width, 9), nn.PReLU(width))
        self.body = nn.Sequential(*[_ResidualBlock(width) for _ in range(blocks)], _conv(width, width))
        upsampling: list[nn.Module] = []
        for factor in upsample_stages(scale):
            upsampling += [_conv(width, width * factor * factor), nn.PixelShuffle(factor), nn.PReLU(width)]
        self.upsample = nn.Sequential(*upsampling)
        self.tail = _conv(width, 3, 9)

    def forward(self, image: Tensor) -> Tensor:
        """``(B, 3, h, w)`` in [0, 1] to ``(B, 3, h*s, w*s)``."""
        features = self.head(image)
        features = features + self.body(features)
        return self.tail(self.upsample(features))


class _DenseBlock(nn.Module):
    """Five densely connected 3x3 convs; the output is ``x + 0.2 * conv5(...)`` (ESRGAN's RDB)."""

    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_conv(width + i * growth, growth) for i in range(4))
        self.fuse = _conv(width + 4 * growth, width)
        _scale_init(self, 0.1)

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for conv in self.convs:
            features.append(F.leaky_relu(conv(torch.cat(features, 1)), 0.2))
        return x + 0.2 * self.fuse(torch.cat(features, 1))


class _RRDB(nn.Module):
    """Three dense blocks inside one more scaled residual (residual-in-residual)."""

    def __init__(self, width: int, growth: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[_DenseBlock(width, growth) for _ in range(3)])

    def forward(self, x: Tensor) -> Tensor:
        return x + 0.2 * self.blocks(x)


class RRDBNet(nn.Module):
    """The ESRGAN generator.

    Args:
        scale: 2, 3 or 4 (nearest-neighbour upsampling stages of x2, x3 or x2 twice, each followed by a conv).
        width: Feature channels (64 in the paper); the dense growth is ``width // 2`` (32 in the paper).
        blocks: RRDB blocks (23 in the paper).
    """

    def __init__(self, scale: int = 4, width: int = 64, blocks: int = 23) -> None:
        super().__init__()
        self.scale = scale
        self.stages = upsample_stages(scale)
        growth = max(width // 2, 1)
        self.head = _conv(3, width)
        self.body = nn.Sequential(*[_RRDB(width, growth) for _ in range(blocks)])
        self.body_conv = _conv(width, width)
        self.upsample_convs = nn.ModuleList(_conv(width, width) for _ in self.stages)
        self.hr_conv = _conv(width, width)
        self.tail = _conv(width, 3)

    def forward(self, image: Tensor) -> Tensor:
        """``(B, 3, h, w)`` in [0, 1] to ``(B, 3, h*s, w*s)``."""
        features = self.head(image)
        features = features + self.body_conv(self.body(features))
        for factor, conv in zip(self.stages, self.upsample_convs, strict=True):
            features = F.leaky_relu(conv(F.interpolate(features, scale_factor=factor, mode="nearest")), 0.2)
        return self.tail(F.leaky_relu(self.hr_conv(features), 0.2))


GENERATORS: dict[str, type[nn.Module]] = {"compact": CompactSR, "srresnet": SRResNet, "rrdb": RRDBNet}


def build_generator(arch: str, *, scale: int, width: int, blocks: int, skip: str = "bicubic") -> nn.Module:
    """The generator named ``arch`` (``compact``, ``srresnet`` or ``rrdb``); ``skip`` is the compact one's."""
    if arch not in GENERATORS:
        raise ValueError(f"unknown generator {arch!r}; choose one of {', '.join(GENERATORS)}")
    if arch == "compact":
        return CompactSR(scale=scale, width=width, blocks=blocks, skip=skip)
    return GENERATORS[arch](scale=scale, width=width, blocks=blocks)


def build_critic(options: CriticOptions) -> nn.Module:
    """The GAN stage's critic: gantool's PatchGAN in its ``vgg`` layout, without norm layers.

    A 3x3 stem, then ``--critic-layers`` stages of (4x4 stride-2 conv, 3x3 conv), each LeakyReLU(0.2), and a
    3x3 conv to one logit per patch (receptive field 68 pixels at 3 stages; inputs of at least
    ``2**stages`` pixels). Spectral norm on every conv after the stem (on by default here) is Real-ESRGAN's
    choice: stable without batch norm, which would mix the real and fake halves of a concatenated batch.
    PyTorch's default init, as this critic was always trained with. It can return its intermediate
    features for feature matching.
    """
    from gantool.lib.nets.patchgan import PatchDiscriminator

    return PatchDiscriminator.from_options(options, 3, norm="none", layout="vgg", init_std=None)


def count_parameters(network: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in network.parameters())


# VGG19 convolution widths, "M" = 2x2 max pool; the layer indices match torchvision's ``vgg19().features``.
_VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGFeatures(nn.Module):
    """VGG19 up to ``conv5_4`` before its ReLU (ESRGAN's perceptual features), frozen, for a perceptual loss.

    Build it with :meth:`from_file`; gantool never downloads weights. The input is ``(B, 3, H, W)`` RGB in
    [0, 1]; ImageNet normalisation is applied inside.
    """

    LAST_LAYER = 34  # torchvision index of conv5_4

    mean: Tensor  # non-persistent buffers: ImageNet normalisation
    std: Tensor

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for entry in _VGG19_LAYOUT:
            if entry == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, int(entry), 3, padding=1), nn.ReLU(inplace=True)]
                channels = int(entry)
        self.features = nn.Sequential(*layers[: self.LAST_LAYER + 1])
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str) -> VGGFeatures:
        """Load weights saved from torchvision's ``vgg19`` (``features.N.weight`` keys, or ``N.weight``).

        Accepts ``.safetensors`` or a PyTorch ``.pth`` (read with ``weights_only=True``). Classifier weights
        and layers past ``conv5_4`` are ignored.

        Raises:
            CheckpointError: the file is missing, unreadable or lacks VGG19 convolution weights.
        """
        from gantool.errors import CheckpointError

        network = cls()
        try:
            if str(path).endswith(".safetensors"):
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as error:  # missing file, pickle refused, corrupt archive: all one message
            raise CheckpointError(f"cannot read VGG19 weights '{path}': {str(error).splitlines()[0]}") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        wanted = network.features.state_dict()
        found = {}
        for key, tensor in state.items() if isinstance(state, dict) else ():
            short = key.removeprefix("module.").removeprefix("features.")
            if short in wanted:
                found[short] = tensor
        missing = sorted(set(wanted) - set(found), key=lambda k: int(k.split(".")[0]))
        bad = [k for k, t in found.items() if tuple(t.shape) != tuple(wanted[k].shape)]
        if missing or bad:
            detail = f"missing {', '.join(missing[:3])}" if missing else f"wrong shape for {', '.join(bad[:3])}"
            raise CheckpointError(f"'{path}' is not a torchvision VGG19 state dict ({detail}); expected keys "
                                  "like features.0.weight ... features.34.weight")
        network.features.load_state_dict(found)
        return network

    def forward(self, image: Tensor) -> Tensor:
        """``conv5_4`` pre-activation features of ``(B, 3, H, W)`` RGB in [0, 1]."""
        return self.features((image - self.mean) / self.std)
