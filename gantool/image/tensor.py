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


def hwc_array(tensor: torch.Tensor, *, clean: bool = False) -> np.ndarray:
    """:func:`gantool.imagetensor.to_array` for a ``(1, C, H, W)`` result we own: in place, no full-size copy.

    ``to_array`` converts, clamps and transposes into three separate copies; for a 4096x4096 output each is
    201 MB in float32, which decided the peak memory. The stitched result (of ``tiled_apply`` or a task's
    ``postprocess``) belongs to nobody else, so here NaN is zeroed and values are clamped to [0, 1] in place,
    and the ``(H, W, C)`` array is a view of it (contiguous when the result is channels_last). A result that
    is not dense (an expanded tensor), not float32 or not on the CPU is copied first. Call it inside the
    ``torch.inference_mode()`` block that made the tensor (in-place updates of its tensors need it).

    ``clean``: the caller already zeroed NaN and clamped on the GPU, where it is ~100x cheaper; this skips
    the two passes over the host copy (13 ms for a 3072x2048 result on one CPU thread).
    """
    if tensor.ndim != 4 or tensor.shape[0] != 1:
        return to_array(tensor)  # its error message
    dense = tensor.is_contiguous() or tensor.is_contiguous(memory_format=torch.channels_last)
    if not dense or tensor.dtype != torch.float32 or tensor.device.type != "cpu":
        tensor = tensor.to("cpu", torch.float32).contiguous()
    if not clean:
        tensor = tensor.detach().nan_to_num_(nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0)
    return tensor.detach()[0].permute(1, 2, 0).numpy()
