"""Pack the super-resolution training images as lossless WebP, small enough to send to a GPU machine.

The bundled superres models were trained on this pack: T91 (91 images), General100 (100) and the first 100
BSD200 images in sorted file-name order, re-encoded losslessly (every pixel is checked to decode identically).
Run: `.venv/bin/python scripts/pack_sr_data.py ../shared/data/sr/train .srdata/train`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from gantool.image.io import Image, read_image, write_image

SUBSETS = {"T91": None, "General100": None, "BSD200": 100}  # folder -> how many images (None: all)


def main(source: Path, target: Path) -> None:
    count = 0
    for folder, limit in SUBSETS.items():
        for path in sorted((source / folder).glob("*.png"))[:limit]:
            image = read_image(path)
            out = write_image(target / folder / f"{path.stem}.webp", Image(color=image.color), quality=100)
            if not np.array_equal(np.round(read_image(out).color * 255), np.round(image.color * 255)):
                raise SystemExit(f"{path}: lossless WebP round trip changed pixels")
            count += 1
    print(f"packed {count} images into {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
