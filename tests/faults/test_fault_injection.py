"""Fault injection: kill, fill the disk, refuse writes; a rerun must finish with every output complete and
identical to an uninterrupted run.

Processes are killed with SIGKILL (no handler runs, nothing is flushed) at seeded random points, both in a
batch (between and during writes) and in a short training run (between and during checkpoints).
"""

from __future__ import annotations

import errno
import io as stdio
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from gantool.engine import checkpoint as ckpt
from gantool.engine.batch import run_batch
from gantool.engine.batchplan import BatchPlan, collect_inputs
from gantool.engine.journal import JOURNAL_NAME
from gantool.engine.training import Trainer
from gantool.errors import CheckpointError, OutputError
from gantool.image import io as gio
from gantool.image.io import Image, write_image
from gantool.testing import TOY_SPEC, ToyTrainOptions, tiny_training_options

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261129

BATCH = textwrap.dedent("""
    import os, sys, time
    from gantool.engine.batch import run_batch
    from gantool.engine.batchplan import BatchPlan, collect_inputs
    from gantool.image.io import Image

    def process(image):
        time.sleep(float(os.environ["DELAY"]))
        return Image(1.0 - image.color, image.alpha, image.bit_depth)

    if os.environ.get("HANG_IN_WRITE"):  # stop inside the atomic write: temporary written, not yet renamed
        import gantool.image.io as gio
        real_replace = os.replace

        def hanging_replace(source, target):
            if str(source).endswith(".tmp"):
                print("WRITING", flush=True)
                time.sleep(120)
            return real_replace(source, target)

        gio.os.replace = hanging_replace

    result = run_batch(collect_inputs([sys.argv[1]]), process, BatchPlan(output=sys.argv[2]), workers=2,
                       progress=False)
    result.raise_if_failed()
    print("DONE", len(result.done), len(result.skipped))
""")

TRAIN = textwrap.dedent("""
    import sys, time
    from dataclasses import replace
    from pathlib import Path
    from gantool.engine.training import Trainer
    from gantool.testing import TOY_SPEC, ToyTask, ToyTrainOptions, tiny_training_options

    class SlowToy(ToyTask):
        def training_step(self, batch, step):
            time.sleep(0.03)
            return super().training_step(batch, step)

    spec = replace(TOY_SPEC, implementation="__main__:SlowToy")
    options = tiny_training_options(Path(sys.argv[1]), steps=12, checkpoint_every=2, resume="auto")
    print("STEP", Trainer(spec, options, ToyTrainOptions(), progress=False).fit().step)
""")


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, **extra}


def _start(script: str, *args: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=_env(**env), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _invert(image: Image) -> Image:
    return Image(1.0 - image.color, image.alpha, image.bit_depth)


def _sources(folder: Path, count: int) -> Path:
    for i in range(count):
        color = np.random.default_rng(i).integers(0, 256, (48, 40, 3)).astype(np.float32) / 255
        write_image(folder / f"{i:02d}.png", Image(color))
    return folder


def _reference(src: Path, out: Path) -> dict[str, bytes]:
    run_batch(collect_inputs([src]), _invert, BatchPlan(output=out), console=Console(file=stdio.StringIO()),
              progress=False)
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}


def _assert_complete(out: Path, expected: dict[str, bytes]) -> None:
    assert {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))} == expected
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != JOURNAL_NAME]
    assert leftovers == []  # no temporaries, no lock


def test_sigkill_at_random_points_of_a_batch(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    src, out = _sources(tmp_path / "src", 10), tmp_path / "out"
    expected = _reference(src, tmp_path / "reference")
    for _ in range(3):
        proc = _start(BATCH, src, out, DELAY="0.05")
        wanted, deadline = rng.randint(0, 8), time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and len(list(out.glob("*.png"))) < wanted:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.06))  # between writes or in the middle of one
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    proc = _start(BATCH, src, out, DELAY="0")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    _assert_complete(out, expected)


def test_sigkill_inside_a_write_leaves_only_a_hidden_temporary_that_the_rerun_removes(tmp_path: Path) -> None:
    src, out = _sources(tmp_path / "src", 3), tmp_path / "out"
    expected = _reference(src, tmp_path / "reference")
    proc = _start(BATCH, src, out, DELAY="0", HANG_IN_WRITE="1")
    assert proc.stdout is not None and proc.stdout.readline().strip() == "WRITING"
    temporaries = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert len(temporaries) == 1 and not list(out.glob("*.png"))  # nothing visible is half-written
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    proc = _start(BATCH, src, out, DELAY="0")
    assert proc.wait(timeout=120) == 0
    _assert_complete(out, expected)


def test_disk_full_fails_items_in_one_line_and_a_rerun_completes(tmp_path: Path, monkeypatch) -> None:
    src, out = _sources(tmp_path / "src", 5), tmp_path / "out"
    expected = _reference(src, tmp_path / "reference")
    real_fdopen, calls = os.fdopen, {"n": 0}

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fdopen(fd, *args, **kwargs):
        calls["n"] += 1
        handle = real_fdopen(fd, *args, **kwargs)
        return FullDisk(handle) if calls["n"] in (2, 4) else handle

    monkeypatch.setattr(gio.os, "fdopen", fdopen)
    console = Console(file=stdio.StringIO(), width=200)
    result = run_batch(collect_inputs([src]), _invert, BatchPlan(output=out), console=console, progress=False,
                       workers=0)
    monkeypatch.undo()
    assert len(result.failed) == 2 and len(result.done) == 3
    assert all(item.reason.endswith("no space left on device") for item in result.failed)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    rerun = run_batch(collect_inputs([src]), _invert, BatchPlan(output=out), console=console, progress=False)
    assert len(rerun.done) == 2 and len(rerun.skipped) == 3
    _assert_complete(out, expected)


def test_unwritable_output_folder_is_one_line_before_any_work(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("needs Linux")
    src = _sources(tmp_path / "src", 2)
    target = Path("/sys/gantool-test-out") if os.geteuid() == 0 else tmp_path / "ro" / "out"
    if os.geteuid() != 0:
        target.parent.mkdir()
        target.parent.chmod(0o555)
    calls = []
    with pytest.raises(OutputError, match=r"cannot create folder or lock in '.*gantool-test-out|.*ro/out'"):
        run_batch(collect_inputs([src]), lambda image: calls.append(1) or image, BatchPlan(output=target),
                  console=Console(file=stdio.StringIO()), progress=False)
    assert calls == []


def _final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model.safetensors"))


def _train_in_process(run_dir: Path, **overrides) -> None:
    options = tiny_training_options(run_dir, steps=12, checkpoint_every=2, resume="auto", **overrides)
    Trainer(TOY_SPEC, options, ToyTrainOptions(), progress=False).fit()


@pytest.mark.slow
def test_sigkill_at_random_points_of_training(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    _train_in_process(tmp_path / "reference")
    expected = _final_weights(tmp_path / "reference")
    run_dir = tmp_path / "run"
    for _ in range(2):
        proc = _start(TRAIN, run_dir)
        wanted, deadline = rng.randint(0, 5), time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and len(ckpt.list_checkpoints(run_dir)) < wanted:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.08))  # between steps, or in the middle of a checkpoint
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    proc = _start(TRAIN, run_dir)
    stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0 and "STEP 12" in stdout, stderr
    actual = _final_weights(run_dir)
    assert actual.keys() == expected.keys() and all(torch.equal(actual[k], expected[k]) for k in expected)
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".tmp")]


def test_disk_full_during_a_checkpoint_then_resume_gives_the_same_model(tmp_path: Path, monkeypatch) -> None:
    _train_in_process(tmp_path / "reference")
    real_save, calls = ckpt.save_file, {"n": 0}

    def filling(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 5:  # the third checkpoint's networks file
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(ckpt, "save_file", filling)
    with pytest.raises(CheckpointError, match="No space left on device"):
        _train_in_process(tmp_path / "run")
    monkeypatch.undo()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == ["step-000002", "step-000004"]
    _train_in_process(tmp_path / "run")
    actual, expected = _final_weights(tmp_path / "run"), _final_weights(tmp_path / "reference")
    assert all(torch.equal(actual[k], expected[k]) for k in expected)
