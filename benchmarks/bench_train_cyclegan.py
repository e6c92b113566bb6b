"""Seconds per CycleGAN training iteration: gantool's engine against a plain PyTorch implementation, same run.

Both sides train the paper's networks (two 9-block ResNet generators, two 70x70 PatchGAN critics) with the
paper's losses (LSGAN, cycle 10, identity 0.5 x cycle, a 50-image pool) at 256x256, batch 1, by default in
fp32 on the CPU with torch's default thread count. ``--device cuda`` runs both sides on the GPU, and
``--precision bf16|fp16`` uses autocast on both: the reference the usual way (``torch.autocast`` around the
forwards and losses, a ``GradScaler`` for fp16, NCHW), gantool through its own ``--precision`` (its
runtime also puts the networks in channels_last on CUDA). On CUDA every timer is read after
``torch.cuda.synchronize()``. A side that fails prints one line and the other is still timed.

- **reference**: written the straightforward way, after the authors' PyTorch code: ``nn.InstanceNorm2d``,
  NCHW, one forward per loss term (``G_A(real_A)``, ``G_B(fake_B)``, ``G_B(real_B)``, ``G_A(fake_A)``,
  ``G_A(real_B)``, ``G_B(real_A)``, the critics once for real and once for fake), plain ``Adam`` and
  ``nn.MSELoss``/``nn.L1Loss``, a fixed in-memory batch (no data loading at all).
- **gantool**: the real ``Trainer`` loop of ``gantool train cyclegan`` on a folder of generated 256x256
  photos-like images (resize to 286, random crop 256, flips; ``--num-workers 0``), EMA on, so an iteration
  includes data loading, the task's ``training_step``, LR schedulers, the EMA update and loss reduction.
  An iteration is timed from the start of one ``training_step`` to the start of the next.

Each side runs in its own process (so glibc allocator tuning and thread pools cannot leak from one to the
other), warms up, and then the two take turns one iteration at a time, so background load on a shared
machine hits both alike.

    .venv/bin/python benchmarks/bench_train_cyclegan.py [--iterations 3] [--warmup 1] [--size 256]
    .venv/bin/python benchmarks/bench_train_cyclegan.py --device cuda --precision bf16 --iterations 30 --warmup 5

Target: ratio (reference s/it / gantool s/it) >= 1.5. Not a unit test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

# ------------------------------------------------------------------------------------ reference side


def reference_worker(size: int, blocks: int, warmup: int, device: str = "cpu", precision: str = "fp32") -> None:
    """A plain CycleGAN iteration written the straightforward way; times one iteration per stdin line.

    bf16/fp16 the usual way: ``torch.autocast`` around the forwards and losses, a ``GradScaler`` for fp16.
    """
    import contextlib

    import torch
    from torch import nn

    class ResnetBlock(nn.Module):
        def __init__(self, dim: int) -> None:
            super().__init__()
            self.conv_block = nn.Sequential(
                nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
                nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.conv_block(x)

    def generator() -> nn.Module:
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, 64, 7), nn.InstanceNorm2d(64), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(64 * mult, 128 * mult, 3, 2, 1), nn.InstanceNorm2d(128 * mult), nn.ReLU(True)]
        layers += [ResnetBlock(256) for _ in range(blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(64 * mult, 32 * mult, 3, 2, 1, output_padding=1),
                       nn.InstanceNorm2d(32 * mult), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(64, 3, 7), nn.Tanh()]
        return nn.Sequential(*layers)

    def discriminator() -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, 64, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(64, 128, 4, 2, 1), nn.InstanceNorm2d(128), nn.LeakyReLU(0.2, True),
            nn.Conv2d(128, 256, 4, 2, 1), nn.InstanceNorm2d(256), nn.LeakyReLU(0.2, True),
            nn.Conv2d(256, 512, 4, 1, 1), nn.InstanceNorm2d(512), nn.LeakyReLU(0.2, True),
            nn.Conv2d(512, 1, 4, 1, 1))

    def init(net: nn.Module) -> nn.Module:
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)
        return net

    class Pool:
        def __init__(self, size: int) -> None:
            self.size, self.images = size, []

        def query(self, images: torch.Tensor) -> torch.Tensor:
            out = []
            for image in images:
                image = image.unsqueeze(0)
                if len(self.images) < self.size:
                    self.images.append(image)
                    out.append(image)
                elif random.uniform(0, 1) > 0.5:
                    i = random.randint(0, self.size - 1)
                    out.append(self.images[i].clone())
                    self.images[i] = image
                else:
                    out.append(image)
            return torch.cat(out, 0)

    def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
        for net in nets:
            for p in net.parameters():
                p.requires_grad = flag

    torch.manual_seed(0)
    net_g_a, net_g_b = init(generator()).to(device), init(generator()).to(device)
    net_d_a, net_d_b = init(discriminator()).to(device), init(discriminator()).to(device)
    opt_g = torch.optim.Adam(itertools.chain(net_g_a.parameters(), net_g_b.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(itertools.chain(net_d_a.parameters(), net_d_b.parameters()), lr=2e-4, betas=(0.5, 0.999))
    gan, l1 = nn.MSELoss(), nn.L1Loss()
    pool_a, pool_b = Pool(50), Pool(50)
    real_a = (torch.rand(1, 3, size, size) * 2 - 1).to(device)
    real_b = (torch.rand(1, 3, size, size) * 2 - 1).to(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    kind = torch.device(device).type

    def autocast() -> contextlib.AbstractContextManager:
        return torch.autocast(device_type=kind, dtype=dtype) if dtype else contextlib.nullcontext()

    scaler = torch.amp.GradScaler(kind, enabled=precision == "fp16")

    def sync() -> None:
        if kind == "cuda":
            torch.cuda.synchronize()

    def gan_loss(prediction: torch.Tensor, real: bool) -> torch.Tensor:
        return gan(prediction, torch.full_like(prediction, 1.0 if real else 0.0))

    def iteration() -> None:
        with autocast():
            fake_b = net_g_a(real_a)
            rec_a = net_g_b(fake_b)
            fake_a = net_g_b(real_b)
            rec_b = net_g_a(fake_a)
        set_requires_grad([net_d_a, net_d_b], False)
        opt_g.zero_grad()
        with autocast():
            idt_a = net_g_a(real_b)
            idt_b = net_g_b(real_a)
            loss_g = (gan_loss(net_d_a(fake_b), True) + gan_loss(net_d_b(fake_a), True)
                      + l1(rec_a, real_a) * 10 + l1(rec_b, real_b) * 10
                      + l1(idt_a, real_b) * 10 * 0.5 + l1(idt_b, real_a) * 10 * 0.5)
        scaler.scale(loss_g).backward()
        scaler.step(opt_g)
        set_requires_grad([net_d_a, net_d_b], True)
        opt_d.zero_grad()
        for net, real, fake in ((net_d_a, real_b, pool_b.query(fake_b)), (net_d_b, real_a, pool_a.query(fake_a))):
            with autocast():
                loss_d = (gan_loss(net(real), True) + gan_loss(net(fake.detach()), False)) * 0.5
            scaler.scale(loss_d).backward()
        scaler.step(opt_d)
        scaler.update()  # one scaler, both optimizers stepped: update once per iteration

    for _ in range(warmup):
        iteration()
    sync()
    print("ready", flush=True)
    for _ in sys.stdin:
        sync()
        start = time.perf_counter()
        iteration()
        sync()
        print(f"{time.perf_counter() - start:.4f}", flush=True)


# -------------------------------------------------------------------------------------- gantool side


def make_photos(folder: Path, count: int, size: int, seed: int) -> None:
    """Smooth colourful images with texture (not flat noise), so resizing and cropping do real work."""
    import numpy as np

    from gantool.image.io import Image, write_image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        phase = rng.random(3) * 6.28
        rgb = np.stack([0.5 + 0.4 * np.sin(7 * x + 5 * y + p) for p in phase], axis=2)
        rgb += rng.normal(0, 0.03, rgb.shape).astype(np.float32)
        write_image(folder / f"{i:03d}.png", Image(np.clip(rgb, 0, 1).astype(np.float32)))


def gantool_worker(size: int, blocks: int, warmup: int, iterations: int, work: Path, device: str = "cpu",
                   precision: Literal["fp32", "bf16", "fp16"] = "fp32") -> None:
    """``gantool train cyclegan``'s real Trainer loop; pauses before each timed iteration for a stdin line.

    It leaves with ``os._exit`` (no final checkpoint or export), so its data and run folder live in ``work``,
    which the parent made and removes. ``precision`` is gantool's own option (autocast, loss scaler for fp16).
    """
    import torch

    from gantool.engine.training import Trainer
    from gantool.plugin.common import TrainingOptions
    from gantool_cyclegan import SPEC
    from gantool_cyclegan.options import CycleGANTrainOptions
    from gantool_cyclegan.task import CycleGAN

    load = size + size // 8 if size >= 64 else size  # 256 -> 288, about the paper's 286
    make_photos(work / "data" / "trainA", 4, load + 32, seed=1)
    make_photos(work / "data" / "trainB", 4, load + 32, seed=2)
    original = CycleGAN.training_step
    state = {"calls": 0, "start": 0.0}

    def sync() -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    def timed_step(self: CycleGAN, batch: dict, step: object) -> dict:
        calls = state["calls"]
        sync()  # the previous iteration's kernels belong to it
        if calls > warmup:  # an iteration just ended: report it
            print(f"{time.perf_counter() - state['start']:.4f}", flush=True)
            if calls == warmup + iterations + 1:
                os._exit(0)  # skip the final checkpoint and export: not part of an iteration
        if calls == warmup:
            print("ready", flush=True)
        if calls >= warmup:
            sys.stdin.readline()  # wait for our turn
            sync()
            state["start"] = time.perf_counter()
        state["calls"] = calls + 1
        return original(self, batch, step)

    CycleGAN.training_step = timed_step  # type: ignore[method-assign]
    options = TrainingOptions(data=work / "data", run_dir=work / "run", steps=warmup + iterations + 2, batch_size=1,
                              num_workers=0, device=device, precision=precision, log_every=10_000, sample_every=0,
                              checkpoint_every=10_000, seed=0)
    task_options = CycleGANTrainOptions(blocks=blocks, load_size=load, crop=size)
    Trainer(SPEC, options, task_options, progress=False).fit()


# ------------------------------------------------------------------------------------------ parent


def start(kind: str, args: argparse.Namespace, work: Path) -> subprocess.Popen | None:
    """Start one side and wait until it has warmed up; None (after one line saying why) when it failed."""
    command = [sys.executable, __file__, "--worker", kind, "--size", str(args.size), "--blocks", str(args.blocks),
               "--warmup", str(args.warmup), "--iterations", str(args.iterations), "--work", str(work),
               "--device", args.device, "--precision", args.precision]
    # Their temporary files go inside ``work`` too: importing torch._dynamo (the reference's optimizer does)
    # makes $TMPDIR/torchinductor_<user>, and the gantool worker's os._exit skips any atexit clean-up.
    temporary = work / "tmp"
    temporary.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(temporary)}
    with open(work / f"{kind}.err", "w") as errors:  # the child keeps its own handle
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
                                   bufsize=1, env=env)
    line = process.stdout.readline().strip()  # type: ignore[union-attr]
    if line != "ready":
        process.kill()
        process.wait()
        print(f"{kind}: failed to start, left out ({last_error(work, kind) or f'said {line!r}'})", flush=True)
        return None
    return process


def last_error(work: Path, kind: str) -> str:
    """The last non-empty line a worker wrote to stderr (its exception), for a one-line report."""
    lines = [line.strip() for line in (work / f"{kind}.err").read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def check_device(device: str, precision: str) -> None:
    """Refuse, in one line, a device or precision that gantool's runtime would refuse (before any worker starts)."""
    import torch

    from gantool.engine.runtime import resolve_device, resolve_precision
    from gantool.errors import UsageError

    try:
        resolved = resolve_precision(precision, resolve_device(device))
    except UsageError as error:
        raise SystemExit(f"bench_train_cyclegan: {error}") from None
    if resolved != precision:  # e.g. an explicit bf16 never silently becomes fp32
        raise SystemExit(f"bench_train_cyclegan: --precision {precision} runs as {resolved} on {device} "
                         f"(torch {torch.__version__})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=3, help="timed iterations per side")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations per side first")
    parser.add_argument("--size", type=int, default=256, help="training crop side")
    parser.add_argument("--blocks", type=int, default=9, help="residual blocks per generator")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where both sides train")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32",
                        help="autocast dtype on both sides (fp16 with a GradScaler)")
    parser.add_argument("--worker", choices=["reference", "gantool"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "reference":
        return reference_worker(args.size, args.blocks, args.warmup, args.device, args.precision)
    if args.worker == "gantool":
        return gantool_worker(args.size, args.blocks, args.warmup, args.iterations, args.work, args.device,
                              args.precision)
    check_device(args.device, args.precision)
    with tempfile.TemporaryDirectory(prefix="bench-cyclegan-") as work:  # removed whatever the workers do
        run_benchmark(args, Path(work))


def run_benchmark(args: argparse.Namespace, work: Path) -> None:

    import torch

    where = (f"CUDA {torch.cuda.get_device_name()}, torch {torch.__version__}" if args.device == "cuda"
             else f"CPU, {torch.get_num_threads()} threads")
    print(f"CycleGAN training iteration, {args.size}x{args.size}, batch 1, {args.precision}, {where}, "
          f"{args.blocks}-block generators; {args.warmup} warm-up + {args.iterations} timed iterations "
          "per side, taking turns", flush=True)
    began = time.perf_counter()
    started = {kind: start(kind, args, work) for kind in ("reference", "gantool")}  # warm up one after the other
    workers = {kind: process for kind, process in started.items() if process is not None}
    times: dict[str, list[float]] = {kind: [] for kind in started}
    for _ in range(args.iterations):
        for kind, process in list(workers.items()):
            try:
                process.stdin.write("go\n")  # type: ignore[union-attr]
                process.stdin.flush()  # type: ignore[union-attr]
                times[kind].append(float(process.stdout.readline()))  # type: ignore[union-attr]
            except (OSError, ValueError):  # it died: a broken pipe, or an empty line instead of a time
                process.kill()
                process.wait()
                print(f"{kind}: failed during the timed iterations, left out ({last_error(work, kind)})", flush=True)
                del workers[kind]
    for kind, process in workers.items():
        process.stdin.close()  # type: ignore[union-attr]
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            print(f"{kind}: did not exit after its last iteration; killed", flush=True)
    means = {kind: statistics.mean(values) for kind, values in times.items() if values}
    for kind, label in (("reference", "reference (plain PyTorch)"), ("gantool", "gantool engine")):
        if kind in means:
            shown = ", ".join(f"{t:.3f}" for t in times[kind])
            print(f"{label:<26} {means[kind]:7.3f} s/it   (iterations: {shown})")
    if len(means) == 2:
        ratio = means["reference"] / means["gantool"]
        print(f"ratio reference / gantool: {ratio:.2f}x  (target >= 1.5)   [total {time.perf_counter() - began:.0f} s]")
    else:
        print(f"no ratio: only {', '.join(means) or 'no side'} finished   [total {time.perf_counter() - began:.0f} s]")
        if not means:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
