"""Benchmark: gantool's upscale path against the same network run the plain way, on the CPU.

Usage::

    .venv/bin/python benchmarks/bench_upscale.py            # everything, about 5 minutes on 2 idle cores
    .venv/bin/python benchmarks/bench_upscale.py --quick    # speed only (no large-image memory runs)
    .venv/bin/python benchmarks/bench_upscale.py --threads 1  # steadier when other programs share the CPU

Two ways to run one network over one image:

- **plain**: what a script would write: the network in NCHW fp32, ``torch.no_grad()``, the whole image in
  one call, glibc's default allocator. Timed on the forward call (plus the clamp that ``predict`` does).
- **gantool**: the engine's real processor (``gantool.engine.processor.make_processor`` on a runtime from
  ``Runtime.from_options``, networks through ``prepare_networks``): ``inference_mode``, channels_last weights,
  ``tune_cpu_allocator()``, ``--tile auto``. Timed from the decoded ``Image`` to the result ``Image``, so it
  also pays for the tensor conversions, the transparent fill check, the stitching and the output array.

Every measurement runs in its own subprocess: ``tune_cpu_allocator`` changes malloc for the whole process,
and ``ru_maxrss`` (the peak resident memory reported here) is a per-process high-water mark, so it covers
everything that process held: Python, torch, the model, the input and the output.

Speed: plain and gantool take turns for ``--rounds`` rounds, each run a fresh process that does one
warm-up run and one timed run; the medians are shown, as wall time and as the process's CPU time (user +
system). GFLOP/s counts the convolutions of one untiled pass (forward hooks, 2 FLOPs per multiply-add), so
tiling's overlap shows up as lower GFLOP/s. Memory runs: one timed run after a 64x64 warm-up. Other
programs on the same CPU slow both ways down, and with two threads on two cores a busy core stalls every
parallel region: compare the ``load average`` printed at the start and the end, and use ``--threads 1`` on
a shared machine.

Models: the bundled default ``superres-x4`` (compact x4, 0.47 M parameters), the bundled ``superres-x2``
(compact x2; both in ``plugins/gantool_superres/models/``) and an RRDB x4 (ESRGAN, 23 blocks, random
initialisation: speed does not depend on the weights). RRDB needs ~37 MFLOP per input pixel, so it runs
on a 128x128 input instead of 512x512.
Inputs are ``examples/coffee.png`` (600x400) centre-cropped to a square and resized to the side asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "examples" / "coffee.png"
BUNDLED = REPO / "plugins" / "gantool_superres" / "models"  # the superres plugin's package data
MODELS = {"compact-x4": BUNDLED / "superres-x4.safetensors", "compact-x2": BUNDLED / "superres-x2.safetensors"}


# ------------------------------------------------------------------------------------------ the worker


def load(model: str) -> tuple[Any, dict[str, Any], int]:
    """``(task, networks, scale)`` for a model name: a bundled file, or ``rrdb-x4`` built at random."""
    import torch

    from gantool_superres import SPEC
    from gantool_superres.options import SuperResTrainOptions
    from gantool_superres.task import SuperResolution

    if model in MODELS:
        # By hand, not with gantool.engine.export.load_model: that tunes the CPU allocator, which is part of
        # what is measured, so the plain way must not get it for free.
        from safetensors.torch import load_file

        from gantool.engine.checkpoint import unflatten
        from gantool.engine.export import train_options_from_metadata
        from gantool.weights import read_metadata

        task = SuperResolution(SPEC, train_options_from_metadata(SPEC, read_metadata(MODELS[model])))
        state = unflatten(load_file(str(MODELS[model])))
        networks = task.build_inference_networks()
        for name, network in networks.items():
            network.load_state_dict(state[name])
            network.eval().requires_grad_(False)
        return task, networks, task.scale

    torch.manual_seed(0)
    task = SuperResolution(SPEC, SuperResTrainOptions(arch="rrdb", scale=4))
    networks = {name: net.eval().requires_grad_(False) for name, net in task.build_inference_networks().items()}
    return task, networks, 4


def photo(side: int) -> Any:
    """``examples/coffee.png``, centre-cropped to a square and resized (antialiased bicubic) to ``side``."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from gantool.image.io import read_image

    color = read_image(PHOTO).color
    height, width = color.shape[:2]
    crop = min(height, width)
    top, left = (height - crop) // 2, (width - crop) // 2
    chw = torch.from_numpy(np.ascontiguousarray(color[top : top + crop, left : left + crop])).permute(2, 0, 1)
    resized = F.interpolate(chw[None], size=(side, side), mode="bicubic", antialias=True, align_corners=False)
    return resized[0].clamp(0, 1).permute(1, 2, 0).contiguous().numpy()


def conv_flops(task: Any, networks: dict[str, Any], side: int) -> float:
    """FLOPs (2 per multiply-add) of the convolutions of one untiled pass on a ``side`` x ``side`` image.

    Forward hooks on every ``Conv2d`` during a 64x64 pass, scaled by the pixel count. (FlopCounterMode would
    do too, but as a dispatch mode it imports torch._dynamo, which adds 160 MB to the peak RSS measured.)
    """
    import torch

    probe, total = 64, 0

    def count(module: torch.nn.Conv2d, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        height, width = module.kernel_size
        total += 2 * output.numel() * module.in_channels // module.groups * height * width

    convs = [m for net in networks.values() for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    handles = [conv.register_forward_hook(count) for conv in convs]
    try:
        with torch.no_grad():
            task.predict(networks, torch.rand(1, 3, probe, probe))
    finally:
        for handle in handles:
            handle.remove()
    return total * (side / probe) ** 2


def plain_runner(task: Any, networks: dict[str, Any]) -> tuple[Any, list[int]]:
    """The plain way: NCHW, no_grad, the whole image in one call (what ``predict`` does, nothing else)."""
    import torch

    def run(pixels: Any) -> None:
        x = torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous()
        with torch.no_grad():
            task.predict(networks, x)

    return run, []


def gantool_runner(task: Any, networks: dict[str, Any], scale: int) -> tuple[Any, list[int]]:
    """The engine's processor, built exactly as ``run_inference`` builds it; records the tiles it used."""
    from gantool.engine import processor
    from gantool.engine.inference import resolve_tile
    from gantool.engine.runtime import Runtime
    from gantool.image.io import Image
    from gantool.plugin.common import InferenceOptions

    options = InferenceOptions(device="cpu")
    runtime = Runtime.from_options(options, distributed=False)  # what tunes the allocator in a real run
    tiles: list[int] = []
    apply = processor.tiled_apply_with_backoff

    def recording_apply(*args: Any, **kwargs: Any) -> Any:
        tiles.append(kwargs["tile"])
        return apply(*args, **kwargs)

    processor.tiled_apply_with_backoff = recording_apply
    process = processor.make_processor(task, processor.prepare_networks(networks, runtime), None, scale=scale,
                                       tile=resolve_tile(options.tile), overlap=options.tile_overlap,
                                       runtime=runtime)

    def run(pixels: Any) -> None:
        process(Image(pixels))

    return run, tiles


def rss_mb() -> float:
    """Current resident memory of this process in MB (from /proc)."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this (fresh) process: a warm-up run on ``warmup`` pixels, then one timed run."""
    import torch

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    task, networks, scale = load(spec["model"])
    flops = conv_flops(task, networks, spec["side"])
    if spec["path"] == "plain":
        run, tiles = plain_runner(task, networks)
    else:
        run, tiles = gantool_runner(task, networks, scale)
    run(photo(spec["warmup"]))
    pixels = photo(spec["side"])
    baseline = rss_mb()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run(pixels)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"wall": wall, "cpu": cpu, "flops": flops, "peak_mb": peak, "baseline_mb": baseline,
            "tile": tiles[-1] if tiles else None, "threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------------------ the parent


THREADS = 0  # torch's default unless --threads says otherwise


def measure(model: str, path: str, side: int, warmup: int) -> dict[str, Any]:
    """Run :func:`worker` in a fresh interpreter and return its result."""
    spec = {"model": model, "path": path, "side": side, "warmup": warmup, "threads": THREADS}
    done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                          text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(f"worker {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def row(label: str, result: dict[str, Any]) -> str:
    gflops = result["flops"] / result["wall"] / 1e9
    tile = "-" if result["tile"] is None else str(result["tile"] or "whole")
    return (f"  {label:<9} wall {result['wall']:7.2f} s   cpu {result['cpu']:7.2f} s   {gflops:6.1f} GFLOP/s   "
            f"tile {tile:>5}   peak RSS {result['peak_mb']:6.0f} MB (before the run {result['baseline_mb']:.0f})")


def compare(title: str, model: str, side: int, rounds: int) -> None:
    """Plain, then gantool, each in a fresh process, ``rounds`` times in turn; medians and the speed-up.

    Alternating the two in separate processes spreads any load from other programs over both.
    """
    print(f"{title}: {model}, {side}x{side} input, median of {rounds} alternating rounds (each: a fresh "
          "process, a warm-up run, a timed run)", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {"plain": [], "gantool": []}
    for _ in range(rounds):
        for path, results in runs.items():
            results.append(measure(model, path, side, warmup=side))
    plain, ours = (summary(results) for results in runs.values())
    print(row("plain", plain))
    print(row("gantool", ours))
    per_round = ", ".join(f"{p['wall'] / o['wall']:.2f}x" for p, o in zip(*runs.values(), strict=True))
    print(f"  speed-up: {plain['wall'] / ours['wall']:.2f}x wall, {plain['cpu'] / ours['cpu']:.2f}x cpu "
          f"(wall, per round: {per_round})\n", flush=True)


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Median times, the largest peak memory, the rest from the first result."""
    return {**results[0], "wall": statistics.median(r["wall"] for r in results),
            "cpu": statistics.median(r["cpu"] for r in results), "peak_mb": max(r["peak_mb"] for r in results)}


def memory(title: str, model: str, side: int, scale: int, *, plain: bool) -> None:
    """One large image through gantool (and optionally the plain way): time and peak memory."""
    out = side * scale
    print(f"{title}: {model}, {side}x{side} input -> {out}x{out} output (the float32 result alone is "
          f"{out * out * 3 * 4 / 1e6:.0f} MB), one run after a 64x64 warm-up", flush=True)
    if plain:
        print(row("plain", measure(model, "plain", side, warmup=64)), flush=True)
    print(row("gantool", measure(model, "gantool", side, warmup=64)), flush=True)
    print()


def environment() -> str:
    import torch

    if THREADS:
        torch.set_num_threads(THREADS)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs ({cpu}), "
            f"python {platform.python_version()}, load average {load:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="speed comparisons only, no large-image runs")
    parser.add_argument("--rounds", type=int, default=3, help="alternating plain/gantool rounds (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads in every run (default: torch's)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    print(f"bench_upscale: {environment()}\n", flush=True)
    compare("speed", "compact-x4", 512, args.rounds)
    compare("speed", "rrdb-x4", 128, args.rounds)
    if not args.quick:
        memory("memory", "compact-x4", 1024, 4, plain=True)
        memory("memory", "compact-x2", 2048, 2, plain=False)
        memory("memory", "compact-x4", 2048, 4, plain=False)
    print(f"done: {environment()}")


if __name__ == "__main__":
    main()
