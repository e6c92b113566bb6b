"""PatchNCE, the patch-wise contrastive loss of CUT (Park et al. 2020, "Contrastive Learning for Unpaired
Image-to-Image Translation"), and the small MLP head it projects features with.

Content is kept by contrast rather than by a cycle: a patch of the output ``G(x)`` must be more similar to
the patch of the input ``x`` at the same place (the positive) than to the input's other sampled patches
(the negatives). Both are read from the generator's own encoder (``ResnetGenerator(...)(x,
encode_only=True)``) at several depths, so the loss sees pixels, edges and parts. Per layer:

1. pick ``count`` random positions (the same ones in ``x`` and ``G(x)``; a different draw per layer);
2. project each position's feature vector with a 2-layer MLP and normalise it to unit length;
3. for every image, logits ``q_i . k_j / T`` between output patches ``q`` and input patches ``k``; the
   loss is the cross entropy of picking ``j = i`` (negatives come from the same image only, as in CUT).

The input side ``k`` is detached: only ``G(x)`` is pushed, and the head learns from the query side.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gantool.lib.nets.layers import init_weights


class PatchProjector(nn.Module):
    """One ``Linear(C, dim) - ReLU - Linear(dim, dim)`` head per feature layer (CUT's ``PatchSampleF``).

    Args:
        channels: Channels of each feature layer, in order (``ResnetGenerator.feature_channels``).
        dim: Size of the projected vectors (256 in the paper).
    """

    def __init__(self, channels: Sequence[int], dim: int = 256) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Sequential(nn.Linear(c, dim), nn.ReLU(True), nn.Linear(dim, dim))
                                   for c in channels)
        init_weights(self)

    def forward(self, samples: list[Tensor]) -> list[Tensor]:
        """``(N, C_l)`` patch vectors per layer to ``(N, dim)`` unit vectors per layer."""
        return [F.normalize(head(sample), dim=1) for head, sample in zip(self.heads, samples, strict=True)]


def sample_positions(features: Sequence[Tensor], count: int, generator: torch.Generator | None = None) -> list[Tensor]:
    """For each ``(B, C, H, W)`` map, ``min(count, H * W)`` distinct flat positions (random, shared by the batch)."""
    positions = []
    for feature in features:
        size = feature.shape[-2] * feature.shape[-1]
        chosen = torch.randperm(size, generator=generator)[:min(count, size)]
        positions.append(chosen.to(feature.device))
    return positions


def gather_patches(features: Sequence[Tensor], positions: Sequence[Tensor]) -> list[Tensor]:
    """The feature vectors at ``positions``: ``(B, C, H, W)`` maps to ``(B * P, C)`` per layer (image-major)."""
    return [feature.flatten(2)[:, :, where].transpose(1, 2).flatten(0, 1)
            for feature, where in zip(features, positions, strict=True)]


def patch_nce(queries: Tensor, keys: Tensor, batch: int, temperature: float = 0.07) -> Tensor:
    """Mean InfoNCE of ``(B * P, D)`` unit query vectors against same-position keys, negatives within each image.

    ``keys`` are detached here. The result is a float32 scalar (``log P`` for random vectors, 0 when every
    query picks its own key with certainty).
    """
    q = queries.float().reshape(batch, -1, queries.shape[-1])
    k = keys.detach().float().reshape(batch, -1, keys.shape[-1])
    logits = torch.bmm(q, k.transpose(1, 2)) / temperature  # (B, P, P): row i's positive is column i
    target = torch.arange(q.shape[1], device=q.device).expand(batch, -1)
    return F.cross_entropy(logits.flatten(0, 1), target.flatten())


def patch_nce_loss(query_features: Sequence[Tensor], key_features: Sequence[Tensor], projector: nn.Module, *,
                   count: int = 256, temperature: float = 0.07, generator: torch.Generator | None = None) -> Tensor:
    """PatchNCE between the encoder features of outputs (queries) and of their inputs (keys), averaged over layers.

    Args:
        query_features: Feature maps of ``G(x)``, one ``(B, C_l, H_l, W_l)`` per layer.
        key_features: The same layers' maps of ``x`` (same shapes).
        projector: A :class:`PatchProjector` for those layers (or a DDP wrapper of one).
        count: Patches per layer and image.
        temperature: Softmax temperature.
        generator: RNG of the patch positions (default: torch's global one).
    """
    positions = sample_positions(key_features, count, generator)
    batch = key_features[0].shape[0]
    # One projector call over queries and keys of every layer (one forward per backward under DDP).
    both = projector([torch.cat([q, k]) for q, k in zip(gather_patches(query_features, positions),
                                                        gather_patches(key_features, positions), strict=True)])
    losses = []
    for projected in both:
        queries, keys = projected.chunk(2)
        losses.append(patch_nce(queries, keys, batch=batch, temperature=temperature))
    return torch.stack(losses).mean()
