"""Check: how close tiled CycleGAN inference comes to the untiled result, with and without shared statistics.

Instance norm normalises with the statistics of what it sees, so per-tile statistics make each tile's tone
its own. gantool measures them once on the whole image shrunk to a tile's size
(``gantool.engine.normstats``) and uses them for every tile. This prints the PSNR of the tiled result
against the untiled one (higher is closer; both use the same model) for a few tile sizes, three ways:
per-tile statistics (``naive``), shared statistics calibrated at the tile size (what ``gantool translate``
does), and calibrated at twice the tile size (what more memory would buy).

Usage::

    .venv/bin/python benchmarks/check_tiled_instance_norm.py [--model NAME] [--image examples/coffee.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import torch

from gantool.engine.export import load_model
from gantool.engine.normstats import whole_image_norm_statistics
from gantool.engine.tiling import tiled_apply
from gantool.lib.data import load_image
from gantool.lib.metrics import psnr
from gantool.plugin.manager import build_plugin_system
from gantool.weights import resolve_model_path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cyclegan-horse2zebra")
    parser.add_argument("--image", type=Path, default=REPO / "examples" / "coffee.png")
    parser.add_argument("--direction", choices=["AtoB", "BtoA"], default="BtoA")  # the bundled file keeps BtoA
    parser.add_argument("--tiles", type=int, nargs="+", default=[96, 128, 192])
    args = parser.parse_args()

    spec = build_plugin_system().registry.get("cyclegan")
    model = load_model(resolve_model_path(args.model), spec)
    image = load_image(args.image)[None]
    options = SimpleNamespace(direction=args.direction)

    def run(x: torch.Tensor) -> torch.Tensor:
        return model.task.predict(model.networks, x, options)

    print(f"{args.image.name} {tuple(image.shape[-2:])}, model {args.model}, {args.direction}, overlap 16; "
          "PSNR of the tiled result against the untiled one")
    with torch.inference_mode():
        whole = run(image)
        for tile in args.tiles:
            naive = tiled_apply(run, image, tile=tile, overlap=16)
            line = f"tile {tile:4d}: per-tile statistics {psnr(naive, whole).item():6.2f} dB"
            for side in (tile, 2 * tile):
                with whole_image_norm_statistics(model.networks, run, image, max_side=side):
                    shared = tiled_apply(run, image, tile=tile, overlap=16)
                line += f"   shared, calibrated at {side:4d}: {psnr(shared, whole).item():6.2f} dB"
            print(line)


if __name__ == "__main__":
    main()
