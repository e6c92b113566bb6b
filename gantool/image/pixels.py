"""``Image``: decoded pixels in gantool's one convention, the type every layer passes around (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Image:
    """Decoded pixels in gantool's one convention, plus what the source file stored.

    ``color`` is (H, W, 3) RGB or (H, W, 1) gray, float32 in [0, 1]; ``alpha`` is (H, W, 1) float32 in
    [0, 1] or None; ``bit_depth`` is 8, 16 or 32 (float) and lets ``write_image`` keep the source depth.
    """

    color: np.ndarray
    alpha: np.ndarray | None = None
    bit_depth: int = 8

    def __post_init__(self) -> None:
        self.color = _float_pixels(self.color, "color", (1, 3))
        if self.alpha is not None:
            self.alpha = _float_pixels(self.alpha, "alpha", (1,))
            if self.alpha.shape[:2] != self.color.shape[:2]:
                raise ValueError(f"alpha is {self.alpha.shape[:2]} but color is {self.color.shape[:2]}")
        if self.bit_depth not in (8, 16, 32):
            raise ValueError(f"bit_depth must be 8, 16 or 32, got {self.bit_depth!r}")

    def resized_nearest(self, height: int, width: int) -> Image:
        """A copy of ``height x width`` pixels by nearest-neighbour sampling (colour and alpha); a binary
        mask stays binary, which is why masks of another size are resized this way."""
        rows = np.minimum((np.arange(height) + 0.5) * self.height / height, self.height - 1).astype(np.intp)
        cols = np.minimum((np.arange(width) + 0.5) * self.width / width, self.width - 1).astype(np.intp)
        alpha = None if self.alpha is None else self.alpha[rows][:, cols]
        return Image(self.color[rows][:, cols], alpha, self.bit_depth)

    @property
    def height(self) -> int:
        return int(self.color.shape[0])

    @property
    def width(self) -> int:
        return int(self.color.shape[1])

    @property
    def is_gray(self) -> bool:
        return self.color.shape[2] == 1

    @property
    def mode(self) -> str:
        """Pillow-style name of the layout: "L", "LA", "RGB" or "RGBA"."""
        return ("L" if self.is_gray else "RGB") + ("" if self.alpha is None else "A")

    def rgb(self) -> np.ndarray:
        """(H, W, 3) color, gray repeated: for code that only handles RGB."""
        return np.repeat(self.color, 3, axis=2) if self.is_gray else self.color


def _float_pixels(array: Any, name: str, channels: tuple[int, ...]) -> np.ndarray:
    """Reject integer pixels: their range is ambiguous, so the caller must scale them to [0, 1] first."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"Image.{name} must be float in [0, 1], got {array.dtype} (divide by 255 or 65535 first)")
    if array.ndim != 3 or array.shape[2] not in channels:
        raise ValueError(f"Image.{name} must be (H, W, C) with C in {channels}, got shape {array.shape}")
    return array.astype(np.float32, copy=False)
