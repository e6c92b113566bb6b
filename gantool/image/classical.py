"""Classical (non-learned) hole filling and hole regions, with OpenCV: the inpainting baselines and helpers.

The second module allowed to import OpenCV (after :mod:`gantool.image.io`): ``cv2.inpaint`` (Telea 2004's
fast marching, and Navier-Stokes) is the baseline every learned inpainting model is measured against and
the prior the built-in one refines, and connected components find the hole regions a large image is
cropped around. Both work on this package's conventions: (H, W, C) float32 RGB in [0, 1] and (H, W)
bool masks, True = hole. OpenCV is imported lazily, as in ``io``.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import numpy as np

__all__ = ["ClassicalMethod", "classical_inpaint", "hole_boxes"]

ClassicalMethod = Literal["telea", "ns"]


@functools.cache
def _cv2() -> Any:
    import cv2

    return cv2


def classical_inpaint(image: np.ndarray, hole: np.ndarray, method: ClassicalMethod = "telea",
                      radius: int = 5) -> np.ndarray:
    """``image`` (H, W, C) float in [0, 1] with ``hole`` (H, W) bool filled by OpenCV, as float32.

    The fill runs on 8-bit pixels (what ``cv2.inpaint`` takes for colour), so the result is quantised to
    256 levels everywhere; composite it into the original where precision matters. Channels other than
    1 and 3 are filled one by one.
    """
    cv2 = _cv2()
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    pixels = np.clip(np.rint(np.asarray(image, np.float32) * 255.0), 0, 255).astype(np.uint8)
    mask = np.ascontiguousarray(hole, dtype=np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] not in (1, 3):
        planes = [cv2.inpaint(np.ascontiguousarray(pixels[..., c]), mask, radius, flag) for c in range(pixels.shape[2])]
        filled = np.stack(planes, axis=-1)
    else:
        filled = cv2.inpaint(np.ascontiguousarray(pixels), mask, radius, flag).reshape(pixels.shape)
    return filled.astype(np.float32) / 255.0


def hole_boxes(hole: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(top, left, bottom, right)`` (exclusive ends) of the 8-connected hole regions,
    largest first."""
    cv2 = _cv2()
    count, _, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(hole, dtype=np.uint8), connectivity=8)
    boxes = [(int(y), int(x), int(y + h), int(x + w), int(area)) for x, y, w, h, area in stats[1:count]]
    return [box[:4] for box in sorted(boxes, key=lambda b: -b[4])]
