"""How long `gantool --help` takes, as a ratio to `python -c "import torch"` measured in the same run.

The CLI must start without importing torch: the target ratio is at most 0.25.
Run: `.venv/bin/python benchmarks/bench_startup.py [--repeats 7]`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET_RATIO = 0.25


def median_seconds(command: list[str], repeats: int) -> float:
    """Median wall time of a command over ``repeats`` runs, after one warm-up run (file cache)."""
    subprocess.run(command, check=True, capture_output=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    help_time = median_seconds([sys.executable, "-m", "gantool", "--help"], args.repeats)
    torch_time = median_seconds([sys.executable, "-c", "import torch"], args.repeats)
    ratio = help_time / torch_time
    print(f"gantool --help      : {help_time * 1000:8.1f} ms (median of {args.repeats})")
    print(f"python -c 'import torch': {torch_time * 1000:8.1f} ms (median of {args.repeats})")
    verdict = "ok" if ratio <= TARGET_RATIO else "TOO SLOW"
    print(f"ratio               : {ratio:.3f} (target <= {TARGET_RATIO}) {verdict}")


if __name__ == "__main__":
    main()
