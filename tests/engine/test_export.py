"""Export to one self-describing .safetensors file and the round trip through load_model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from gantool.engine.export import export_model, load_model, train_options_from_metadata
from gantool.engine.training import Trainer
from gantool.errors import CheckpointError
from gantool.testing import TOY_SPEC, ToyTask, ToyTrainOptions, check_task, random_batch, tiny_training_options
from gantool.weights import read_metadata


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    run_dir = tmp_path_factory.mktemp("run")
    options = tiny_training_options(run_dir, steps=3, export=run_dir / "exported" / "toy-small")
    trainer = Trainer(TOY_SPEC, options, ToyTrainOptions(channels=6), command="gantool train toy", progress=False)
    trainer.result = trainer.fit()
    return trainer


def test_round_trip_predictions_are_identical(trained: Trainer) -> None:
    path = trained.result.exported
    assert path is not None and path.name == "toy-small.safetensors"
    loaded = load_model(path, TOY_SPEC)
    assert loaded.task.options == replace(ToyTrainOptions(), channels=6)
    assert list(loaded.networks) == ["generator"] and not loaded.networks["generator"].training
    image = random_batch(2, 3, 12, 12)
    with torch.no_grad():
        expected = trained.ema.networks["generator"](image)
        actual = loaded.task.predict(loaded.networks, image, None)
    assert torch.equal(actual, expected)


def test_metadata_is_complete(trained: Trainer) -> None:
    metadata = read_metadata(trained.result.exported)
    for key in ("task", "architecture", "train_options", "scale", "color_space", "value_range", "command",
                "data", "steps", "version", "inference_networks"):
        assert f"gantool.{key}" in metadata, key
    assert metadata["gantool.task"] == "toy" and metadata["gantool.steps"] == "3"
    assert metadata["gantool.command"] == "gantool train toy"
    assert metadata["gantool.architecture"] == "ToyGenerator(channels=6)"  # the task's own text wins
    assert json.loads(metadata["gantool.inference_networks"]) == ["generator"]
    assert json.loads(metadata["gantool.train_options"])["channels"] == 6
    assert set(load_file(trained.result.exported)) == {f"generator.{k}" for k in
                                                      trained.ema.networks["generator"].state_dict()}


def test_train_options_tolerate_unknown_and_missing_keys() -> None:
    stored = {"gantool.train_options": json.dumps({"channels": 5, "from_the_future": 1})}
    assert train_options_from_metadata(TOY_SPEC, stored) == ToyTrainOptions(channels=5)
    with pytest.raises(CheckpointError, match="channels"):
        train_options_from_metadata(TOY_SPEC, {"gantool.train_options": '{"channels": "wide"}'})


def test_load_errors_are_one_line(tmp_path: Path, trained: Trainer) -> None:
    path = trained.result.exported
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors", TOY_SPEC)
    (tmp_path / "junk.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{junk")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_model(tmp_path / "junk.safetensors", TOY_SPEC)
    with pytest.raises(CheckpointError, match="is for task 'toy', not 'other'"):
        load_model(path, replace(TOY_SPEC, name="other"))
    tensors, metadata = load_file(path), read_metadata(path)
    save_file({**tensors, "generator.extra": torch.zeros(1)}, str(tmp_path / "extra.safetensors"), metadata)
    with pytest.raises(CheckpointError, match=r"does not fit network 'generator' \(unexpected extra\)"):
        load_model(tmp_path / "extra.safetensors", TOY_SPEC)
    narrower = {**metadata, "gantool.train_options": json.dumps({"channels": 4})}
    save_file(tensors, str(tmp_path / "shape.safetensors"), narrower)
    with pytest.raises(CheckpointError, match="has shape"):
        load_model(tmp_path / "shape.safetensors", TOY_SPEC)
    save_file({k: v for k, v in tensors.items() if "body.2" not in k}, str(tmp_path / "few.safetensors"), metadata)
    with pytest.raises(CheckpointError, match="missing body.2.bias, body.2.weight"):
        load_model(tmp_path / "few.safetensors", TOY_SPEC)


def test_export_is_atomic_and_adds_suffix(tmp_path: Path) -> None:
    task = ToyTask(TOY_SPEC, ToyTrainOptions())
    written = export_model(tmp_path / "model", task, task.build_inference_networks())
    assert written == tmp_path / "model.safetensors"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_check_task_helper_passes_for_the_toy(tmp_path: Path) -> None:
    check_task(TOY_SPEC, tmp_path, tmp_path / "run", ToyTrainOptions())


def test_shape_check_on_meta_skips_init_values_and_keeps_shapes() -> None:
    """The model check builds networks on the meta device; value-only init (kaiming_normal_, mul_, zero_)
    is skipped there, since the first such op would import torch._dynamo (seconds of a command's start)."""
    import subprocess
    import sys

    code = """
import sys, torch
from torch import nn
from gantool.engine.modelcheck import _SkipMetaFills
with torch.device("meta"), _SkipMetaFills():
    conv = nn.Conv2d(3, 8, 3)
    nn.init.kaiming_normal_(conv.weight)
    nn.init.normal_(conv.weight, 0.0, 0.02)
    conv.weight.data.mul_(0.1)
    conv.bias.data.zero_()
    flat = conv.weight.flatten(1)
assert conv.weight.is_meta and tuple(conv.weight.shape) == (8, 3, 3, 3) and tuple(flat.shape) == (8, 27)
assert "torch._dynamo" not in sys.modules, "meta-device init imported torch._dynamo"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-800:]
