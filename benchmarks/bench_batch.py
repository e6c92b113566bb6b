"""Folder throughput of the batch pipeline as a ratio to pure compute, measured in the same run.

Pure compute: the images are decoded into memory first, then the same ``process`` (tensor conversion and
a small conv net, exactly what the pipeline runs on its main thread) is applied to each; no file I/O.
Pipeline: ``run_batch`` from PNG files to PNG files with the same ``process``, decode threads and the
writer thread included. A ratio near 1 means decoding and encoding are hidden behind compute.

    .venv/bin/python benchmarks/bench_batch.py [--images 40] [--size 256] [--repeats 5] [--workers 2]
                                               [--target-ms 75 | --depth N]

Target: ratio >= 0.9. Not a unit test: timings depend on the machine (DEVELOPERS.md: ratio vs baseline).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from torch import nn

from gantool.engine.batch import run_batch
from gantool.engine.batchplan import BatchPlan, collect_inputs
from gantool.engine.processor import make_processor
from gantool.engine.runtime import Runtime
from gantool.image.io import Image, read_image, write_image
from gantool.plugin.task import Task


class BenchTask(Task):
    """Stand-in task: ``predict`` is the base class's (``networks["generator"](image)``)."""

    def __init__(self, width: int, depth: int) -> None:
        from gantool.plugin.spec import TaskSpec

        super().__init__(TaskSpec(name="bench", verb="bench", summary="Benchmark.", implementation="x:y"))
        self.width, self.depth = width, depth

    def build_networks(self) -> dict[str, nn.Module]:
        torch.manual_seed(0)
        width, depth = self.width, self.depth
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        layers += [nn.Conv2d(width, 3, 3, padding=1), nn.Sigmoid()]
        return {"generator": nn.Sequential(*layers).eval()}


def make_images(folder: Path, count: int, size: int) -> None:
    """Photo-like content (smooth gradients, texture and a little noise), so PNG sizes are realistic."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for i in range(count):
        phase = rng.random(3) * 6.28
        rgb = np.stack([0.5 + 0.4 * np.sin(6 * x + 4 * y + p) for p in phase], axis=2)
        rgb += rng.normal(0, 0.03, rgb.shape).astype(np.float32)
        write_image(folder / f"{i:03d}.png", Image(np.clip(rgb, 0, 1).astype(np.float32)))


def build_process(runtime: Runtime, width: int, depth: int):
    task = BenchTask(width, depth)
    networks = {k: runtime.prepare_module(v, training=False) for k, v in task.build_inference_networks().items()}
    return make_processor(task, networks, None, scale=1, tile=0, overlap=16, runtime=runtime)


def calibrate(runtime: Runtime, width: int, image: Image, target_ms: float) -> int:
    """Depth whose compute per image is closest to ``target_ms`` (from timing depths 1 and 5)."""
    def ms(depth: int) -> float:
        process = build_process(runtime, width, depth)
        process(image)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            process(image)
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)

    low, high = ms(1), ms(5)
    per_layer = max((high - low) / 4, 1e-3)
    return max(1, round(1 + (target_ms - low) / per_layer))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--width", type=int, default=32, help="channels of the conv net")
    parser.add_argument("--depth", type=int, default=0,
                        help="hidden width x width 3x3 convs (0: calibrate to --target-ms)")
    parser.add_argument("--target-ms", type=float, default=75.0, help="compute per image to calibrate to")
    args = parser.parse_args()

    runtime = Runtime.from_options(type("Opts", (), {"device": "cpu", "precision": "auto", "compile": False}))
    root = Path(tempfile.mkdtemp(prefix="gantool-bench-"))
    try:
        make_images(root / "in", args.images, args.size)
        decoded = [read_image(p) for p in sorted((root / "in").glob("*.png"))]
        if args.depth <= 0:
            args.depth = calibrate(runtime, args.width, decoded[0], args.target_ms)
        process = build_process(runtime, args.width, args.depth)
        for image in decoded[:3]:  # warm up the allocator and oneDNN kernels
            process(image)
        compute: list[float] = []
        pipeline: list[float] = []
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
            start = time.perf_counter()
            for image in decoded:
                process(image)
            compute.append(args.images / (time.perf_counter() - start))
            out = root / "out"
            start = time.perf_counter()
            result = run_batch(collect_inputs([root / "in"]), process, BatchPlan(output=out),
                               workers=args.workers, progress=False, console=Console(stderr=True, quiet=True))
            pipeline.append(args.images / (time.perf_counter() - start))
            assert len(result.done) == args.images, result.failed
            shutil.rmtree(out)
        print(f"torch threads {torch.get_num_threads()}, {args.images} images {args.size}x{args.size}, "
              f"net width {args.width} depth {args.depth}, workers {args.workers}, repeats {args.repeats}")
        print(f"compute per image: {1000 / statistics.median(compute):.1f} ms (median)")
        print(f"pure compute : {statistics.median(compute):6.2f} images/s median "
              f"(runs: {', '.join(f'{v:.2f}' for v in compute)})")
        pairs = [p / c for p, c in zip(pipeline, compute, strict=True)]
        print(f"pipeline     : {statistics.median(pipeline):6.2f} images/s median "
              f"(runs: {', '.join(f'{v:.2f}' for v in pipeline)})")
        print(f"ratio to the compute of the same repeat: median {statistics.median(pairs):.3f} "
              f"(runs: {', '.join(f'{r:.3f}' for r in pairs)}); target >= 0.9")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
