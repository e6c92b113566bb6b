"""Train gantool runs side by side for a fixed wall-clock budget, ending with a learning-rate decay that fits.

A GPU lease is counted in seconds, not steps, and the step rate is unknown until the runs start. So each run
first trains at a constant rate; at ``--phase1`` seconds all are stopped with SIGTERM (each saves a
checkpoint), the median logged step rate sets a new total, and each resumes with a linear decay from its
current step to 0 at that total, sized to end before ``--deadline``. Into ``--out`` go each run's log, its
export (the EMA networks) and its last checkpoint without the optimizer state (``NAME-step-NNNNNN/``: the
networks as float16, critics included, and ``meta.json``): four files a run, so two fit the eight files a
lease brings back, and `gantool train --init NAME-step-NNNNNN` continues the run with its critic.

Run on the GPU machine from the repository root, e.g. (the `cut-horse2zebra` lease, docs/cyclegan.md):
`python3 scripts/timed_training.py --out $OUT --job "b4=--batch-size 4 --num-workers 6" --job "b16=--batch-size
16 --num-workers 7" -- cut --data .gpu/data/h2z --init .gpu/init/cut-horse2zebra.safetensors --width 32 ...`
"""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from gantool.engine.checkpoint import latest_checkpoint
from gantool.engine.metrics_log import read_metrics

START = time.time()


def say(*parts: object) -> None:
    print(f"[{time.time() - START:6.1f}s]", *parts, flush=True)


def stop(procs: dict[str, subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM makes gantool save a checkpoint; kill only what outlives the grace period."""
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    end = time.time() + grace
    for proc in procs.values():
        try:
            proc.wait(timeout=max(1.0, end - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()


def last_step(run: Path) -> int:
    newest = latest_checkpoint(run)
    return int(newest.name.split("-")[1]) if newest else 0


def median_rate(run: Path) -> float:
    """Median steps/s over the last two thirds of the log (the first third includes start-up)."""
    rows = read_metrics(run)
    rates = sorted(row["steps_per_s"] for row in rows[len(rows) // 3:] if "steps_per_s" in row)
    return rates[len(rates) // 2] if rates else 1.0


def save_light_checkpoint(run: Path, out: Path) -> None:
    """The last checkpoint's networks as float16 and its meta.json; the optimizer state (twice as big) stays."""
    import torch
    from safetensors.torch import load_file, save_file

    steps = sorted(run.glob("step-*"))
    if steps:
        target = out / f"{run.name}-{steps[-1].name}"
        target.mkdir(exist_ok=True)
        tensors = load_file(str(steps[-1] / "networks.safetensors"))
        half = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
        save_file(half, str(target / "networks.safetensors"))
        (target / "meta.json").write_bytes((steps[-1] / "meta.json").read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--runs", type=Path, default=Path("/tmp/runs"))
    parser.add_argument("--deadline", type=float, default=525.0, help="seconds until everything is in --out")
    parser.add_argument("--phase1", type=float, default=285.0, help="seconds at the constant learning rate")
    parser.add_argument("--job", action="append", required=True, help="NAME=extra options of that run")
    parser.add_argument("train", nargs=argparse.REMAINDER, help="-- TASK and the options every run shares")
    args = parser.parse_args()
    common = [a for a in args.train if a != "--"]
    jobs = {name: shlex.split(extra) for name, extra in (job.split("=", 1) for job in args.job)}
    args.out.mkdir(parents=True, exist_ok=True)

    def launch(name: str, extra: list[str]) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "gantool", "train", *common, *jobs[name], "--run-dir", str(args.runs / name)]
        say("launch", name, shlex.join(cmd[2:] + extra))
        with (args.out / f"{name}.log").open("ab") as stream:
            return subprocess.Popen(cmd + extra, stdout=stream, stderr=subprocess.STDOUT)

    procs = {name: launch(name, ["--steps", "10000000"]) for name in jobs}
    while time.time() - START < args.phase1 and any(p.poll() is None for p in procs.values()):
        time.sleep(5)
    stop(procs, grace=40)
    left = args.deadline - (time.time() - START) - 75  # restart, export and copying out
    for name in jobs:
        run, export = args.runs / name, str(args.out / f"{name}.safetensors")
        step = last_step(run)
        total = max(step + 1, int(step + median_rate(run) * left))
        say(name, "at step", step, "-> total", total)
        procs[name] = launch(name, ["--resume", "auto", "--steps", str(total), "--lr-schedule", "linear",
                                    "--decay-start", f"{step / total:.4f}", "--export", export])
    while time.time() - START < args.deadline - 40 and any(p.poll() is None for p in procs.values()):
        time.sleep(3)
    stop(procs, grace=15)
    for name in jobs:
        run, export = args.runs / name, str(args.out / f"{name}.safetensors")
        if not Path(export).exists():  # stopped before the end: export its last checkpoint
            launch(name, ["--resume", "auto", "--steps", str(last_step(run)), "--export", export]).wait(timeout=30)
        save_light_checkpoint(run, args.out)
    say("done", sorted(p.name for p in args.out.iterdir()))


if __name__ == "__main__":
    main()
