"""docs/images/inpaint-coffee.jpg: the example photo with generated masks of 10-20, 30-40 and 50-60 % (one row each;
tinted red), TELEA r=5, a model and the original, side by side at half size.

    .venv/bin/python scripts/inpaint_figure.py \
        plugins/gantool_inpaint/models/inpaint.safetensors docs/images/inpaint-coffee.jpg
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from gantool.engine.export import load_model
from gantool.image.classical import classical_inpaint
from gantool.image.io import Image, read_image, write_image
from gantool.image.tensor import to_array, to_tensor
from gantool.lib.masks import generate_mask
from gantool_inpaint import SPEC
from gantool_inpaint.fill import overlay
from gantool_inpaint.options import InpaintOptions

model, out = sys.argv[1], sys.argv[2]
photo = read_image("examples/coffee.png").rgb()
loaded = load_model(model, SPEC)
image = to_tensor(photo)
gap = np.ones((photo.shape[0], 8, 3), np.float32)
rows = []
for seed, bucket in zip((1000, 1002, 1004), ((0.1, 0.2), (0.3, 0.4), (0.5, 0.6)), strict=True):
    holes = generate_mask(np.random.default_rng(seed), photo.shape[:2], "mixed", bucket)
    mask = torch.from_numpy(holes).float()[None, None]
    with torch.no_grad():
        filled = loaded.task.predict(loaded.networks, {"image": image, "mask": mask}, InpaintOptions(dilate=0))
    telea = classical_inpaint(photo, holes, "telea", 5)
    panels = [to_array(overlay(image, mask)), telea, to_array(filled), photo]
    rows.append(np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1))
    print(f"row {len(rows)}: hole ratio {holes.mean():.3f}")
spacer = np.ones((8, rows[0].shape[1], 3), np.float32)
grid = np.concatenate([r for row in rows for r in (row, spacer)][:-1], axis=0)
write_image(out, Image(grid[::2, ::2].copy()), quality=90)
print(out)
