"""The one bridge between io's (H, W, C) float32 numpy arrays and torch's (N, C, H, W) tensors.

Keeping the layout change here means models never see HWC and io never imports torch.
"""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W, C) float array in [0, 1] -> (1, C, H, W) float32 tensor on the CPU, never sharing memory."""
    if array.ndim != 3:
        raise ValueError(f"expected an (H, W, C) array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected float pixels in [0, 1], got {array.dtype} (scale integer pixels first)")
    chw = np.array(array.transpose(2, 0, 1), dtype=np.float32, order="C", copy=True)
    return torch.from_numpy(chw).unsqueeze(0)


def to_array(tensor: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) or (C, H, W) tensor -> (H, W, C) float32 array clipped to [0, 1] (NaN becomes 0)."""
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected a batch of one image, got shape {tuple(tensor.shape)}")
        tensor = tensor[0]
    if tensor.ndim != 3:
        raise ValueError(f"expected a (1, C, H, W) or (C, H, W) tensor, got shape {tuple(tensor.shape)}")
    values = torch.nan_to_num(tensor.detach().to("cpu", torch.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return values.clamp(0.0, 1.0).permute(1, 2, 0).contiguous().numpy()
