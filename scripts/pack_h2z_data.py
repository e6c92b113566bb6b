"""Pack the full horse2zebra training set as WebP (quality 80) to fit a GPU machine's 64 MiB transfer limit.

The 1067 + 1334 JPEGs take 107 MB; at WebP quality 80 they take 44 MB (mean absolute change about 3.6 of 255
grey levels). `cut-horse2zebra` was trained on this pack; the test images are never packed.
Run: `.venv/bin/python scripts/pack_h2z_data.py FULL_H2Z .gpu/data/h2z` (FULL_H2Z holds trainA/ and trainB/).
"""

from __future__ import annotations

import sys
from pathlib import Path

from gantool.image.io import Image, read_image, write_image


def main(source: Path, target: Path) -> None:
    count = 0
    for folder in ("trainA", "trainB"):
        for path in sorted((source / folder).glob("*.jpg")):
            write_image(target / folder / f"{path.stem}.webp", Image(color=read_image(path).color), quality=80)
            count += 1
    print(f"packed {count} images into {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
