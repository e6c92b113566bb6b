"""Make docs/images/colorize-coffee.png: the example photo made gray, colourised by `gantool colorize`, original.

The gray input is the photo's Rec. 601 luma rounded to 8 bits (what `gantool eval colorize` uses); the
colourised panel comes from the real command line, so the figure shows what a user gets.
Run: `.venv/bin/python scripts/colorize_figure.py [--model colorize]`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from gantool.image.color import LUMA
from gantool.image.io import Image, read_image, write_image
from gantool.image.tensor import to_array, to_tensor

ROOT = Path(__file__).resolve().parent.parent
PANEL_WIDTH = 400  # each panel is shrunk to this width for the page


def shrink(color: np.ndarray, width: int) -> np.ndarray:
    """Area-averaged shrink to ``width`` (through torch: only gantool.image.io touches OpenCV)."""
    import torch.nn.functional as F

    height = round(color.shape[0] * width / color.shape[1])
    small = F.interpolate(to_tensor(color), size=(height, width), mode="area")
    return to_array(small)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="colorize")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "colorize-coffee.png")
    args = parser.parse_args()

    original = read_image(ROOT / "examples" / "coffee.png").color
    luma = np.rint((original @ LUMA) * 255) / 255
    with tempfile.TemporaryDirectory() as work:
        gray_path = write_image(Path(work) / "gray.png", Image(luma[..., None].astype(np.float32)))
        subprocess.run([sys.executable, "-m", "gantool", "colorize", str(gray_path), "--model", args.model,
                        "-o", str(Path(work) / "out"), "--device", "cpu"], check=True)
        colored = read_image(Path(work) / "out" / "gray.png").color
    panels = [np.repeat(luma[..., None], 3, axis=2), colored, original]
    figure = np.concatenate([shrink(p.astype(np.float32), PANEL_WIDTH) for p in panels], axis=1)
    print(write_image(args.out, Image(figure)))


if __name__ == "__main__":
    main()
