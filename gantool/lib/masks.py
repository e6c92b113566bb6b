"""Random hole masks for training and evaluating inpainting: LaMa's presets, DeepFill v2 strokes, boxes.

Every generator takes a ``numpy.random.Generator`` and a size and returns an ``(H, W)`` bool array,
True = hole (the polarity of OpenCV, LaMa and IOPaint), so a seed gives the same mask on every machine.
Parameters are the published ones at 256 pixels (``docs/inpaint.md`` lists them) and scale with the
shorter side, so a 64-pixel mask looks like a shrunken 256-pixel one.

:func:`generate_mask` draws a union of masks from one family until its hole ratio lands in a range
(rejection sampling), which is how the evaluation buckets and ``--hole-ratio`` are met. Strokes are
rasterised here as capsules (disc-capped segments) in numpy, so this module needs no OpenCV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["BOX", "FAMILIES", "LAMA_PRESETS", "LamaPreset", "MaskFamily", "box_mask", "deepfill_strokes",
           "draw_segment", "generate_mask", "hole_ratio", "lama_mask"]

MaskFamily = Literal["lama-thick", "lama-medium", "lama-thin", "strokes", "box", "mixed"]
FAMILIES: tuple[str, ...] = ("lama-thick", "lama-medium", "lama-thin", "strokes", "box", "mixed")
#: ``mixed``: LaMa thick / medium / thin with the probabilities of protocol inpaint-kodak256-v1.
MIXED_FAMILIES = ("lama-thick", "lama-medium", "lama-thin")
MIXED_WEIGHTS = (0.5, 0.35, 0.15)
_REFERENCE_SIDE = 256


@dataclass(frozen=True)
class LamaPreset:
    """One of LaMa's ``configs/data_gen/random_*_256`` presets (lengths in pixels at 256)."""

    min_times: int
    max_times: int
    max_width: int
    max_len: int
    max_angle: int
    box_proba: float = 0.0
    margin: int = 0
    box_min: int = 0
    box_max: int = 0
    box_max_times: int = 0


LAMA_PRESETS = {
    "lama-thick": LamaPreset(1, 5, 100, 200, 4, 0.3, 10, 30, 150, 3),
    "lama-medium": LamaPreset(4, 5, 50, 100, 4, 0.3, 0, 10, 50, 5),
    "lama-thin": LamaPreset(4, 50, 10, 40, 4),
}
#: The ``box`` family: LaMa thick's boxes alone.
BOX = LAMA_PRESETS["lama-thick"]


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels."""
    return float(np.count_nonzero(mask)) / max(1, mask.size)


def draw_segment(mask: np.ndarray, start: tuple[float, float], end: tuple[float, float], width: float) -> None:
    """Mark every pixel within ``width / 2`` of the segment ``start``-``end`` (x, y); in place."""
    h, w = mask.shape
    radius = max(width / 2.0, 0.5)
    (x0, y0), (x1, y1) = start, end
    left, right = max(0, int(math.floor(min(x0, x1) - radius))), min(w, int(math.ceil(max(x0, x1) + radius)) + 1)
    top, bottom = max(0, int(math.floor(min(y0, y1) - radius))), min(h, int(math.ceil(max(y0, y1) + radius)) + 1)
    if left >= right or top >= bottom:
        return
    ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    t = np.zeros_like(xs) if length2 == 0 else np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0)
    distance2 = (xs - (x0 + t * dx)) ** 2 + (ys - (y0 + t * dy)) ** 2
    mask[top:bottom, left:right] |= distance2 <= radius * radius


def lama_mask(rng: np.random.Generator, size: tuple[int, int], preset: LamaPreset) -> np.ndarray:
    """One draw of LaMa's mixed generator: irregular polylines, or (``box_proba`` of the time) boxes."""
    h, w = size
    scale = min(h, w) / _REFERENCE_SIDE
    mask = np.zeros((h, w), bool)
    if preset.box_proba > 0 and rng.random() < preset.box_proba / (1.0 + preset.box_proba):
        return _boxes(rng, mask, preset, scale)
    for _ in range(int(rng.integers(preset.min_times, preset.max_times + 1))):
        x, y = float(rng.integers(0, w)), float(rng.integers(0, h))
        for segment in range(1 + int(rng.integers(0, 5))):
            angle = 0.01 + float(rng.integers(0, preset.max_angle))
            if segment % 2 == 0:
                angle = 2 * math.pi - angle
            length = (10 + float(rng.integers(0, preset.max_len))) * scale
            width = (5 + float(rng.integers(0, preset.max_width))) * scale
            end_x = min(max(x + length * math.sin(angle), 0.0), w - 1.0)
            end_y = min(max(y + length * math.cos(angle), 0.0), h - 1.0)
            draw_segment(mask, (x, y), (end_x, end_y), width)
            x, y = end_x, end_y
    return mask


def box_mask(rng: np.random.Generator, size: tuple[int, int], preset: LamaPreset = BOX) -> np.ndarray:
    """One to ``box_max_times`` rectangles with sides in ``[box_min, box_max)`` inside a ``margin``."""
    return _boxes(rng, np.zeros(size, bool), preset, min(size) / _REFERENCE_SIDE)


def _boxes(rng: np.random.Generator, mask: np.ndarray, preset: LamaPreset, scale: float) -> np.ndarray:
    h, w = mask.shape
    margin = int(preset.margin * scale)
    low, high = max(1, int(preset.box_min * scale)), max(2, int(preset.box_max * scale))
    for _ in range(int(rng.integers(1, preset.box_max_times + 1))):
        box_w, box_h = int(rng.integers(low, high)), int(rng.integers(low, high))
        box_w, box_h = min(box_w, w - 2 * margin - 1), min(box_h, h - 2 * margin - 1)
        if box_w < 1 or box_h < 1:
            continue
        left = int(rng.integers(margin, w - margin - box_w + 1))
        top = int(rng.integers(margin, h - margin - box_h + 1))
        mask[top : top + box_h, left : left + box_w] = True
    return mask


def deepfill_strokes(rng: np.random.Generator, size: tuple[int, int], *, with_box: bool = True) -> np.ndarray:
    """DeepFill v2's free-form brush strokes (1-3 strokes of 4-11 vertices, width 12-40 at 256 pixels),
    OR-ed with its training box (128 pixels at 256, shrunk by up to 16 per side) when ``with_box``."""
    h, w = size
    scale = min(h, w) / _REFERENCE_SIDE
    mask = np.zeros((h, w), bool)
    mean_step = math.sqrt(h * h + w * w) / 8
    for _ in range(int(rng.integers(1, 4))):
        vertices = int(rng.integers(4, 12))
        spread = 2 * math.pi / 15
        a_min, a_max = 2 * math.pi / 5 - rng.uniform(0, spread), 2 * math.pi / 5 + rng.uniform(0, spread)
        width = rng.uniform(12, 40) * scale
        x, y = float(rng.integers(0, w)), float(rng.integers(0, h))
        for index in range(vertices):
            angle = rng.uniform(a_min, a_max)
            if index % 2 == 0:
                angle = 2 * math.pi - angle
            step = float(np.clip(rng.normal(mean_step, mean_step // 2), 0, 2 * mean_step))
            end_x = min(max(x + step * math.cos(angle), 0.0), w - 1.0)
            end_y = min(max(y + step * math.sin(angle), 0.0), h - 1.0)
            draw_segment(mask, (x, y), (end_x, end_y), width)
            x, y = end_x, end_y
    if with_box:
        box, delta = int(128 * scale), int(16 * scale)
        box_h, box_w = min(box, h), min(box, w)
        top, left = int(rng.integers(0, h - box_h + 1)), int(rng.integers(0, w - box_w + 1))
        dy, dx = int(rng.integers(0, delta // 2 + 1)), int(rng.integers(0, delta // 2 + 1))
        mask[top + dy : top + box_h - dy, left + dx : left + box_w - dx] = True
    return mask


def _draw(rng: np.random.Generator, size: tuple[int, int], family: str) -> np.ndarray:
    if family == "mixed":
        family = MIXED_FAMILIES[int(rng.choice(len(MIXED_FAMILIES), p=np.asarray(MIXED_WEIGHTS) / sum(MIXED_WEIGHTS)))]
    if family in LAMA_PRESETS:
        return lama_mask(rng, size, LAMA_PRESETS[family])
    if family == "strokes":
        return deepfill_strokes(rng, size, with_box=False)
    if family == "box":
        return box_mask(rng, size)
    raise ValueError(f"unknown mask family {family!r}; choose one of {', '.join(FAMILIES)}")


def generate_mask(rng: np.random.Generator, size: tuple[int, int], family: str = "mixed",
                  ratio: tuple[float, float] = (0.0, 1.0), *, max_tries: int = 200) -> np.ndarray:
    """A mask of ``family`` whose hole ratio lies in ``[ratio[0], ratio[1])``, by rejection sampling.

    Each try unions draws (at most ``1 + floor(8 * high)``, as protocol inpaint-kodak256-v1) until the
    ratio reaches ``low``; a try that overshoots ``high`` starts again. After ``max_tries`` the closest
    mask seen is returned, so a range no family can reach still gives an answer (check it if it matters).
    """
    low, high = ratio
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"hole ratio range must satisfy 0 <= low < high <= 1, got {ratio}")
    best, best_gap = np.zeros(size, bool), math.inf
    max_draws = 1 + int(8 * high)
    for _ in range(max_tries):
        mask = np.zeros(size, bool)
        for _ in range(max_draws):
            mask |= _draw(rng, size, family)
            value = hole_ratio(mask)
            if value >= low:
                break
        if low <= value < high:
            return mask
        gap = low - value if value < low else value - high
        if gap < best_gap:
            best, best_gap = mask, gap
    return best
