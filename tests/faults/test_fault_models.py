"""Findings 2 and 8 (model files): metadata range-checked and tensor shapes compared with the header before
any network is built; malformed headers, tampered checkpoints and dangling symlinks are one-line errors."""

from __future__ import annotations

import json
import pickle
import re
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from gantool.cli.app import build_app
from gantool.engine import checkpoint as ckpt
from gantool.engine.export import export_model, load_model
from gantool.engine.training import Trainer
from gantool.errors import CheckpointError
from gantool.plugin.manager import build_plugin_system
from gantool.testing import TOY_SPEC, ToyTrainOptions, tiny_training_options
from gantool.weights import list_models, read_metadata
from gantool_superres import SPEC as SUPERRES
from gantool_superres.options import SuperResTrainOptions

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (untrained) superres model: compact, width 8, 2 blocks."""
    task = SUPERRES.load_implementation()(SUPERRES, SuperResTrainOptions(width=8, blocks=2, scale=2))
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    return export_model(path, task, task.build_inference_networks())


def tampered(source: Path, target: Path, **changes: object) -> Path:
    metadata = read_metadata(source)
    options = json.loads(metadata["gantool.train_options"])
    options.update(changes)
    metadata["gantool.train_options"] = json.dumps(options)
    save_file(load_file(str(source)), str(target), metadata=metadata)
    return target


@pytest.mark.parametrize(("change", "message"), [
    ({"blocks": 10**9}, "blocks.*must be at least 1 and at most 128, got 1000000000"),
    ({"width": -5}, "width.*must be at least 4 and at most 1024, got -5"),
    ({"width": 0}, "width.*must be at least 4 and at most 1024, got 0"),
    ({"scale": 8}, "scale.*must be at least 2 and at most 4, got 8; the file is damaged"),
    ({"width": 1e9}, "width.*expected int"),
    ({"width": 1000}, r"generator\.\S+ has shape \(8, .*options in the file describe \(1000, "),
    ({"blocks": 100}, "does not fit network 'generator' \\(missing body.10.bias"),
])
def test_model_metadata_is_checked_before_building(tiny_model: Path, tmp_path: Path, change, message) -> None:
    bad = tampered(tiny_model, tmp_path / "bad.safetensors", **change)
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=message) as caught:
        load_model(bad, SUPERRES)
    assert time.perf_counter() - started < 5 and "\n" not in str(caught.value)
    assert str(bad) in str(caught.value)


def test_tampered_model_through_the_cli_is_one_line_exit_1(tiny_model: Path, tmp_path: Path) -> None:
    bad = tampered(tiny_model, tmp_path / "bad.safetensors", blocks=10**9)
    image = tmp_path / "in.png"
    from PIL import Image
    Image.new("RGB", (8, 8)).save(image)
    app = build_app(build_plugin_system())
    result = runner.invoke(app, ["upscale", str(image), "--model", str(bad), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and "at most 128" in result.output and "Traceback" not in result.output


def test_a_tampered_pretrained_model_is_refused_before_building(tiny_model: Path, tmp_path: Path) -> None:
    """faults-2.md: `--pretrained width1e9.safetensors` gave an allocation traceback."""
    bad = tampered(tiny_model, tmp_path / "bad.safetensors", width=10**9)
    options = SuperResTrainOptions(width=8, blocks=2, scale=2, stage="gan", pretrained=str(bad))
    task = SUPERRES.load_implementation()(SUPERRES, options)
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match="width.*at most 1024, got 1000000000") as caught:
        task.build_networks()
    assert time.perf_counter() - started < 5 and "\n" not in str(caught.value)


@pytest.mark.parametrize(("name", "message"), [
    ("weights.pth", r"is not a \.safetensors file: gantool reads only \.safetensors models"),
    ("folder", r"is a folder; pass the \.safetensors file in it"),
])
def test_model_that_is_a_folder_or_a_pth_says_so(tmp_path: Path, name: str, message: str) -> None:
    """faults-2.md: `--model weights.pth` (or a folder) said "not found (no such file)" although it exists."""
    target = tmp_path / name
    if name == "folder":
        target.mkdir()
    else:
        target.write_bytes(pickle.dumps(Evil()))
    image = tmp_path / "in.png"
    from PIL import Image
    Image.new("RGB", (8, 8)).save(image)
    app = build_app(build_plugin_system())
    result = runner.invoke(app, ["upscale", str(image), "--model", str(target), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1 and re.search(message, result.output) and "not found" not in result.output
    assert "pwned" not in result.output


def test_the_untouched_model_still_loads(tiny_model: Path) -> None:
    loaded = load_model(tiny_model, SUPERRES)
    assert loaded.scale == 2 and set(loaded.networks) == {"generator"}


def _header_file(path: Path, header: bytes) -> Path:
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


@pytest.mark.parametrize("header", [b"[]", b"[" * 200_000 + b"]" * 200_000, b'"text"'])
def test_malformed_headers_are_one_line(tmp_path: Path, header: bytes) -> None:
    path = _header_file(tmp_path / "bad.safetensors", header)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        read_metadata(path)


def test_models_list_survives_dangling_symlinks_and_bad_files(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "gone.safetensors").symlink_to(tmp_path / "nonexistent.safetensors")
    _header_file(tmp_path / "list.safetensors", b"[]")
    _header_file(tmp_path / "deep.safetensors", b"[" * 200_000 + b"]" * 200_000)
    monkeypatch.setenv("GANTOOL_MODELS", str(tmp_path))
    entries = {entry.name: entry for entry in list_models()}
    assert "no such file" in entries["gone"].error and "not a safetensors file" in entries["list"].error
    assert entries["deep"].error
    result = runner.invoke(build_app(build_plugin_system(entry_points=[])), ["models", "list", "--json"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def checkpointed(tmp_path: Path) -> Path:
    Trainer(TOY_SPEC, tiny_training_options(tmp_path, steps=2, checkpoint_every=2), ToyTrainOptions(),
            progress=False).fit()
    return tmp_path / "step-000002"


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("content", ["raw-pickle", "torch-object", "wrong-structure", "not-a-dict"])
def test_tampered_state_pt_is_refused_in_one_line(checkpointed: Path, tmp_path: Path, content: str, capsys) -> None:
    state = checkpointed / ckpt.STATE_FILE
    if content == "raw-pickle":
        state.write_bytes(pickle.dumps(Evil()))
    elif content == "torch-object":
        torch.save(Evil(), state)
    elif content == "wrong-structure":
        torch.save({"hello": 1}, state)
    else:
        torch.save([1, 2], state)
    trainer = Trainer(TOY_SPEC, tiny_training_options(tmp_path, steps=4, resume="auto"), ToyTrainOptions(),
                      progress=False)
    with pytest.raises(CheckpointError) as caught:
        trainer.fit()
    text = str(caught.value)
    assert "\n" not in text and str(checkpointed) in text and "weights_only" not in text
    assert "pwned" not in capsys.readouterr().out
