"""Make docs/images/colorize-coffee.png (and colorize-kodak.jpg): gray, colourised by `gantool colorize`, original.

The gray input is the photo's Rec. 601 luma rounded to 8 bits (what `gantool eval colorize` uses); the
colourised panels come from the real command line, so the figures show what a user gets.
Run: `.venv/bin/python scripts/colorize_figure.py [--model colorize] [--kodak ../shared/data/photos/Kodak24]`;
with ``--kodak`` it also writes a grid of six Kodak photos (one row each: gray, colourised, original).
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
KODAK = ("kodim03", "kodim05", "kodim14", "kodim20", "kodim22", "kodim23")  # landscape, varied, colourful
KODAK_WIDTH = 256


def shrink(color: np.ndarray, width: int) -> np.ndarray:
    """Area-averaged shrink to ``width`` (through torch: only gantool.image.io touches OpenCV)."""
    import torch.nn.functional as F

    height = round(color.shape[0] * width / color.shape[1])
    small = F.interpolate(to_tensor(color), size=(height, width), mode="area")
    return to_array(small)


def colorize(originals: dict[str, np.ndarray], model: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (gray luma as RGB, colourised) through the `gantool colorize` command line."""
    grays = {name: np.rint((original @ LUMA) * 255) / 255 for name, original in originals.items()}
    with tempfile.TemporaryDirectory() as work:
        for name, luma in grays.items():
            write_image(Path(work) / "in" / f"{name}.png", Image(luma[..., None].astype(np.float32)))
        subprocess.run([sys.executable, "-m", "gantool", "colorize", str(Path(work) / "in"), "--model", model,
                        "-o", str(Path(work) / "out"), "--device", "cpu"], check=True)
        return {name: (np.repeat(luma[..., None], 3, axis=2), read_image(Path(work) / "out" / f"{name}.png").color)
                for name, luma in grays.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="colorize")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "colorize-coffee.png")
    parser.add_argument("--kodak", type=Path, help="Kodak24 folder: also write docs/images/colorize-kodak.jpg")
    args = parser.parse_args()

    original = read_image(ROOT / "examples" / "coffee.png").color
    gray, colored = colorize({"coffee": original}, args.model)["coffee"]
    figure = np.concatenate([shrink(p.astype(np.float32), PANEL_WIDTH) for p in (gray, colored, original)], axis=1)
    print(write_image(args.out, Image(figure)))
    if args.kodak:
        originals = {name: read_image(args.kodak / f"{name}.png").color for name in KODAK}
        results = colorize(originals, args.model)
        rows = [np.concatenate([shrink(p.astype(np.float32), KODAK_WIDTH) for p in (*results[name], originals[name])],
                               axis=1) for name in KODAK]
        print(write_image(args.out.with_name("colorize-kodak.jpg"), Image(np.concatenate(rows, axis=0))))


if __name__ == "__main__":
    main()
