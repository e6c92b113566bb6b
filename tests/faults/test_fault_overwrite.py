"""Finding 6: the overwrite rule, and one run per output folder.

Rule: ``--overwrite`` recomputes every item. Without it an existing output is replaced only when this same
command (same parameters) made it from an input that has changed since; outputs of other parameters or
other verbs, and files gantool did not write, are kept. A second run into a folder in use is refused.
"""

from __future__ import annotations

import io as stdio
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from gantool.engine.batch import run_batch
from gantool.engine.batchplan import BatchPlan, collect_inputs
from gantool.engine.journal import exclusive_run
from gantool.errors import OutputError
from gantool.image.io import Image, write_image

OTHER = "exists (made with other parameters; --overwrite to replace)"


def make_image(path: Path, seed: int) -> Path:
    color = np.random.default_rng(seed).integers(0, 256, (6, 8, 3)).astype(np.float32) / 255
    write_image(path, Image(color))
    return path


class Verb:
    """A stand-in for one verb's processing: counts calls, output depends on ``shift``."""

    def __init__(self, shift: float) -> None:
        self.shift, self.calls = shift, 0

    def __call__(self, image: Image) -> Image:
        self.calls += 1
        return Image(np.clip(image.color * 0.5 + self.shift, 0, 1), image.alpha, image.bit_depth)


def run(folder: Path, out: Path, verb: Verb, params: dict, overwrite: bool = False):
    console = Console(file=stdio.StringIO(), width=200)
    return run_batch(collect_inputs([folder]), verb, BatchPlan(output=out, overwrite=overwrite, params=params),
                     console=console, progress=False)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(3):
        make_image(tmp_path / "in" / f"{i}.png", i)
    return tmp_path / "in"


def snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}


def test_another_verb_into_the_same_folder_replaces_nothing(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(folder, out, Verb(0.0), {"task": "superres", "scale": 4})
    first = snapshot(out)
    colorize = Verb(0.5)
    result = run(folder, out, colorize, {"task": "colorize"})
    assert colorize.calls == 0 and snapshot(out) == first
    assert {item.reason for item in result.skipped} == {OTHER}


def test_overwrite_recomputes_even_journal_done_items(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(folder, out, Verb(0.0), {"task": "superres"})
    again = Verb(0.0)
    run(folder, out, again, {"task": "superres"})
    assert again.calls == 0
    forced = Verb(0.0)
    result = run(folder, out, forced, {"task": "superres"}, overwrite=True)
    assert forced.calls == 3 and len(result.done) == 3
    other = Verb(0.5)
    run(folder, out, other, {"task": "colorize"}, overwrite=True)
    assert other.calls == 3  # --overwrite is the one way to replace another command's outputs


def test_a_second_run_into_a_folder_in_use_is_refused(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with exclusive_run(out):  # another run holds the folder
        verb = Verb(0.0)
        with pytest.raises(OutputError, match=r"another gantool run \(pid \d+\) is writing into '.*out'"):
            run(folder, out, verb, {})
        assert verb.calls == 0
    assert len(run(folder, out, Verb(0.0), {}).done) == 3  # free again once it finished
    assert not (out / ".gantool-run.lock").exists()


def test_a_lock_file_left_by_a_killed_run_does_not_block(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".gantool-run.lock").write_text("999999")  # no process holds it: flock died with its owner
    assert len(run(folder, out, Verb(0.0), {}).done) == 3


def test_shards_lock_separately(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with exclusive_run(out, (1, 2)):
        console = Console(file=stdio.StringIO(), width=200)
        result = run_batch(collect_inputs([folder]), Verb(0.0), BatchPlan(output=out, shard="2/2"),
                           console=console, progress=False)
    assert len(result.done) >= 1
