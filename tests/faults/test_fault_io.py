"""Finding 8: ordinary I/O faults of training are one line, found before training where they can be."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantool.catalog import extract_archive
from gantool.engine import checkpoint as ckpt
from gantool.engine.training import Trainer, read_metrics
from gantool.errors import CheckpointError, InputError, OutputError
from gantool.testing import TOY_SPEC, ToyTrainOptions, tiny_training_options

runner = CliRunner()


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores modes: a sysfs path refuses even root)."""
    if sys.platform != "linux":
        pytest.skip("needs Linux")
    if os.geteuid() == 0:
        return Path("/sys/gantool-test-unwritable")
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def trainer(run_dir: Path, **overrides) -> Trainer:
    return Trainer(TOY_SPEC, tiny_training_options(run_dir, **overrides), ToyTrainOptions(), progress=False)


def test_run_folder_that_is_a_file_is_refused_before_training(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OutputError, match=r"run folder '.*afile' is a file, not a folder; choose another --run-dir"):
        trainer(afile).fit()
    assert afile.read_text() == "x"


def test_unwritable_run_folder_is_refused_before_training(tmp_path: Path) -> None:
    folder = unwritable_folder(tmp_path)
    with pytest.raises(OutputError, match=r"run folder '.*' is not writable \(.*\); choose another --run-dir"):
        trainer(folder / "run").fit()


def test_unwritable_export_target_is_refused_before_training(tmp_path: Path) -> None:
    folder = unwritable_folder(tmp_path)
    with pytest.raises(OutputError, match=r"export folder '.*' is not writable .*--export"):
        trainer(tmp_path / "run", export=folder / "model.safetensors").fit()
    assert not read_metrics(tmp_path / "run")  # nothing trained


def test_disk_full_while_checkpointing_keeps_the_last_checkpoint(tmp_path: Path, monkeypatch) -> None:
    real_save = ckpt.save_file
    calls = {"n": 0}

    def filling_disk(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] > 2:  # the first checkpoint (networks + ema) fits, the second does not
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(ckpt, "save_file", filling_disk)
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint '.*step-000004' \(No space left on device\); "
                                              r"the earlier checkpoints are kept"):
        trainer(tmp_path, steps=4, checkpoint_every=2).fit()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith((".tmp", "step-"))] == ["step-000002"]


@pytest.mark.parametrize("members", [("data/x", "data/x/y.png"), ("a/b/c.png", "a/b")])
def test_archive_with_a_file_and_a_folder_of_one_name_is_refused_untouched(tmp_path: Path, members) -> None:
    import zipfile

    archive = tmp_path / "clash.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for name in members:
            bundle.writestr(name, b"x")
    with pytest.raises(InputError, match="is both a file and a folder in it"):
        extract_archive(archive, tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_disk_full_at_export_is_one_line_naming_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    from safetensors import SafetensorError

    from gantool.engine import export

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: IoError(No space left on device)")

    monkeypatch.setattr(export, "save_file", full)
    with pytest.raises(CheckpointError, match=r"cannot export the model \(SafetensorError: .*No space left.*\); "
                                              r"the trained weights are in '.*step-000004'"):
        trainer(tmp_path, steps=4, checkpoint_every=2).fit()
