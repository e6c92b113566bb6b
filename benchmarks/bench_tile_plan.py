"""Benchmark: does ``--tile auto`` waste work on an ordinary photo? Ratio of its time to ``--tile 0``.

Usage::

    .venv/bin/python benchmarks/bench_tile_plan.py              # 768x512 photo, compact x4, 5 rounds
    .venv/bin/python benchmarks/bench_tile_plan.py --size 1024x768 --rounds 3 --threads 1

The bundled default upscaler (``superres-x4``) runs through the engine's real processor
(``gantool.engine.processor.make_processor`` on a CPU runtime) on the example photo resized to ``--size``,
once with ``--tile auto`` and once with ``--tile 0`` (the whole image in one pass), taking turns for
``--rounds`` rounds after one warm-up each; the medians and their ratio are printed, with the tiles the auto
plan chose. Target: at most 1.05 (auto never does more work than one pass needs when the image fits).
Both ways run in this one process on the same CPU, so a busy machine slows both; compare the ``load
average`` printed at the start and at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="768x512", help="WIDTHxHEIGHT of the photo (default 768x512)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    from gantool.engine.export import load_model
    from gantool.engine.inference import resolve_tile
    from gantool.engine.processor import make_processor, prepare_networks
    from gantool.engine.runtime import Runtime
    from gantool.engine.tileplan import plan_tiles
    from gantool.image.io import Image, read_image
    from gantool.image.tensor import to_array, to_tensor
    from gantool.plugin.common import InferenceOptions
    from gantool.plugin.manager import build_plugin_system
    from gantool.weights import find_model_file

    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    photo = to_tensor(read_image(ROOT / "examples" / "coffee.png").rgb())
    pixels = to_array(F.interpolate(photo, size=(height, width), mode="bicubic", align_corners=False).clamp(0, 1))
    image = Image(pixels)
    spec = build_plugin_system().registry.get("superres")
    model_path = find_model_file("superres-x4")
    assert model_path is not None, "bundled superres-x4 not found"
    runtime = Runtime.from_options(InferenceOptions(device="cpu"), distributed=False)
    model = load_model(model_path, spec)
    networks = prepare_networks(model.networks, runtime)
    scale = int(model.metadata.get("gantool.scale") or spec.scale)

    def processor(tile: str):
        return make_processor(model.task, networks, None, scale=scale, tile=resolve_tile(tile), overlap=16,
                              runtime=runtime)

    auto, whole = processor("auto"), processor("0")
    plan = plan_tiles(None, lambda x: model.task.predict(networks, x, None), scale=scale, runtime=runtime)
    chosen = plan.tile_for(height, width, scale=scale, overlap=16)
    print(f"load average at start: {os.getloadavg()[0]:.2f}; threads {torch.get_num_threads()}")
    print(f"{width}x{height} photo, superres-x4; --tile auto plans {chosen or 'the whole image (0)'} "
          f"(planned at {plan.bytes_per_pixel:.0f} bytes per input pixel)")
    times: dict[str, list[float]] = {"auto": [], "whole": []}
    for run in (auto, whole):
        run(image)  # warm-up
    for _ in range(args.rounds):
        for name, run in (("auto", auto), ("whole", whole)):
            start = time.perf_counter()
            run(image)
            times[name].append(time.perf_counter() - start)
    auto_s, whole_s = statistics.median(times["auto"]), statistics.median(times["whole"])
    print(f"--tile auto: {auto_s:.3f} s   --tile 0: {whole_s:.3f} s   (medians of {args.rounds})")
    print(f"ratio auto / whole: {auto_s / whole_s:.3f}  (target <= 1.05)")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
