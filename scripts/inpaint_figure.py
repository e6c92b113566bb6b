"""docs/images/inpaint-coffee.jpg: the example photo with a generated 30-40 % mask (tinted red), TELEA r=5, a model and
the original, side by side at half size.

    .venv/bin/python scripts/inpaint_figure.py \
        plugins/gantool_inpaint/models/inpaint-faces.safetensors docs/images/inpaint-coffee.jpg
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
holes = generate_mask(np.random.default_rng(1002), photo.shape[:2], "mixed", (0.3, 0.4))
image, mask = to_tensor(photo), torch.from_numpy(holes).float()[None, None]
loaded = load_model(model, SPEC)
with torch.no_grad():
    filled = loaded.task.predict(loaded.networks, {"image": image, "mask": mask}, InpaintOptions(dilate=0))
telea = classical_inpaint(photo, holes, "telea", 5)
panels = [to_array(overlay(image, mask)), telea, to_array(filled), photo]
gap = np.ones((photo.shape[0], 8, 3), np.float32)
row = np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)
write_image(out, Image(row[::2, ::2].copy()), quality=90)
print(out, f"hole ratio {holes.mean():.3f}")
