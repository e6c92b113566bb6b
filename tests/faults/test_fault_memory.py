"""Finding 1: training memory. Task-level default batch sizes, and a pre-flight estimate that refuses a
batch that would not fit in one line naming the option to lower (instead of the OOM killer)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gantool.cli import launch
from gantool.cli.app import build_app
from gantool.engine import checkpoint as ckpt
from gantool.engine import preflight
from gantool.engine.training import Trainer, read_metrics
from gantool.errors import TrainingError
from gantool.plugin.manager import build_plugin_system
from gantool.plugin.spec import TaskSpec
from gantool.testing import TOY_SPEC, ToyTask, ToyTrainOptions, tiny_training_options

runner = CliRunner()


@pytest.fixture
def trained_with(monkeypatch: pytest.MonkeyPatch) -> dict:
    recorded: dict = {}
    monkeypatch.setattr(launch, "run_training", lambda **kwargs: recorded.update(kwargs))
    return recorded


@pytest.mark.parametrize(("task", "typed", "expected"), [
    ("cyclegan", [], 1), ("pix2pix", [], 1), ("superres", [], 16), ("cyclegan", ["--batch-size", "4"], 4)])
def test_task_defaults_override_the_shared_batch_size(task, typed, expected, trained_with, tmp_path: Path) -> None:
    app = build_app(build_plugin_system())
    result = runner.invoke(app, ["train", task, "--data", str(tmp_path), *typed])
    assert result.exit_code == 0, result.output
    assert trained_with["options"].batch_size == expected


def test_task_default_shows_in_help() -> None:
    import typer

    app = build_app(build_plugin_system())
    train = typer.main.get_command(app).commands["train"].commands["cyclegan"]  # type: ignore[attr-defined]
    assert next(p for p in train.params if p.name == "batch_size").default == 1
    # A wide terminal, so rich does not wrap the default onto the next line (CI has no terminal at all).
    text = runner.invoke(app, ["train", "cyclegan", "--help"], env={"COLUMNS": "250"}, terminal_width=250).output
    line = next(line for line in text.splitlines() if "--batch-size" in line)
    assert "[default: 1]" in line


@pytest.mark.parametrize(("defaults", "problem"), [
    ({"batch_sise": 1}, "'batch_sise' is not a shared training option"),
    ({"batch_size": 0}, "batch_size: must be at least 1"),
])
def test_train_defaults_are_checked_on_the_card(defaults, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        TaskSpec(name="x", verb="x", summary="x.", implementation="m:C", train_defaults=defaults)


def _trainer(tmp_path: Path, **overrides) -> Trainer:
    return Trainer(TOY_SPEC, tiny_training_options(tmp_path, **overrides), ToyTrainOptions(), progress=False)


def _estimate(tmp_path: Path) -> preflight.MemoryEstimate:
    trainer = _trainer(tmp_path, memory_check=False)
    trainer._setup()
    probe = {key: value[:1].clone() for key, value in trainer.sample_batch.items()}
    return preflight.estimate_memory(trainer, probe)


def test_a_batch_that_does_not_fit_is_refused_before_training(tmp_path: Path, monkeypatch) -> None:
    estimate = _estimate(tmp_path / "probe")
    monkeypatch.setattr(preflight, "available_memory", lambda device: estimate.total(3) - 1)
    with pytest.raises(TrainingError, match=r"--batch-size 4 needs about .* but cpu has .* free; "
                                            r"lower --batch-size \(at most 2 fits\)"):
        _trainer(tmp_path / "run", batch_size=4).fit()
    assert ckpt.list_checkpoints(tmp_path / "run") == [] and not read_metrics(tmp_path / "run")
    assert _trainer(tmp_path / "ok", batch_size=2).fit().step == 4  # the batch it named does run


def test_estimate_grows_with_the_batch(tmp_path: Path) -> None:
    estimate = _estimate(tmp_path)
    assert estimate.per_sample > 0 and estimate.fixed > 0
    assert estimate.total(8) > estimate.total(2)
    assert estimate.largest_batch(estimate.total(5)) == 5


def test_the_probe_leaves_no_trace(tmp_path: Path) -> None:
    checked = _trainer(tmp_path / "a", memory_check=True)
    checked.fit()
    unchecked = _trainer(tmp_path / "b", memory_check=False)
    unchecked.fit()
    assert [r["losses"] for r in read_metrics(tmp_path / "a")] == [r["losses"] for r in read_metrics(tmp_path / "b")]


def test_the_check_can_be_skipped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(preflight, "available_memory", lambda device: 1)
    monkeypatch.setenv("GANTOOL_SKIP_MEMORY_CHECK", "1")
    assert _trainer(tmp_path).fit().step == 4


class OneSampleFails(ToyTask):
    """Like batch norm, cannot train on a single sample; the real batches are larger."""

    def training_step(self, batch, step):
        if batch["input"].shape[0] == 1:
            raise ValueError("Expected more than 1 value per channel when training")
        return super().training_step(batch, step)


def test_a_task_that_cannot_probe_one_sample_still_trains(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(preflight, "available_memory", lambda device: 1)  # would refuse if it could measure
    spec = replace(TOY_SPEC, implementation=f"{__name__}:OneSampleFails")
    trainer = Trainer(spec, tiny_training_options(tmp_path), ToyTrainOptions(), progress=False)
    assert trainer.fit().step == 4
    assert any("memory check skipped" in note for note in trainer.notes)
