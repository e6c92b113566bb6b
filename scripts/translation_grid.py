"""Make a docs figure of a translation model: one column per image, rows input / translation [/ target].

Any task whose model file `gantool translate` runs (pix2pix, CycleGAN) works: the file's `gantool.task`
metadata picks the task, exactly as the CLI does. Images are resized to a square `--size` for the figure.

    .venv/bin/python scripts/translation_grid.py --model M.safetensors --out docs/images/x.png IMAGES...
    # pix2pix test pairs (A|B side by side): the model's direction picks the input half, the other is the target
    .venv/bin/python scripts/translation_grid.py --model facades.safetensors --pairs --out f.png test/1.jpg ...
    # CycleGAN: which generator
    .venv/bin/python scripts/translation_grid.py --model h2z.safetensors --direction BtoA --out z.png testB/*.jpg

Inputs are never copied into the repository; only the figure is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from gantool.engine.export import load_model
from gantool.engine.metrics_log import save_sample_grid
from gantool.lib.data import load_image
from gantool.plugin.manager import build_plugin_system
from gantool.weights import read_metadata


def square(image: torch.Tensor, size: int) -> torch.Tensor:
    """``(3, H, W)`` to ``(1, 3, size, size)``, area-averaged when shrinking."""
    return F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--size", type=int, default=128, help="side of each square panel")
    parser.add_argument("--run-size", type=int, default=0,
                        help="side the model runs at (default: --size); e.g. the training scale, shrunk for the figure")
    parser.add_argument("--pairs", action="store_true", help="inputs are A|B side-by-side pairs")
    parser.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB", help="CycleGAN generator")
    args = parser.parse_args()

    task_name = read_metadata(args.model).get("gantool.task", "")
    spec = build_plugin_system().registry.get(task_name)
    loaded = load_model(args.model, spec, device="cpu")
    infer_options = SimpleNamespace(direction=args.direction, seed=None)  # what both tasks' predict read
    pair_direction = getattr(loaded.task.options, "direction", "AtoB")

    sources, outputs, targets = [], [], []
    for path in args.images:
        image = load_image(path)
        target = None
        if args.pairs:
            half = image.shape[-1] // 2
            a, b = image[..., :half], image[..., half:2 * half]
            image, target = (b, a) if pair_direction == "BtoA" else (a, b)
        source = square(image, args.run_size or args.size)
        with torch.inference_mode():
            output = loaded.task.predict(loaded.networks, source, infer_options).float().clamp(0, 1)
        outputs.append(square(output[0], args.size))
        sources.append(square(image, args.size))
        if target is not None:
            targets.append(square(target, args.size))
    rows = [torch.cat(sources), torch.cat(outputs)] + ([torch.cat(targets)] if targets else [])
    print(save_sample_grid(args.out, rows))


if __name__ == "__main__":
    main()
