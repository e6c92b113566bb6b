"""Checkpoint folders: atomic writes, keep-last-N, resume resolution, weights_only loading, RNG round trip."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from gantool.engine import checkpoint as ckpt
from gantool.errors import CheckpointError


def save(run_dir: Path, step: int, keep: int = 3, task: str = "toy") -> Path:
    network = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(network.parameters())
    network(torch.rand(1, 3, 8, 8)).mean().backward()
    optimizer.step()
    state = {"step": step, "optimizers": {"net": optimizer.state_dict()}, "ranks": [{"rng": ckpt.capture_rng()}]}
    return ckpt.save_checkpoint(run_dir, step, networks={"net": network.state_dict()},
                                ema={"net": network.state_dict()}, state=state, meta={"task": task}, keep=keep)


def test_layout_and_weights_only_load(tmp_path: Path) -> None:
    path = save(tmp_path, 7)
    assert path == tmp_path / "step-000007"
    assert sorted(p.name for p in path.iterdir()) == ["ema.safetensors", "meta.json", "networks.safetensors",
                                                      "state.pt"]
    meta = json.loads((path / "meta.json").read_text())
    assert meta["step"] == 7 and meta["task"] == "toy" and meta["format"] == ckpt.FORMAT_VERSION
    loaded = ckpt.load_checkpoint(path, task="toy")  # torch.load(weights_only=True) inside
    assert set(loaded.networks["net"]) == {"weight", "bias"} and loaded.ema is not None
    assert loaded.state["optimizers"]["net"]["state"][0]["exp_avg"].shape == (4, 3, 3, 3)


def test_keep_last_n_and_no_temporaries(tmp_path: Path) -> None:
    for step in range(1, 6):
        save(tmp_path, step, keep=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-000004", "step-000005"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000004", "step-000005"]


def test_failed_save_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = save(tmp_path, 1)

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*step-000002' \(disk full\); the earlier"):
        save(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000001"]
    assert ckpt.latest_checkpoint(tmp_path) == good


def test_crashed_temporary_is_ignored_then_cleaned(tmp_path: Path) -> None:
    save(tmp_path, 1)
    crashed = tmp_path / ".tmp-step-000002-999"
    crashed.mkdir()
    (crashed / "networks.safetensors").write_bytes(b"partial")
    incomplete = tmp_path / "step-000003"  # e.g. copied by hand, missing files
    incomplete.mkdir()
    assert ckpt.latest_checkpoint(tmp_path) == tmp_path / "step-000001"
    save(tmp_path, 4)
    assert not crashed.exists()


def test_resolve_resume(tmp_path: Path) -> None:
    assert ckpt.resolve_resume(None, tmp_path) is None
    assert ckpt.resolve_resume("auto", tmp_path) is None  # nothing yet: start fresh
    save(tmp_path, 1)
    newest = save(tmp_path, 12)
    assert ckpt.resolve_resume("auto", tmp_path) == newest
    assert ckpt.resolve_resume(str(tmp_path / "step-000001"), tmp_path / "elsewhere").name == "step-000001"
    assert ckpt.resolve_resume(str(tmp_path), tmp_path / "elsewhere") == newest
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        ckpt.resolve_resume(str(tmp_path / "missing"), tmp_path)


def test_load_refuses_other_task_and_corrupt_files(tmp_path: Path) -> None:
    path = save(tmp_path, 1, task="superres")
    with pytest.raises(CheckpointError, match="belongs to task 'superres', not 'toy'"):
        ckpt.load_checkpoint(path, task="toy")
    (path / "networks.safetensors").write_bytes(b"garbage!")
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="missing or incomplete"):
        ckpt.load_checkpoint(tmp_path / "step-000009")


def test_rng_round_trip_through_weights_only_load(tmp_path: Path) -> None:
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    torch.save(ckpt.capture_rng(), tmp_path / "rng.pt")
    expected = (random.random(), np.random.randn(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    actual = (random.random(), np.random.randn(), torch.rand(3))
    assert actual[:2] == expected[:2] and torch.equal(actual[2], expected[2])


def test_flatten_rejects_dotted_network_names() -> None:
    with pytest.raises(ValueError, match="must not contain"):
        ckpt.flatten({"a.b": {"w": torch.zeros(1)}})
    back = ckpt.unflatten(ckpt.flatten({"g": {"body.0.weight": torch.ones(2)}}))
    assert list(back) == ["g"] and torch.equal(back["g"]["body.0.weight"], torch.ones(2))
