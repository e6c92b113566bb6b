"""Finding 7: training faults. A changed --lr on resume is applied; an interrupted run exits 130/143 and
says nothing was exported; config values go through the flags' range checks; a corrupt sample met
mid-run is skipped and recorded (and a resume replays the same stream); non-finite weights are never
checkpointed."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import Dataset
from typer.testing import CliRunner

from gantool.cli.app import build_app
from gantool.engine import checkpoint as ckpt
from gantool.engine.training import SKIP_LOG, Trainer, read_metrics, run_training
from gantool.errors import InputError, Interrupted, TrainingError, UsageError
from gantool.plugin.manager import build_plugin_system
from gantool.testing import TOY_SPEC, ToyDataset, ToyTask, ToyTrainOptions, tiny_training_options

runner = CliRunner()
BAD_INDEX = 5


def train(run_dir: Path, task_options: ToyTrainOptions | None = None, spec=TOY_SPEC, **overrides: Any) -> Trainer:
    trainer = Trainer(spec, tiny_training_options(run_dir, **overrides), task_options or ToyTrainOptions(),
                      command="pytest", progress=False)
    trainer.result = trainer.fit()
    return trainer


def test_resume_applies_a_changed_learning_rate(tmp_path: Path) -> None:
    train(tmp_path, ToyTrainOptions(lr=2e-3), steps=2)
    resumed = train(tmp_path, ToyTrainOptions(lr=1e-5), steps=4, resume="auto")
    lrs = {record["step"]: record["lr"] for record in read_metrics(tmp_path)}
    assert lrs[2] == {"generator": 2e-3, "critic": 2e-3}
    assert lrs[3] == lrs[4] == {"generator": 1e-5, "critic": 1e-5}
    assert any("lr 0.002 -> 1e-05" in note for note in resumed.notes)
    assert all(group["initial_lr"] == 1e-5 for opt in resumed.optimizers.values() for group in opt.param_groups)


class SignalledToyTask(ToyTask):
    """Sends itself the signal in ``SIGNAL`` during step 2."""

    SIGNAL = signal.SIGTERM

    def training_step(self, batch: dict[str, torch.Tensor], step: Any) -> dict[str, torch.Tensor]:
        if step.index == 2 and not isinstance(step, type(None)) and type(step).__name__ == "TrainStep":
            signal.raise_signal(self.SIGNAL)
        return super().training_step(batch, step)


class InterruptedToyTask(SignalledToyTask):
    SIGNAL = signal.SIGINT


@pytest.mark.parametrize(("task", "code"), [("SignalledToyTask", 143), ("InterruptedToyTask", 130)])
def test_interrupted_training_exits_non_zero_and_says_nothing_was_exported(tmp_path: Path, task, code) -> None:
    spec = replace(TOY_SPEC, implementation=f"{__name__}:{task}")
    with pytest.raises(Interrupted, match=r"interrupted at step 3: saved checkpoint '.*step-000003', "
                                          r"no model exported; continue with --resume auto") as caught:
        run_training(spec=spec, options=tiny_training_options(tmp_path, steps=6), task_options=ToyTrainOptions(),
                     command="pytest")
    assert caught.value.exit_code == code
    assert not (tmp_path / "model.safetensors").exists()
    assert ckpt.latest_checkpoint(tmp_path).name == "step-000003"


@pytest.mark.parametrize(("text", "problem"), [
    ("batch_size = 0\n", "batch_size: must be at least 1, got 0"),
    ("log_every = 0\n", "log_every: must be at least 1"),
    ("ema_decay = 5.0\n", "ema_decay: must be at least 0.0 and at most 1.0, got 5.0"),
    ("num_workers = -1\n", "num_workers: must be at least 0"),
    ("steps = -5\nkeep_checkpoints = 0\n", "steps: must be at least 1, got -5; keep_checkpoints: must be"),
    ("width = -5\n", "width: must be at least 4"),
])
def test_config_values_get_the_flags_range_checks(tmp_path: Path, text: str, problem: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    app = build_app(build_plugin_system())
    result = runner.invoke(app, ["train", "superres", "--data", str(tmp_path), "--config", str(config)])
    assert result.exit_code == 2 and problem in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) <= 3  # one (wrapped) line


def test_image_verb_config_values_are_range_checked_and_bad_bytes_are_one_line(tmp_path: Path) -> None:
    app = build_app(build_plugin_system())
    (tmp_path / "q.toml").write_text("quality = 0\ntile_overlap = -4\n")
    result = runner.invoke(app, ["upscale", "x.png", "--config", str(tmp_path / "q.toml")])
    assert result.exit_code == 2 and "quality: must be at least 1" in result.output
    assert "tile_overlap: must be at least 0" in result.output
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe")
    result = runner.invoke(app, ["upscale", "x.png", "--config", str(tmp_path / "bin.toml")])
    assert result.exit_code == 2 and "is not UTF-8 text" in result.output


def test_options_built_in_python_are_range_checked_too(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="batch_size must be at least 1, got 0"):
        train(tmp_path, batch_size=0)


class FlakyDataset(Dataset):
    """The toy data with one corrupt file at ``BAD_INDEX``, as a truncated PNG met mid-run would be."""

    def __init__(self, size: int, image_size: int) -> None:
        self.inner = ToyDataset(size, image_size)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index == BAD_INDEX:
            raise InputError(f"'img{index:03d}.png': truncated or corrupt PNG data")
        return self.inner[index]


class FlakyToyTask(ToyTask):
    def build_dataset(self, data: Path) -> Dataset:
        return FlakyDataset(self.option("dataset_size"), self.option("image_size"))


FLAKY = replace(TOY_SPEC, implementation=f"{__name__}:FlakyToyTask")


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_sample_mid_run_is_skipped_recorded_and_resume_replays_it(tmp_path: Path, workers: int) -> None:
    options = ToyTrainOptions(dataset_size=8)
    whole = train(tmp_path / "whole", options, spec=FLAKY, steps=8, num_workers=workers)
    assert whole.result.step == 8
    log = (tmp_path / "whole" / SKIP_LOG).read_text().splitlines()
    assert log and all(line == f"{BAD_INDEX}\t'img005.png': truncated or corrupt PNG data" for line in log)
    train(tmp_path / "split", options, spec=FLAKY, steps=3, num_workers=workers)
    train(tmp_path / "split", options, spec=FLAKY, steps=8, num_workers=workers, resume="auto")
    losses = [r["losses"] for r in read_metrics(tmp_path / "whole")]
    assert [r["losses"] for r in read_metrics(tmp_path / "split")] == losses


class BrokenDataset(FlakyDataset):
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        raise InputError(f"'img{index:03d}.png': not an image")


class BrokenToyTask(ToyTask):
    def build_dataset(self, data: Path) -> Dataset:
        return BrokenDataset(self.option("dataset_size"), self.option("image_size"))


def test_data_that_is_all_broken_stops_in_one_line(tmp_path: Path) -> None:
    spec = replace(TOY_SPEC, implementation=f"{__name__}:BrokenToyTask")
    with pytest.raises(InputError) as caught:
        train(tmp_path, spec=spec, num_workers=2, memory_check=False)
    assert "unreadable samples in a row" in str(caught.value) and "\n" not in str(caught.value)


def test_non_finite_weights_are_never_checkpointed(tmp_path: Path) -> None:
    trainer = Trainer(TOY_SPEC, tiny_training_options(tmp_path), ToyTrainOptions(), progress=False)
    trainer._setup()
    with torch.no_grad():
        next(trainer.networks["generator"].parameters()).fill_(float("inf"))
    with pytest.raises(TrainingError, match="weights became non-finite by step 0; not saved"):
        trainer.save_checkpoint()
    assert ckpt.list_checkpoints(tmp_path) == []
