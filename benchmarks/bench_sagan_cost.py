"""What SAGAN's options cost: ms per DCGAN generator + critic training iteration, against the defaults, same run.

Six variants of the networks ``gantool train dcgan`` builds (width 64, batch 16, the critic always
spectral-normed as the task's default): the defaults, ``--generator-spectral-norm``, ``--attention S``
(one self-attention block at the SxS feature maps of the generator and of the critic, S half and a
quarter of the image side), and attention with generator spectral norm. One
iteration is a generator forward, a critic forward on fakes and reals, and the backward of both, as
in a GAN step minus the optimizer. The variants take turns one iteration at a time, so background load
on a shared machine hits them alike; the median per variant is printed with its ratio to the defaults,
and the memory the attention maps take per image (generator + critic).

    .venv/bin/python benchmarks/bench_sagan_cost.py [--sizes 32,64] [--iterations 15] [--threads 1]

No target: the numbers are for users choosing options (docs/generate.md). Timings depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,64", help="image sizes, comma-separated (powers of two)")
    parser.add_argument("--iterations", type=int, default=15, help="timed iterations per variant")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()

    import torch

    from gantool.lib.nets.attention import attention_bytes
    from gantool.lib.nets.dcgan import DCGANCritic, DCGANGenerator

    torch.set_num_threads(args.threads)
    for size in (int(part) for part in args.sizes.split(",")):
        variants: dict[str, tuple[bool, tuple[int, ...]]] = {"defaults": (False, ()), "G spectral norm": (True, ())}
        for side in (size // 2, size // 4):  # attention at the maps of half and a quarter of the image side
            variants |= {f"attention {side}": (False, (side,)), f"attention {side} + G spectral norm": (True, (side,))}
        built = {}
        for name, (g_norm, attention) in variants.items():
            torch.manual_seed(0)
            built[name] = (DCGANGenerator(128, size, width=64, attention=attention, spectral_norm=g_norm),
                           DCGANCritic(size, width=64, attention=attention, spectral_norm=True))
        times: dict[str, list[float]] = {name: [] for name in variants}
        reals = torch.rand(args.batch, 3, size, size) * 2 - 1
        for round_index in range(args.warmup + args.iterations):
            for name, (generator, critic) in built.items():
                start = time.perf_counter()
                fakes = generator(torch.randn(args.batch, 128))
                critic(torch.cat([fakes, reals])).mean().backward()
                if round_index >= args.warmup:
                    times[name].append(time.perf_counter() - start)
        base = statistics.median(times["defaults"])
        print(f"{size}x{size}, batch {args.batch}, {args.threads} thread(s), median of {args.iterations}:")
        for name, (_, attention) in variants.items():
            median = statistics.median(times[name])
            maps = 2 * sum(attention_bytes(s) for s in attention) / 2**20
            print(f"  {name:<34} {median * 1000:7.1f} ms  ratio {median / base:4.2f}  "
                  f"attention maps {maps:.2f} MiB per image")


if __name__ == "__main__":
    main()
