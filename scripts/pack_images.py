"""Pack training images as small WebP files, to fit a GPU machine's 64 MiB transfer limit beside the code.

Each SOURCE folder is copied, sub-folders kept, to OUT/<name of SOURCE>/ with every image re-encoded as
WebP; optionally only the first N files (sorted), colourless photos left out, and each image cut to a
centre square of a given side or shrunk to a given shorter side (never enlarged), by the antialiased resize
gantool's data loaders and evaluations use.
Test and evaluation images are never packed. Packs of the bundled models' training data:

    # cut-horse2zebra: all 1067 + 1334 training images, 107 MB of JPEGs in 44 MB
    .venv/bin/python scripts/pack_images.py --out .gpu/data/h2z --quality 80 FULL_H2Z/trainA FULL_H2Z/trainB
    # lapgan-faces64's data (its card): the first 9000 CelebA faces, centre 89x89 square shrunk to 64x64
    .venv/bin/python scripts/pack_images.py --out .gpu/data/faces64 --quality 90 --square 64 --first 9000 \
        ../shared/data/faces/celeba-10k
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from gantool.image.files import list_images
from gantool.image.io import Image, read_image, write_image
from gantool.lib.color import is_gray
from gantool.lib.data import resize


def centre_square(pixels: np.ndarray, side: int) -> np.ndarray:
    """The largest centred square, resized to ``side`` x ``side``."""
    height, width = pixels.shape[:2]
    crop = min(height, width)
    top, left = (height - crop) // 2, (width - crop) // 2
    return _resize(pixels[top:top + crop, left:left + crop], (side, side))


def shrink_to_shorter_side(pixels: np.ndarray, side: int) -> np.ndarray:
    """Resized so the shorter side is ``side``, aspect kept; images already that small are left alone."""
    height, width = pixels.shape[:2]
    scale = side / min(height, width)
    if scale >= 1:
        return pixels
    return _resize(pixels, (max(1, round(height * scale)), max(1, round(width * scale))))


def _resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An ``(H, W, C)`` array resized to (height, width) by gantool's training-time resize (antialiased)."""
    tensor = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)).permute(2, 0, 1)
    return resize(tensor, size).permute(1, 2, 0).numpy()


def pack(source: Path, out: Path, args: argparse.Namespace) -> tuple[int, int]:
    """Pack one folder; returns (images written, colourless images left out)."""
    written = skipped = 0
    for path in list_images(source, recursive=True)[:args.first]:
        pixels = read_image(path).color
        if args.skip_gray and is_gray(pixels):
            skipped += 1
            continue
        if args.square:
            pixels = centre_square(pixels, args.square)
        elif args.shorter_side:
            pixels = shrink_to_shorter_side(pixels, args.shorter_side)
        target = out / source.name / path.relative_to(source).with_suffix(".webp")
        write_image(target, Image(color=pixels), quality=args.quality)
        written += 1
    return written, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="folders of training images")
    parser.add_argument("--out", type=Path, required=True, help="the pack's folder (one sub-folder per source)")
    parser.add_argument("--quality", type=int, default=90, help="WebP quality, 1-100 (default 90)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--square", type=int, help="cut the centre square and resize it to this side")
    size.add_argument("--shorter-side", type=int, help="shrink so the shorter side is at most this")
    parser.add_argument("--first", type=int, help="only the first N images of each source, in sorted order")
    parser.add_argument("--skip-gray", action="store_true", help="leave out colourless photos (colorize)")
    args = parser.parse_args()
    for source in args.sources:
        written, skipped = pack(source, args.out, args)
        left_out = f", {skipped} colourless left out" if args.skip_gray else ""
        print(f"{source}: packed {written} images into {args.out / source.name}{left_out}")
    total = sum(f.stat().st_size for f in args.out.rglob("*.webp"))
    print(f"{args.out}: {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
