"""Small layer helpers shared by the GAN networks: normalisation by name, spectral norm, the usual GAN init."""

from __future__ import annotations

from typing import Literal, TypeVar, cast

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

ModuleT = TypeVar("ModuleT", bound=nn.Module)

NormKind = Literal["instance", "batch", "none"]
NORM_KINDS: tuple[str, ...] = ("instance", "batch", "none")


class InstanceNorm(nn.GroupNorm):
    """Instance normalisation without affine parameters or running statistics (CycleGAN's and pix2pix's).

    Each channel of each sample is normalised over its own pixels, which is exactly ``GroupNorm`` with
    one channel per group. Computed through ``GroupNorm``'s kernel because on the CPU it was ~4-10%
    faster per generator forward + backward than ``nn.InstanceNorm2d`` (which reshapes the batch into
    channels and goes through batch norm); the results agree to float rounding. It has no parameters or
    buffers, so state dicts are the same as with ``nn.InstanceNorm2d(affine=False)``.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__(channels, channels, eps=eps, affine=False)
        #: ``(mean, var)``, each ``(1, C, 1, 1)``, to normalise with instead of the input's own statistics;
        #: set only for the duration of tiled inference (:mod:`gantool.engine.normstats`).
        self.frozen_statistics: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.frozen_statistics is None:
            return super().forward(x)
        mean, var = self.frozen_statistics
        return (x - mean.to(x.dtype)) * torch.rsqrt(var + self.eps).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2-D normalisation layer by name.

    ``instance``: :class:`InstanceNorm` (no affine parameters, no running statistics), as CycleGAN and
    pix2pix use it; it behaves identically in train and eval mode, which keeps tiled inference and a
    batch of one valid. ``batch``: ``BatchNorm2d`` with affine parameters. ``none``: identity.
    """
    if kind == "instance":
        return InstanceNorm(channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {', '.join(NORM_KINDS)}, got {kind!r}")


def with_spectral_norm(module: ModuleT, enabled: bool = True, *, power_iterations: int = 1) -> ModuleT:
    """``module`` with its ``weight`` divided by its largest singular value (Miyato et al. 2018), if ``enabled``.

    Spectral norm bounds how fast a layer's output can change with its input (Lipschitz constant 1), which
    keeps a critic's gradients useful to the generator without batch norm. The singular value is estimated
    by ``power_iterations`` power-iteration steps per training forward (the vectors ``_u``/``_v`` are buffers,
    so EMA and checkpoints carry them); in eval mode the last estimate is used. The state dict stores
    ``parametrizations.weight.original`` instead of ``weight``: fold it with :func:`fold_spectral_norm`
    before exporting an inference network.
    """
    if not enabled:
        return module
    return cast(ModuleT, _spectral_norm(module, n_power_iterations=power_iterations))


def fold_spectral_norm(module: ModuleT) -> ModuleT:
    """Replace every spectral-norm parametrization inside ``module`` by the plain normalised weight, in place.

    The result computes the same function (with the current singular-value estimate) and has ordinary
    ``weight`` keys, as an exported inference network should; training it further would no longer be
    constrained.
    """
    for layer in module.modules():
        if parametrize.is_parametrized(layer, "weight") and any(
                type(p).__name__ == "_SpectralNorm" for p in getattr(layer.parametrizations, "weight")):  # noqa: B009
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
    return module


def folded_state_dict(module: nn.Module) -> dict[str, Tensor]:
    """``module``'s state dict with every parametrized weight (spectral norm) computed into a plain ``weight``.

    Loads into the same architecture built without spectral norm, and leaves ``module`` untouched. Prefer it
    to :func:`fold_spectral_norm` on a ``copy.deepcopy`` of a network: a copy shares the parametrized layer
    *classes* with its original, and removing the parametrization from the copy breaks the original.
    """
    training = module.training
    module.eval()  # the last singular-value estimate, without a power-iteration step
    try:
        with torch.no_grad():
            state = {key: value for key, value in module.state_dict().items() if ".parametrizations." not in f".{key}"}
            for prefix, layer in module.named_modules():
                if parametrize.is_parametrized(layer, "weight"):
                    state[f"{prefix}.weight" if prefix else "weight"] = layer.weight.detach().clone()
    finally:
        module.train(training)
    return state


def conv_bias(kind: str) -> bool:
    """Whether a conv followed by norm ``kind`` needs its own bias (batch norm's shift makes it redundant)."""
    return kind != "batch"


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialise conv weights from N(0, std) and norm scales from N(1, std), biases to zero; returns ``module``.

    This is the initialisation of the DCGAN, pix2pix and CycleGAN papers; PyTorch's default (Kaiming
    uniform) also trains, but this one reproduces the published recipes more closely.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            # A parametrized weight (spectral norm) is computed; initialise the tensor it is computed from.
            parametrized = parametrize.is_parametrized(layer, "weight")
            weight = getattr(layer.parametrizations, "weight").original if parametrized else layer.weight  # noqa: B009
            nn.init.normal_(cast(Tensor, weight), 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d | nn.InstanceNorm2d | nn.GroupNorm) and layer.weight is not None:
            nn.init.normal_(layer.weight, 1.0, std)
            nn.init.zeros_(layer.bias)
    return module


def count_parameters(module: nn.Module) -> int:
    """Number of parameters of ``module`` (trainable or not)."""
    return sum(p.numel() for p in module.parameters())
