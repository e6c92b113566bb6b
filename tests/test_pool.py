"""ImagePool: the reference fill-then-swap rule, global-RNG determinism, and an exact state round trip."""

from __future__ import annotations

import io

import pytest
import torch

from gantool.lib.pool import ImagePool


def batch(value: float, n: int = 1) -> torch.Tensor:
    return torch.full((n, 3, 4, 4), value)


def test_fills_first_and_returns_the_inputs() -> None:
    pool = ImagePool(3)
    out = pool.query(torch.cat([batch(1), batch(2)]))
    assert torch.equal(out, torch.cat([batch(1), batch(2)]))
    assert len(pool) == 2
    pool.query(batch(3, 2))
    assert len(pool) == 3  # never grows past its size


def test_full_pool_swaps_about_half_the_time() -> None:
    torch.manual_seed(0)
    pool = ImagePool(4)
    pool.query(torch.cat([batch(v) for v in range(4)]))
    swapped = 0
    for step in range(200):
        value = 100.0 + step
        out = pool.query(batch(value))
        if out[0, 0, 0, 0].item() != value:
            swapped += 1
            assert out[0, 0, 0, 0].item() < value  # an older image
    assert 70 < swapped < 130
    assert len(pool) == 4


def test_size_zero_is_a_pass_through() -> None:
    pool = ImagePool(0)
    images = torch.rand(2, 3, 4, 4, requires_grad=True)
    out = pool(images)
    assert torch.equal(out, images) and not out.requires_grad and len(pool) == 0


def test_same_seed_same_draws() -> None:
    def run() -> torch.Tensor:
        torch.manual_seed(7)
        pool = ImagePool(2)
        return torch.cat([pool.query(torch.rand(1, 3, 2, 2)) for _ in range(20)])

    assert torch.equal(run(), run())


def test_stored_images_are_copies() -> None:
    pool = ImagePool(2)
    images = batch(1.0)
    pool.query(images)
    images.fill_(5.0)
    assert pool.images[0].max().item() == 1.0


def test_state_round_trip_resumes_exactly() -> None:
    torch.manual_seed(3)
    pool = ImagePool(5)
    for _ in range(8):
        pool.query(torch.rand(2, 3, 4, 4))
    buffer = io.BytesIO()
    torch.save(pool.state_dict(), buffer)
    rng = torch.get_rng_state()
    expected = [pool.query(torch.full((2, 3, 4, 4), float(i))) for i in range(10)]

    restored = ImagePool(5)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    torch.set_rng_state(rng)
    again = [restored.query(torch.full((2, 3, 4, 4), float(i))) for i in range(10)]
    assert all(torch.equal(a, b) for a, b in zip(expected, again, strict=True))


def test_load_refuses_another_size() -> None:
    with pytest.raises(ValueError, match="up to 3 images"):
        ImagePool(3).load_state_dict({"size": 50, "images": []})
