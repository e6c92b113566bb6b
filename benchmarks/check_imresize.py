"""Check gantool_superres's ``imresize`` against MATLAB-made benchmark inputs (Set5 ``LR_bicubic``).

For each scale, each HR image is cropped to a multiple of the scale, shrunk with ``imresize(hr, 1/s)``,
rounded to 8 bits and compared with the stored MATLAB result. Prints the mean absolute difference (MAD) in
grey levels per image and overall, for three variants:

- ``float``: the float pipeline used in training (one rounding at the end), MATLAB's edge replication;
- ``uint8``: ``quantize=255``, which also rounds between the two axis passes as MATLAB does on uint8 images;
- ``symmetric``: the float pipeline with mirrored edges (what several Python ports do).

Exits 1 if the ``float`` mean of any scale reaches ``--limit`` (default 1.0 grey level).

Run: ``.venv/bin/python benchmarks/check_imresize.py [--data /work/shared/data/sr/Set5] [--scales 2 3 4]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from gantool.image.io import read_image
from gantool_superres.resize import imresize

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sr" / "Set5"


def grey_levels(array: np.ndarray) -> np.ndarray:
    """Float [0, 1] pixels to 0..255 as float64 integers (round to nearest)."""
    return np.clip(np.round(array.astype(np.float64) * 255.0), 0, 255)


VARIANTS = {"float": {}, "uint8": {"quantize": 255}, "symmetric": {"padding": "symmetric"}}


def check_scale(data: Path, scale: int) -> dict[str, dict[str, float]]:
    """MAD in grey levels of our x1/scale imresize vs ``LR_bicubic/X{scale}``: image -> variant -> MAD."""
    lr_dir = data / "LR_bicubic" / f"X{scale}"
    results = {}
    for hr_path in sorted((data / "HR").glob("*.png")):
        lr_path = lr_dir / hr_path.name
        if not lr_path.is_file():
            continue
        hr = grey_levels(read_image(hr_path).color) / 255.0  # exact 8-bit values, float64
        height, width = hr.shape[:2]
        hr = hr[: height - height % scale, : width - width % scale]
        tensor = torch.from_numpy(np.ascontiguousarray(hr.transpose(2, 0, 1)))[None]
        reference = grey_levels(read_image(lr_path).color)
        results[hr_path.stem] = {}
        for variant, keywords in VARIANTS.items():
            ours = grey_levels(imresize(tensor, 1.0 / scale, **keywords)[0].permute(1, 2, 0).numpy())
            if ours.shape != reference.shape:
                raise SystemExit(f"{lr_path}: our size {ours.shape} differs from the reference {reference.shape}")
            results[hr_path.stem][variant] = float(np.abs(ours - reference).mean())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Folder with HR/ and LR_bicubic/X*/.")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--limit", type=float, default=1.0, help="Largest acceptable mean MAD (grey levels).")
    args = parser.parse_args()
    failed = False
    for scale in args.scales:
        results = check_scale(args.data, scale)
        if not results:
            print(f"x{scale}: no LR_bicubic/X{scale} images under {args.data}")
            continue
        print(f"x{scale} {'image':<12}" + "".join(f"{variant:>11}" for variant in VARIANTS))
        for name, mads in results.items():
            print(f"x{scale} {name:<12}" + "".join(f"{mads[variant]:11.4f}" for variant in VARIANTS))
        means = {variant: sum(m[variant] for m in results.values()) / len(results) for variant in VARIANTS}
        verdict = "ok" if means["float"] < args.limit else "FAIL"
        print(f"x{scale} {'mean':<12}" + "".join(f"{means[variant]:11.4f}" for variant in VARIANTS)
              + f"   float: {verdict} (limit {args.limit})")
        failed = failed or means["float"] >= args.limit
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
