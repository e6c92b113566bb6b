"""Tests for gantool.imagetensor: layout, dtype, copying and clipping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gantool.image.tensor import to_array, to_tensor


def test_round_trip_keeps_pixels_and_layout() -> None:
    array = np.random.default_rng(0).random((4, 5, 3), dtype=np.float32)
    tensor = to_tensor(array)
    assert tensor.shape == (1, 3, 4, 5) and tensor.dtype == torch.float32
    assert tensor[0, 2, 1, 3].item() == array[1, 3, 2]
    back = to_array(tensor)
    assert back.shape == (4, 5, 3) and back.dtype == np.float32
    np.testing.assert_array_equal(back, array)
    np.testing.assert_array_equal(to_array(tensor[0]), array)


def test_gray_and_strided_arrays() -> None:
    gray = np.random.default_rng(1).random((4, 5, 1)).astype(np.float64)[::-1]  # float64, negative strides
    tensor = to_tensor(gray)
    assert tensor.shape == (1, 1, 4, 5) and tensor.dtype == torch.float32
    np.testing.assert_allclose(to_array(tensor), gray, rtol=1e-6)


def test_no_memory_is_shared() -> None:
    array = np.zeros((2, 2, 1), dtype=np.float32)
    tensor = to_tensor(array)
    tensor += 1
    assert array.max() == 0
    back = to_array(tensor)
    back -= 1
    assert tensor.min().item() == 1


def test_to_array_clips_and_removes_nan() -> None:
    tensor = torch.tensor([[[-1.0, 0.5, 2.0, float("nan")]]], dtype=torch.float16, requires_grad=False)
    np.testing.assert_array_equal(to_array(tensor)[0, :, 0], [0.0, 0.5, 1.0, 0.0])


def test_to_array_accepts_tensors_that_need_grad() -> None:
    tensor = torch.full((1, 3, 2, 2), 0.25, requires_grad=True)
    assert to_array(tensor * 2).max() == pytest.approx(0.5)


@pytest.mark.parametrize("array", [np.zeros((2, 2), np.float32), np.zeros((2, 2, 3), np.uint8)])
def test_to_tensor_rejects_wrong_arrays(array: np.ndarray) -> None:
    with pytest.raises(ValueError):
        to_tensor(array)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (4, 4), (1, 1, 3, 4, 4)])
def test_to_array_rejects_wrong_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        to_array(torch.zeros(shape))
