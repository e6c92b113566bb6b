"""SAGAN's self-attention block (Zhang, Goodfellow, Metaxas and Odena 2019), as the official code builds it.

For a feature map ``x`` of ``C`` channels and ``N = H * W`` positions: queries are a 1x1 conv to ``C/8``;
keys (``C/8``) and values (``C/2``) are 1x1 convs followed by a 2x2 max-pool, so each position attends to
``N/4`` pooled positions; the attended values go through a 1x1 conv back to ``C`` and are added to ``x``
with a learned gain ``gamma`` that starts at 0. At initialisation the block is the identity, and training
decides how much global context to mix in (watch ``gamma``: near 0 means the block is unused).

Attention is global: every output position depends on the whole map, so a network with this block is not
tile-invariant (tasks using it set ``Task.tileable = False``), and memory grows as ``N^2 / 4`` floats per
image: 16 MiB at a 64x64 map, 4 GiB at 256x256. :data:`MAX_SIDE` bounds the maps it accepts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantool.lib.nets.layers import with_spectral_norm

#: Largest feature-map side the block accepts (64x64: 16 MiB of attention weights per image in fp32).
MAX_SIDE = 64


def attention_bytes(side: int, dtype_bytes: int = 4) -> int:
    """Memory of one image's attention matrix at a ``side`` x ``side`` map (pooled keys)."""
    positions = side * side
    return positions * (positions // 4) * dtype_bytes


class SelfAttention2d(nn.Module):
    """``x + gamma * out(attend(query(x), pool(key(x)), pool(value(x))))``; ``gamma`` starts at 0.

    Args:
        channels: ``C`` of the input; at least 8 (queries and keys have ``C // 8`` channels).
        spectral_norm: Spectral norm on the four 1x1 convs (SAGAN uses it in generator and critic).
    """

    def __init__(self, channels: int, *, spectral_norm: bool = False) -> None:
        super().__init__()
        if channels < 8:
            raise ValueError(f"self-attention needs at least 8 channels, got {channels}")

        def conv(cin: int, cout: int) -> nn.Module:
            return with_spectral_norm(nn.Conv2d(cin, cout, 1, bias=False), spectral_norm)

        self.query = conv(channels, channels // 8)
        self.key = conv(channels, channels // 8)
        self.value = conv(channels, channels // 2)
        self.out = conv(channels // 2, channels)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"self-attention pools keys 2x2 and needs even sides, got {h}x{w}")
        if max(h, w) > MAX_SIDE:
            raise ValueError(f"self-attention on a {h}x{w} map would need {attention_bytes(max(h, w)) >> 20} MiB "
                             f"per image; place it at a map of at most {MAX_SIDE}x{MAX_SIDE}")
        query = self.query(x).flatten(2).transpose(1, 2)                  # (B, N, C/8)
        key = F.max_pool2d(self.key(x), 2).flatten(2)                      # (B, C/8, N/4)
        value = F.max_pool2d(self.value(x), 2).flatten(2)                  # (B, C/2, N/4)
        weights = torch.softmax(torch.bmm(query, key), dim=-1)             # (B, N, N/4), no 1/sqrt(d) (SAGAN's)
        attended = torch.bmm(value, weights.transpose(1, 2)).view(b, c // 2, h, w)
        return x + self.gamma * self.out(attended)

    def extra_repr(self) -> str:
        return f"gamma={float(self.gamma.detach()):.4f}"
