"""Make docs/images/superres-crops.png: bicubic vs superres-x4 vs superres-x4-gan on the example photo.

The photo (CC0, examples/coffee.png) is downscaled 4x with the MATLAB-style imresize, then upscaled back
by each method; the figure shows the same crop of each, next to the original.
Run: `.venv/bin/python scripts/superres_figure.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gantool.engine.export import load_model
from gantool.image.io import Image, read_image, write_image
from gantool.image.tensor import to_array, to_tensor
from gantool.plugin.manager import build_plugin_system
from gantool.weights import find_model_file
from gantool_superres.resize import imresize

ROOT = Path(__file__).resolve().parent.parent
CROP = (slice(240, 360), slice(470, 590))  # rows, columns of the full-size photo: wood grain
ZOOM = 2  # each crop is shown enlarged (nearest neighbour) so the texture is visible


def laplacian_variance(image: torch.Tensor) -> float:
    """Variance of the Laplacian of the luminance: a plain sharpness measure (higher means more fine detail)."""
    gray = image.mean(dim=1, keepdim=True)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    return float(torch.nn.functional.conv2d(gray, kernel).var())


def main() -> None:
    spec = build_plugin_system().registry.get("superres")
    original = to_tensor(read_image(ROOT / "examples" / "coffee.png").color)
    low = imresize(original, scale=0.25).clamp(0, 1)
    panels = [original, imresize(low, scale=4).clamp(0, 1)]
    for name in ("superres-x4", "superres-x4-gan"):
        model = load_model(find_model_file(name) or Path(name), spec, device=torch.device("cpu"))
        with torch.inference_mode():
            panels.append(model.task.predict(model.networks, low).clamp(0, 1))
    names = ("original", "bicubic", "superres-x4", "superres-x4-gan")
    for name, panel in zip(names, panels, strict=True):
        print(f"{name:16s} high-frequency energy (Laplacian variance x1e3, whole photo): "
              f"{laplacian_variance(panel) * 1e3:.3f}")
    crops = [to_array(panel)[CROP].repeat(ZOOM, axis=0).repeat(ZOOM, axis=1) for panel in panels]
    gap = np.ones((crops[0].shape[0], 4, 3), dtype=np.float32)
    row = np.concatenate([part for crop in crops for part in (crop, gap)][:-1], axis=1)
    target = ROOT / "docs" / "images" / "superres-crops.png"
    write_image(target, Image(color=row))
    print(f"wrote {target} (original | bicubic | superres-x4 | superres-x4-gan)")


if __name__ == "__main__":
    main()
