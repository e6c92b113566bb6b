"""Inputs that cannot be used are never passed over in silence, and reruns do not grow the journal.

faults-2.md: "animated GIF in a folder: silently not counted (9 of 10 files done, exit 0)", "dangling
symlink in a folder: silently ignored", and "the journal grows by N skipped lines on every rerun".
The rule (gantool.engine.batch): every input that could not be used is a failed item with one line naming
it and why; the summary counts it and the command exits 1, as for a named file that cannot be read.
"""

from __future__ import annotations

import io as stdio
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from gantool.cli.app import build_app
from gantool.engine.batch import run_batch
from gantool.engine.batchplan import BatchPlan, collect_inputs
from gantool.engine.journal import JOURNAL_NAME
from gantool.errors import InputError
from gantool.image import files
from gantool.image.files import list_images, scan_images
from gantool.image.io import Image, write_image
from gantool.plugin.manager import build_plugin_system


def make_image(path: Path, seed: int = 0) -> Path:
    color = np.random.default_rng(seed).integers(0, 256, (6, 8, 3)).astype(np.float32) / 255
    write_image(path, Image(color))
    return path


def invert(image: Image) -> Image:
    return Image(1.0 - image.color, image.alpha, image.bit_depth)


def run(inputs: list, out: Path, **kwargs):
    console = Console(file=stdio.StringIO(), width=300)
    result = run_batch(collect_inputs(inputs, **kwargs), invert, BatchPlan(output=out, params={"v": 1}),
                       console=console, progress=False)
    return result, console.file.getvalue()


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Two good images, an (animated) GIF, a dangling symlink named like an image, and files that are not images."""
    folder = tmp_path / "in"
    make_image(folder / "a.png", 0)
    make_image(folder / "b.png", 1)
    (folder / "anim.gif").write_bytes(b"GIF89a" + bytes(20))
    os.symlink(folder / "gone.png", folder / "link.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.gif").write_bytes(b"GIF89a")
    return folder


def test_unusable_files_in_a_folder_are_each_reported_and_fail_the_run(mixed: Path, tmp_path: Path) -> None:
    result, text = run([mixed], tmp_path / "out")
    assert sorted(r.input.name for r in result.done) == ["a.png", "b.png"]
    reasons = {r.input.name: r.reason for r in result.failed}
    assert set(reasons) == {"anim.gif", "link.png"}  # not notes.txt, not the hidden file
    assert reasons["anim.gif"].startswith("unsupported format '.gif' (supported: ")
    assert reasons["link.png"].startswith("dangling symbolic link")
    lines = [line for line in text.splitlines() if line.startswith("failed ")]
    assert len(lines) == 2  # one line per file, naming it and why
    assert any(str(mixed / "anim.gif") in line and "unsupported format '.gif'" in line for line in lines)
    assert any(str(mixed / "link.png") in line and "dangling symbolic link" in line for line in lines)
    assert re.search(r"│ failed\s+│\s+2 │", text)  # the summary counts them
    with pytest.raises(InputError, match="2 of 4 images failed"):
        result.raise_if_failed()  # exit 1 after the summary, as for a named file that cannot be read


def test_every_unusable_input_is_listed_even_past_the_summary_cut(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    make_image(folder / "a.png")
    for i in range(40):
        (folder / f"g{i:02d}.gif").write_bytes(b"GIF89a")
    result, text = run([folder], tmp_path / "out")
    assert len(result.failed) == 40
    assert sum(line.startswith("failed ") for line in text.splitlines()) == 40
    assert "more failures" not in text


def test_globs_and_recursive_folders_report_them_too(mixed: Path, tmp_path: Path) -> None:
    sub = mixed / "sub"
    sub.mkdir()
    (sub / "c.heic").write_bytes(b"x")
    globbed = {i.path.name: i.error for i in collect_inputs([str(mixed / "*")])}
    assert globbed["a.png"] is None and "unsupported" in globbed["anim.gif"] and "dangling" in globbed["link.png"]
    assert "notes.txt" not in globbed
    recursive = {i.path.name: i.error for i in collect_inputs([mixed], recursive=True)}
    assert recursive["c.heic"].startswith("unsupported format '.heic'")
    only_gifs = tmp_path / "gifs"
    only_gifs.mkdir()
    (only_gifs / "x.gif").write_bytes(b"GIF89a")
    [item] = collect_inputs([only_gifs])  # the file itself is named, not just "no supported images"
    assert item.path.name == "x.gif" and item.error.startswith("unsupported format")


def test_a_sub_folder_that_cannot_be_listed_is_reported(mixed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = mixed / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path):  # root ignores permissions, so refuse the listing the way a chmod 000 folder would
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(files.os, "scandir", scandir)
    scan = scan_images(mixed, recursive=True)
    assert (locked, "cannot list folder (permission denied)") in scan.unusable
    assert [p.name for p in scan.images] == ["a.png", "b.png"]
    assert [p.name for p in list_images(mixed, recursive=True)] == ["a.png", "b.png"]


def test_the_lister_keeps_its_old_answers(tmp_path: Path) -> None:
    """Same images as before the rewrite: sorted, hidden folders skipped, folder symlinks not followed."""
    root = tmp_path / "r"
    for name in ("b.png", "a.jpg", "sub/c.webp", ".git/d.png", "sub/.e.png", "x.png/f.png"):
        make_image(root / name)
    os.symlink(root, root / "sub" / "loop")
    assert [p.relative_to(root).as_posix() for p in list_images(root)] == ["a.jpg", "b.png"]
    assert [p.relative_to(root).as_posix() for p in list_images(root, recursive=True)] == [
        "a.jpg", "b.png", "sub/c.webp", "x.png/f.png"]
    assert scan_images(root, recursive=True).unusable == []


def test_training_and_eval_listings_warn_about_the_files_they_leave_out(
        mixed: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Data sets list folders with list_images: a GIF or a dangling link left out is named in one warning."""
    with caplog.at_level(logging.WARNING, logger="gantool.image.files"):
        assert [p.name for p in list_images(mixed)] == ["a.png", "b.png"]
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "2 file(s)" in message and "anim.gif" in message and "link.png" in message
    assert "notes.txt" not in message and ".hidden.gif" not in message
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gantool.image.files"):
        list_images(mixed / "..", recursive=False)  # nothing unusable there: silent
    assert not caplog.records


def test_unusable_inputs_through_the_cli_exit_1_with_one_line_each(mixed: Path, tmp_path: Path) -> None:
    from gantool.engine.export import export_model
    from gantool_superres import SPEC
    from gantool_superres.options import SuperResTrainOptions

    task = SPEC.load_implementation()(SPEC, SuperResTrainOptions(width=8, blocks=1, scale=2))
    model = export_model(tmp_path / "m.safetensors", task, task.build_inference_networks())
    app = build_app(build_plugin_system())
    result = CliRunner().invoke(app, ["upscale", str(mixed), "--model", str(model), "-o", str(tmp_path / "out")],
                                env={"COLUMNS": "300"}, terminal_width=300)
    assert result.exit_code == 1, result.output
    assert "anim.gif" in result.output and "link.png" in result.output and "Traceback" not in result.output
    assert "2 of 4 images failed" in result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "b.png"]


def test_three_reruns_leave_one_skipped_record_per_item_and_reason(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for i in range(3):
        make_image(folder / f"{i}.png", i)
    out = tmp_path / "out"
    run([folder], out)
    journal = out / JOURNAL_NAME

    def records() -> list[dict]:
        return [json.loads(line) for line in journal.read_text().splitlines()]

    assert [r["status"] for r in records()] == ["done"] * 3
    for _ in range(3):
        result, _ = run([folder], out)
        assert len(result.skipped) == 3 and not result.done
    skipped = [(r["input"], r["error"]) for r in records() if r["status"] == "skipped"]
    assert len(skipped) == 3 and len(set(skipped)) == 3  # one per item and reason, not one per rerun
    make_image(folder / "0.png", 9)  # changed input: recomputed (a new "done" line), then skipped once more
    run([folder], out)
    run([folder], out)
    assert [r["status"] for r in records()].count("done") == 4
    assert len([r for r in records() if r["status"] == "skipped"]) == 3  # the same (item, reason) as before


def test_named_symlink_loops_and_dangling_links_say_so(tmp_path: Path) -> None:
    """faults-2.md: a self-loop `a.png -> b.png -> a.png` named on the command line said "no such file"."""
    os.symlink(tmp_path / "b.png", tmp_path / "a.png")
    os.symlink(tmp_path / "a.png", tmp_path / "b.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "c.png")
    errors = {i.path.name: i.error for i in collect_inputs([tmp_path / "a.png", tmp_path / "c.png",
                                                            tmp_path / "d.png"])}
    assert errors == {"a.png": "symbolic link loop", "d.png": "no such file",
                      "c.png": f"dangling symbolic link (to '{tmp_path / 'gone.png'}', which does not exist)"}
    found = {i.path.name: i.error for i in collect_inputs([tmp_path])}  # the same inside a folder
    assert found["a.png"] == found["b.png"] == "symbolic link loop" and found["c.png"].startswith("dangling")
