"""PatchNCE (gantool.lib.nce): the loss rewards matching patches, pushes only the queries, and samples positions."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gantool.lib.nce import PatchProjector, gather_patches, patch_nce, patch_nce_loss, sample_positions


def test_patch_nce_is_zero_for_matching_patches_and_log_p_for_unrelated_ones() -> None:
    torch.manual_seed(0)
    keys = F.normalize(torch.randn(2 * 64, 32), dim=1)
    matched = patch_nce(keys.clone(), keys, batch=2, temperature=0.01)
    unrelated = patch_nce(F.normalize(torch.randn(2 * 64, 32), dim=1), keys, batch=2, temperature=10.0)
    assert matched < 1e-3 and abs(float(unrelated) - math.log(64)) < 0.05
    # Negatives come from the same image only: shuffling patches *between* the two images changes the loss.
    swapped = torch.cat([keys[64:], keys[:64]])
    assert patch_nce(swapped, keys, batch=2, temperature=0.01) > 1.0


def test_only_the_queries_are_pushed() -> None:
    queries = torch.randn(16, 8, requires_grad=True)
    keys = torch.randn(16, 8, requires_grad=True)
    patch_nce(F.normalize(queries, dim=1), F.normalize(keys, dim=1), batch=1).backward()
    assert queries.grad is not None and queries.grad.abs().sum() > 0 and keys.grad is None


def test_positions_are_shared_by_the_batch_and_capped_by_the_map() -> None:
    small, large = torch.randn(2, 3, 4, 4), torch.randn(2, 5, 16, 16)
    positions = sample_positions([small, large], 32, torch.Generator().manual_seed(1))
    assert [len(p) for p in positions] == [16, 32] and len(set(positions[1].tolist())) == 32
    patches = gather_patches([small, large], positions)
    assert [tuple(p.shape) for p in patches] == [(32, 3), (64, 5)]
    where = int(positions[1][0])
    assert torch.equal(patches[1][32], large[1, :, where // 16, where % 16])  # image-major: image 1 starts at 32


def test_loss_of_a_feature_pyramid_through_the_projector_trains_the_heads() -> None:
    torch.manual_seed(0)
    projector = PatchProjector([3, 8], dim=16)
    source = [torch.randn(1, 3, 8, 8), torch.randn(1, 8, 4, 4)]
    same = patch_nce_loss([s.clone() for s in source], source, projector, count=16)
    other = patch_nce_loss([torch.randn_like(s) for s in source], source, projector, count=16)
    same.backward()
    assert same < other and all(p.grad is not None for p in projector.parameters())
    unit = projector([torch.randn(5, 3), torch.randn(5, 8)])
    assert all(torch.allclose(u.norm(dim=1), torch.ones(5)) for u in unit)
