"""Tests for gantool.engine.tiling: tiled == untiled, blending, shapes, OOM backoff, auto tile size."""

from __future__ import annotations

import itertools
import logging

import pytest
import torch
from torch import nn

from gantool.engine.tileplan import AUTO_TILE_MAX, free_device_bytes
from gantool.engine.tiling import (
    TilingOutOfMemoryError,
    _tile_starts,
    is_out_of_memory,
    tiled_apply,
    tiled_apply_with_backoff,
)
from gantool.errors import GantoolError


def _net(scale: int, c_in: int = 3, c_out: int = 3) -> nn.Module:
    """Random conv net with receptive radius 3 (three 3x3 convs), optionally a PixelShuffle upsampler."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(c_in, 8, 3, padding=1), nn.LeakyReLU(0.2)]
    layers += [nn.Conv2d(8, 8, 3, padding=1), nn.LeakyReLU(0.2)]
    layers += [nn.Conv2d(8, c_out * scale**2, 3, padding=1)]
    if scale > 1:
        layers.append(nn.PixelShuffle(scale))
    return nn.Sequential(*layers).eval()


def _image(b: int, c: int, h: int, w: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(1), dtype=dtype)


class _Counting:
    """Wraps fn, records input sizes, and raises an OOM when a tile has more than ``max_pixels`` pixels."""

    def __init__(self, fn, max_pixels: float = float("inf"), exc=torch.cuda.OutOfMemoryError) -> None:
        self.fn, self.max_pixels, self.exc, self.sizes = fn, max_pixels, exc, []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(x.shape[-2:]))
        if x.shape[-2] * x.shape[-1] > self.max_pixels:
            raise self.exc("CUDA out of memory. Tried to allocate 1.00 GiB (fake)")
        return self.fn(x)


@pytest.mark.parametrize("scale", [1, 4])
@pytest.mark.parametrize(
    ("h", "w", "tile"), [(37, 53, 24), (37, 53, 29), (64, 64, 40), (37, 53, 200), (100, 33, 48)]
)
def test_tiled_matches_untiled(scale: int, h: int, w: int, tile: int) -> None:
    net, img = _net(scale), _image(2, 3, h, w)
    with torch.no_grad():
        ref = net(img)
    out = tiled_apply(net, img, scale=scale, tile=tile, overlap=16)
    assert out.shape == (2, 3, h * scale, w * scale)
    assert (out - ref).abs().max().item() < 1e-4


def test_tiled_channel_change_and_several_tiles_are_used() -> None:
    net, img = _net(2, c_in=4, c_out=1), _image(1, 4, 70, 90)
    fn = _Counting(net)
    out = tiled_apply(fn, img, scale=2, tile=32, overlap=12)  # exact: receptive radius 3 <= 12 // 4
    assert out.shape == (1, 1, 140, 180)
    assert len(fn.sizes) > 4 and set(fn.sizes) == {(32, 32)}
    with torch.no_grad():
        assert torch.allclose(out, net(img), atol=1e-4)


@pytest.mark.parametrize("tile", [0, 64, 500])
def test_single_call_when_image_fits(tile: int) -> None:
    fn = _Counting(_net(1))
    tiled_apply(fn, _image(2, 3, 37, 64), tile=tile)
    assert fn.sizes == [(37, 64)]


@pytest.mark.parametrize("tile", [0, 16])
def test_output_follows_input_dtype_and_device(tile: int) -> None:
    img = _image(1, 3, 37, 41, dtype=torch.float64)
    out = tiled_apply(lambda x: x * 2, img, tile=tile, overlap=4, device=torch.device("cpu"))
    assert out.dtype == torch.float64 and out.device == img.device
    assert torch.allclose(out, img * 2, atol=1e-6)
    half = tiled_apply(lambda x: x * 2, img, tile=tile, overlap=4, device="cpu", out_dtype=torch.float16)
    assert half.dtype == torch.float16


@pytest.mark.parametrize("overlap", [0, 1, 5, 16])
@pytest.mark.parametrize("scale", [1, 3])
def test_blending_normalisation_reproduces_pointwise_fn(overlap: int, scale: int) -> None:
    """A pointwise fn (identity / nearest upsampling) is reproduced exactly: weights sum right, edges kept."""
    img = _image(2, 3, 45, 61)
    fn = nn.Upsample(scale_factor=scale, mode="nearest") if scale > 1 else nn.Identity()
    out = tiled_apply(fn, img, scale=scale, tile=20, overlap=overlap)
    assert torch.allclose(out, fn(img), atol=1e-6)
    ones = tiled_apply(lambda x: torch.ones_like(fn(x)), img, scale=scale, tile=20, overlap=overlap)
    assert torch.allclose(ones, torch.ones_like(ones), atol=1e-6)  # no darkening at edges or seams


@pytest.mark.parametrize(("size", "tile", "overlap"), [(53, 24, 16), (37, 29, 16), (64, 32, 8), (100, 48, 0)])
def test_tile_starts_cover_image(size: int, tile: int, overlap: int) -> None:
    starts = _tile_starts(size, tile, overlap)
    assert starts[0] == 0 and starts[-1] == size - tile
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(0 < g <= tile - overlap for g in gaps)
    assert _tile_starts(20, tile, overlap) == [0]


def test_invalid_arguments() -> None:
    img = _image(1, 3, 40, 40)
    with pytest.raises(ValueError, match="overlap"):
        tiled_apply(nn.Identity(), img, tile=16, overlap=16)
    with pytest.raises(ValueError, match="B, C, H, W"):
        tiled_apply(nn.Identity(), img[0], tile=16)
    with pytest.raises(ValueError, match="scale=2"):
        tiled_apply(nn.Identity(), img, scale=2, tile=16, overlap=4)


def test_oom_exception_class_exists_on_cpu_build() -> None:
    assert issubclass(torch.cuda.OutOfMemoryError, RuntimeError)
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_a_real_cpu_allocation_failure_counts_as_out_of_memory() -> None:
    """The CPU allocator words it differently from CUDA; tiling must still back off instead of dying."""
    with pytest.raises(RuntimeError) as caught:
        torch.empty(2**62, dtype=torch.uint8)  # 4 EiB: refused by the allocator, nothing is touched
    assert is_out_of_memory(caught.value)
    assert is_out_of_memory(MemoryError())


@pytest.mark.parametrize("exc", [torch.cuda.OutOfMemoryError, RuntimeError])
def test_backoff_from_whole_image_halves_tile(exc, caplog: pytest.LogCaptureFixture) -> None:
    net, img = _net(2), _image(2, 3, 64, 80)
    fn = _Counting(net, max_pixels=40 * 40, exc=exc)
    with caplog.at_level(logging.WARNING, logger="gantool.engine.tiling"):
        out = tiled_apply_with_backoff(fn, img, scale=2, tile=0, overlap=16)
    assert fn.sizes[0] == (64, 80) and fn.sizes[1:] and set(fn.sizes[1:]) == {(32, 40)}  # half on each axis
    assert "32x40px" in caplog.text
    with torch.no_grad():
        assert (out - net(img)).abs().max().item() < 1e-4


def test_backoff_from_given_tile_and_clamps_overlap() -> None:
    net, img = _net(1), _image(1, 3, 150, 150)
    fn = _Counting(net, max_pixels=40 * 40)
    out = tiled_apply_with_backoff(fn, img, tile=128, overlap=32)
    assert set(fn.sizes) == {(128, 128), (64, 64), (32, 32)}
    with torch.no_grad():
        assert (out - net(img)).abs().max().item() < 1e-4  # overlap clamped to 16: radius 3 <= 16 // 4


def test_backoff_gives_clear_error_at_min_tile() -> None:
    fn = _Counting(_net(1), max_pixels=0)
    with pytest.raises(TilingOutOfMemoryError, match="even with 32x32px tiles") as info:
        tiled_apply_with_backoff(fn, _image(1, 3, 64, 80), tile=0)
    assert isinstance(info.value, GantoolError)
    assert isinstance(info.value.__cause__, torch.cuda.OutOfMemoryError)
    assert list(dict.fromkeys(fn.sizes)) == [(64, 80), (32, 40), (32, 32)]


def test_backoff_does_not_retry_other_errors() -> None:
    fn = _Counting(_net(1), max_pixels=0, exc=ValueError)
    with pytest.raises(ValueError, match="fake"):
        tiled_apply_with_backoff(fn, _image(1, 3, 64, 80))
    assert len(fn.sizes) == 1


def test_free_device_bytes_reads_cpu_memory() -> None:
    free = free_device_bytes(torch.device("cpu"))
    assert 0 < free < 1 << 50


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_tiles_on_gpu_image_on_cpu_with_real_oom() -> None:
    net, img = _net(4).cuda(), _image(2, 3, 96, 120)
    huge = torch.cuda.get_device_properties(0).total_memory * 4

    def fn(x: torch.Tensor) -> torch.Tensor:
        assert x.is_cuda
        if x.shape[-2] * x.shape[-1] > 48 * 48:
            torch.empty(huge, dtype=torch.uint8, device="cuda")  # a real allocator OOM, using no memory
        return net(x)

    out = tiled_apply_with_backoff(fn, img, scale=4, tile=0, device="cuda")
    assert out.device.type == "cpu" and out.shape == (2, 3, 384, 480)
    with torch.no_grad():
        assert (out - net(img.cuda()).cpu()).abs().max().item() < 1e-3
    assert free_device_bytes(torch.device("cuda")) > 0 and AUTO_TILE_MAX > 0
