"""The training loop on the toy task: exact resume, Ctrl-C, NaN stop, samples, logs, DDP, CUDA paths."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from gantool.engine import checkpoint as ckpt
from gantool.engine.dataorder import ResumableBatchSampler
from gantool.engine.training import Trainer, read_metrics
from gantool.errors import CheckpointError, TrainingError, UsageError
from gantool.plugin.spec import TaskSpec
from gantool.testing import TOY_SPEC, ToyTask, ToyTrainOptions, tiny_training_options
from gantool.weights import read_metadata

HERE = Path(__file__).resolve().parent
TEST_DEVICE = os.environ.get("GANTOOL_TEST_DEVICE", "cpu")
needs_cuda = pytest.mark.skipif(TEST_DEVICE != "cuda" or not torch.cuda.is_available(),
                                reason="set GANTOOL_TEST_DEVICE=cuda on a machine with CUDA")


def train(run_dir: Path, task_options: ToyTrainOptions | None = None, spec: TaskSpec = TOY_SPEC,
          **overrides: Any) -> Trainer:
    trainer = Trainer(spec, tiny_training_options(run_dir, **overrides), task_options or ToyTrainOptions(),
                      command="pytest", progress=False)
    trainer.result = trainer.fit()
    return trainer


def losses_by_step(run_dir: Path) -> dict[int, dict[str, float]]:
    return {record["step"]: record["losses"] for record in read_metrics(run_dir)}


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_is_exact(tmp_path: Path, workers: int) -> None:
    whole = train(tmp_path / "whole", steps=6, num_workers=workers)
    train(tmp_path / "split", steps=3, num_workers=workers)
    assert (tmp_path / "split" / "step-000003").is_dir()
    resumed = train(tmp_path / "split", steps=6, num_workers=workers, resume="auto")
    assert resumed.resumed_from == tmp_path / "split" / "step-000003"
    expected, actual = losses_by_step(tmp_path / "whole"), losses_by_step(tmp_path / "split")
    assert sorted(actual) == list(range(1, 7))  # one consistent history in metrics.jsonl
    assert actual == expected  # bit-for-bit: floats compared exactly
    for name in whole.networks:
        assert_same_tensors(whole.networks[name].state_dict(), resumed.networks[name].state_dict())
    assert_same_tensors(load_file(tmp_path / "whole" / "model.safetensors"),
                        load_file(tmp_path / "split" / "model.safetensors"))


def test_checkpoint_holds_what_exact_resume_needs_and_no_more(tmp_path: Path) -> None:
    """Weights, Adam's two moments per trainable weight, EMA shadows of the inference networks only, all in
    float32 (no float64, no duplicates): the size of a checkpoint is set by the networks, not the run length."""
    trainer = train(tmp_path / "run", steps=2)
    checkpoint = ckpt.load_checkpoint(tmp_path / "run" / "step-000002")
    params = {name: sum(p.numel() for p in net.parameters()) for name, net in trainer.networks.items()}
    trainable = sum(p.numel() for net in trainer.networks.values() for p in net.parameters() if p.requires_grad)
    assert checkpoint.ema is not None and set(checkpoint.ema) == set(trainer.inference_names)
    floats: list[torch.Tensor] = []

    def collect(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            floats.extend([value] if value.is_floating_point() else [])
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)

    collect(checkpoint.state)
    assert all(t.dtype == torch.float32 for t in floats), {t.dtype for t in floats}
    moments = 0
    for optimizer in checkpoint.state["optimizers"].values():
        for per_param in optimizer["state"].values():
            assert set(per_param) <= {"step", "exp_avg", "exp_avg_sq"}, set(per_param)
            moments += per_param["exp_avg"].numel() + per_param["exp_avg_sq"].numel()
    assert moments == 2 * trainable  # each trainable weight once, in one optimizer
    stored = {name: sum(t.numel() for t in state.values()) for name, state in checkpoint.networks.items()}
    assert stored == params  # the networks once (this toy has no buffers)
    shadows = sum(t.numel() for state in checkpoint.ema.values() for t in state.values())
    assert shadows == sum(params[name] for name in trainer.inference_names)
    tensor_bytes = 4 * (sum(params.values()) + shadows) + sum(t.numel() * 4 for t in floats)
    on_disk = sum(f.stat().st_size for f in (tmp_path / "run" / "step-000002").iterdir())
    assert on_disk < tensor_bytes + 64 * 1024  # headers, meta.json, RNG states and pickling: small


def test_data_does_not_depend_on_workers(tmp_path: Path) -> None:
    a = losses_by_step(train(tmp_path / "a", steps=3, num_workers=0).run_dir)
    b = losses_by_step(train(tmp_path / "b", steps=3, num_workers=2).run_dir)
    assert a == b


def test_sampler_covers_each_epoch_once_per_rank_and_resumes_mid_epoch() -> None:
    def take(sampler: ResumableBatchSampler, count: int) -> list[list[tuple[int, int]]]:
        iterator = iter(sampler)
        return [next(iterator) for _ in range(count)]

    ranks = [take(ResumableBatchSampler(10, 2, seed=1, rank=r, world_size=2), 4) for r in range(2)]
    first_epoch = [index for rank in ranks for batch in rank[:2] for index, _ in batch]
    assert len(first_epoch) == 8 and len(set(first_epoch)) == 8  # 2 of 10 dropped, none repeated
    full = take(ResumableBatchSampler(10, 2, seed=1), 12)
    late = take(ResumableBatchSampler(10, 2, seed=1, start_epoch=1, start_batch=3), 4)
    assert late == full[8:12]  # 5 batches per epoch: epoch 1 batch 3 is the 9th


def test_interrupt_saves_and_resume_continues_exactly(tmp_path: Path) -> None:
    schedule = {"steps": 6, "lr_schedule": "linear", "warmup_steps": 1, "decay_start": 0.3}
    train(tmp_path / "whole", **schedule)
    stopped = train(tmp_path / "split", ToyTrainOptions(interrupt_at_step=3), **schedule)
    assert stopped.result.interrupted and stopped.result.step == 3
    assert ckpt.latest_checkpoint(tmp_path / "split") == tmp_path / "split" / "step-000003"
    assert not (tmp_path / "split" / "model.safetensors").exists()  # no export of an unfinished run
    train(tmp_path / "split", resume="auto", **schedule)
    assert losses_by_step(tmp_path / "split") == losses_by_step(tmp_path / "whole")


class SignalledToyTask(ToyTask):
    """Sends itself SIGINT during step 2, as a terminal Ctrl-C would."""

    def training_step(self, batch: dict[str, torch.Tensor], step: Any) -> dict[str, torch.Tensor]:
        if step.index == 2:
            signal.raise_signal(signal.SIGINT)
        return super().training_step(batch, step)


SIGNALLED_SPEC = replace(TOY_SPEC, implementation=f"{__name__}:SignalledToyTask")


def test_ctrl_c_finishes_the_step_then_saves(tmp_path: Path) -> None:
    previous = signal.getsignal(signal.SIGINT)
    trainer = train(tmp_path, spec=SIGNALLED_SPEC, steps=6)
    assert signal.getsignal(signal.SIGINT) is previous  # handler restored
    assert trainer.result.interrupted and trainer.result.step == 3
    assert ckpt.latest_checkpoint(tmp_path).name == "step-000003"


def test_nan_loss_stops_with_last_good_checkpoint_intact(tmp_path: Path) -> None:
    # step 5's loss is computed from step-000004's weights: that checkpoint is not "good", it is set aside
    with pytest.raises(TrainingError, match=r"loss 'g' became nan at step 5.*good checkpoint is '.*step-000002'"):
        train(tmp_path, ToyTrainOptions(nan_at_step=4), steps=8, checkpoint_every=2)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-000002"]
    assert (tmp_path / "bad-step-000004").is_dir()  # kept for inspection, invisible to --resume auto
    loaded = ckpt.load_checkpoint(tmp_path / "step-000002", task="toy")
    assert loaded.step == 2 and set(loaded.networks) == {"generator", "critic"}
    assert max(losses_by_step(tmp_path)) == 4  # the NaN step was not logged
    resumed = train(tmp_path, steps=6, resume="auto")  # and training can go on from the good one
    assert resumed.resumed_from == tmp_path / "step-000002" and resumed.result.step == 6


def test_outputs_of_a_run(tmp_path: Path) -> None:
    trainer = train(tmp_path, steps=4, sample_every=2, log_every=2, checkpoint_every=2, keep_checkpoints=1,
                    export=tmp_path / "out" / "toy.safetensors")
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step-000002.png", "step-000004.png"]
    assert [r["step"] for r in read_metrics(tmp_path)] == [2, 4]
    record = read_metrics(tmp_path)[0]
    assert set(record["losses"]) == {"d", "g"} and record["lr"] == {"generator": 2e-3, "critic": 2e-3}
    config = (tmp_path / "config.toml").read_text()
    assert "# command: pytest" in config and "steps = 4" in config and "channels = 8" in config
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-000004"]
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "out" / "toy.safetensors").is_file()
    assert trainer.result.exported == tmp_path / "out" / "toy.safetensors"


class WarningToyTask(ToyTask):
    """Reports a warning while the mean of ``step`` over the log interval lies in [2, 5): steps 2 to 5."""

    def training_step(self, batch: dict[str, torch.Tensor], step: Any) -> dict[str, torch.Tensor]:
        return {**super().training_step(batch, step), "step": torch.tensor(float(step.index))}

    def training_warnings(self, logged: Any, step: int) -> dict[str, str]:
        return {"late": f"mean step {logged['step']:g}"} if 2 <= logged["step"] < 5 else {}


def test_task_warnings_see_interval_means_print_once_and_are_recorded(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    train(tmp_path, spec=replace(TOY_SPEC, implementation=f"{__name__}:WarningToyTask"), steps=8, log_every=2)
    records = {record["step"]: record.get("warnings") for record in read_metrics(tmp_path)}
    # the means of steps 0-1, 2-3, 4-5, 6-7 (step.index counts from 0): 0.5, 2.5, 4.5, 6.5
    assert records == {2: None, 4: {"late": "mean step 2.5"}, 6: {"late": "mean step 4.5"}, 8: None}
    printed = capsys.readouterr()
    assert (printed.out + printed.err).count("warning at step") == 1  # printed when it appeared, not again


def test_resume_refuses_another_tasks_run(tmp_path: Path) -> None:
    train(tmp_path, steps=2)
    other = replace(TOY_SPEC, name="other")
    with pytest.raises(Exception, match="belongs to task 'toy', not 'other'"):
        train(tmp_path, spec=other, steps=3, resume="auto")


def test_resume_with_another_architecture_is_a_clear_error(tmp_path: Path) -> None:
    train(tmp_path, steps=2)
    with pytest.raises(CheckpointError, match="does not fit network 'generator'.*architecture options"):
        train(tmp_path, ToyTrainOptions(channels=4), steps=3, resume="auto")


def test_fresh_run_refuses_a_folder_with_checkpoints(tmp_path: Path) -> None:
    train(tmp_path, steps=2)
    with pytest.raises(UsageError, match="already holds checkpoints.*--resume auto"):
        train(tmp_path, steps=3)


def test_too_small_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="fewer than one batch"):
        train(tmp_path, ToyTrainOptions(dataset_size=3), batch_size=4)


@pytest.mark.slow
def test_two_process_gloo_ddp(tmp_path: Path) -> None:
    """torchrun with 2 CPU processes: gradients are synchronised and the checkpoint holds both ranks."""
    path = os.pathsep.join(filter(None, [str(HERE), str(HERE.parents[1]), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(HERE / "ddp_worker.py"), str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rank0, rank1 = (load_file(tmp_path / f"rank{r}.safetensors") for r in range(2))
    assert_same_tensors(rank0, rank1)  # DDP kept both replicas identical
    state = torch.load(tmp_path / "step-000004" / "state.pt", weights_only=True)
    assert len(state["ranks"]) == 2
    assert not torch.equal(state["ranks"][0]["rng"]["torch"], state["ranks"][1]["rng"]["torch"])
    assert ckpt.load_checkpoint(tmp_path / "step-000004").meta["world_size"] == 2
    assert (tmp_path / "model.safetensors").is_file() and len(read_metrics(tmp_path)) == 4


_GROUP_STOP_SCRIPT = """
import sys
from pathlib import Path
from gantool.engine.training import Trainer
from gantool.testing import TOY_SPEC, ToyTrainOptions, tiny_training_options
run = Path(sys.argv[1])
options = tiny_training_options(run, steps=100_000, num_workers=2, log_every=1, checkpoint_every=100_000)
result = Trainer(TOY_SPEC, options, ToyTrainOptions(dataset_size=64), progress=False).fit()
print("interrupted" if result.interrupted else "finished", result.step)
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_signal_to_the_whole_process_group_saves_a_checkpoint(tmp_path: Path, sig: int) -> None:
    """systemctl stop, scancel and Ctrl-C signal the data workers too: they leave stopping to the trainer,
    which finishes its step and saves (a worker that died first made it crash on torch's worker error)."""
    path = os.pathsep.join(filter(None, [str(HERE.parents[1]), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    process = subprocess.Popen([sys.executable, "-c", _GROUP_STOP_SCRIPT, str(tmp_path)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and len(read_metrics_safely(tmp_path)) < 3:
        time.sleep(0.05)
    os.killpg(process.pid, sig)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and stdout.startswith("interrupted"), stdout + stderr[-2000:]
    stopped_at = int(stdout.split()[1])
    assert ckpt.latest_checkpoint(tmp_path) == tmp_path / f"step-{stopped_at:06d}"


def read_metrics_safely(run_dir: Path) -> list[dict[str, Any]]:
    """The metrics so far, or none while the file is missing or half written."""
    try:
        return read_metrics(run_dir)
    except (OSError, ValueError):
        return []


# ------------------------------------------------------------------------------------------ CUDA only


@needs_cuda
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_cuda_mixed_precision(tmp_path: Path, precision: str) -> None:
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    trainer = train(tmp_path, steps=4, device="cuda", precision=precision, checkpoint_every=2)
    assert trainer.runtime.precision == precision
    assert trainer.scaler.is_enabled() == (precision == "fp16")
    weight = trainer.networks["generator"].body[0].weight
    assert weight.is_cuda and weight.is_contiguous(memory_format=torch.channels_last)
    state = torch.load(tmp_path / "step-000004" / "state.pt", weights_only=True)
    assert ("scale" in state["scaler"]) == (precision == "fp16")
    assert "cuda" in state["ranks"][0]["rng"]
    resumed = train(tmp_path, steps=6, device="cuda", precision=precision, resume="auto")
    assert resumed.result.step == 6 and resumed.scaler.is_enabled() == (precision == "fp16")


@needs_cuda
def test_cuda_resume_is_exact_in_fp32(tmp_path: Path) -> None:
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    options = {"device": "cuda", "precision": "fp32"}
    train(tmp_path / "whole", steps=6, **options)
    train(tmp_path / "split", steps=3, **options)
    train(tmp_path / "split", steps=6, resume="auto", **options)
    assert losses_by_step(tmp_path / "split") == losses_by_step(tmp_path / "whole")


@needs_cuda
def test_cuda_compile_and_exact_export(tmp_path: Path) -> None:
    trainer = train(tmp_path, steps=3, device="cuda", precision="bf16" if torch.cuda.is_bf16_supported()
                    else "fp16", compile=True)
    assert trainer.result.step == 3 and all(k.count("_orig_mod") == 0 and not k.startswith("module.")
                                            for k in load_file(tmp_path / "step-000003" / "networks.safetensors"))


def test_changed_options_ignores_tuples_that_came_back_as_lists() -> None:
    """A checkpoint's options went through JSON: ``[0.1, 0.6]`` there is the ``(0.1, 0.6)`` of today."""
    from gantool.engine.resume import changed_options

    assert changed_options({"ratio": [0.1, 0.6], "lr": 2e-4}, {"ratio": (0.1, 0.6), "lr": 2e-4}) == ""
    assert changed_options({"ratio": [0.1, 0.6]}, {"ratio": (0.1, 0.5)}) == "ratio [0.1, 0.6] -> (0.1, 0.5)"
    assert changed_options({"lr": 2e-4}, {"lr": 1e-6}) == "lr 0.0002 -> 1e-06"


def test_resume_notes_an_option_the_checkpoint_predates_when_it_is_not_the_default(tmp_path: Path) -> None:
    import json
    import shutil

    train(tmp_path / "a", steps=2, checkpoint_every=2)
    meta_path = tmp_path / "a" / "step-000002" / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["task_options"]["lr"]  # as if written before the option existed (it ran at the default)
    meta_path.write_text(json.dumps(meta))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    same = train(tmp_path / "a", steps=3, resume="auto")
    assert not any("options changed" in note for note in same.notes)
    changed = train(tmp_path / "b", ToyTrainOptions(lr=1e-4), steps=3, resume="auto")
    assert [note for note in changed.notes if "options changed" in note] == [
        "options changed since step-000002 (applied): lr 0.002 -> 0.0001"]


def test_resume_notes_a_changed_schedule_but_not_a_longer_constant_run(tmp_path: Path) -> None:
    """A new --lr-schedule (and, under a decaying one, a new --steps) reshapes the rest of the run: say so."""
    import shutil

    train(tmp_path / "a", steps=2, checkpoint_every=2)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    longer = train(tmp_path / "a", steps=3, resume="auto", num_workers=1)  # workers: not an optimisation option
    assert not any("options changed" in note for note in longer.notes)
    decayed = train(tmp_path / "b", steps=4, resume="auto", lr_schedule="linear", decay_start=0.25)
    assert [note for note in decayed.notes if "options changed" in note] == [
        "options changed since step-000002 (applied): lr_schedule 'constant' -> 'linear', "
        "decay_start 0.5 -> 0.25"]
    again = train(tmp_path / "b", steps=6, resume="auto", lr_schedule="linear", decay_start=0.25)
    assert [note for note in again.notes if "options changed" in note] == [
        "options changed since step-000004 (applied): steps 4 -> 6"]


def test_init_loads_a_models_networks_and_leaves_the_critic_fresh(tmp_path: Path) -> None:
    """``--init MODEL``: fine-tuning starts from the file's generator; the critic is drawn fresh."""
    train(tmp_path / "first", steps=3)
    model = tmp_path / "first" / "model.safetensors"
    stored = load_file(model)
    fresh = train(tmp_path / "fresh", ToyTrainOptions(lr=0.0), steps=1)
    tuned = train(tmp_path / "tuned", ToyTrainOptions(lr=0.0), steps=1, init=str(model))  # lr 0: nothing moves
    weights = {f"generator.{key}": value for key, value in tuned.networks["generator"].state_dict().items()}
    assert_same_tensors(weights, stored)
    assert_same_tensors(tuned.networks["critic"].state_dict(), fresh.networks["critic"].state_dict())
    assert any("initialised generator from" in note and "critic starts fresh" in note for note in tuned.notes)

    with pytest.raises(UsageError, match="--init .*'generator' does not fit.*channels 8 -> 4"):
        train(tmp_path / "narrow", ToyTrainOptions(channels=4), steps=1, init=str(model))
    with pytest.raises(CheckpointError, match="not found"):
        train(tmp_path / "missing", steps=1, init="no-such-model")
    resumed = train(tmp_path / "first", steps=4, resume="auto", init="no-such-model")  # a resume ignores --init
    assert resumed.result.step == 4


def test_init_from_a_checkpoint_folder_loads_the_critic_too(tmp_path: Path) -> None:
    """``--init step-NNNNNN``: every network of the checkpoint (critic included), even from a folder holding
    only a float16 copy of its networks file (what a GPU lease brings back); the optimizer starts fresh."""
    train(tmp_path / "first", steps=3)
    folder = tmp_path / "first" / "step-000003"
    stored = load_file(folder / ckpt.NETWORKS_FILE)
    brought_back = tmp_path / "lease" / "step-000003"
    brought_back.mkdir(parents=True)
    save_file({k: v.half() for k, v in stored.items()}, str(brought_back / ckpt.NETWORKS_FILE))

    whole = train(tmp_path / "whole", ToyTrainOptions(lr=0.0), steps=1, init=str(folder))  # lr 0: nothing moves
    assert_same_tensors(ckpt.flatten({n: m.state_dict() for n, m in whole.networks.items()}), stored)
    assert any("from checkpoint" in note and "step 3" in note and "optimizer moments start fresh" in note
               for note in whole.notes)
    half = train(tmp_path / "half", ToyTrainOptions(lr=0.0), steps=1, init=str(brought_back))
    widened = {k: v.half().float() for k, v in stored.items()}
    assert_same_tensors(ckpt.flatten({n: m.state_dict() for n, m in half.networks.items()}), widened)

    with pytest.raises(UsageError, match="a folder must be a run's checkpoint"):
        train(tmp_path / "empty", steps=1, init=str(tmp_path / "lease"))
    (brought_back / ckpt.META_FILE).write_text('{"task": "another"}', encoding="utf-8")
    with pytest.raises(UsageError, match="a checkpoint of task 'another'"):
        train(tmp_path / "other", steps=1, init=str(brought_back))


def test_exporting_an_older_checkpoint_keeps_the_runs_history_and_model(tmp_path: Path) -> None:
    """``--resume step-2 --steps 2 --export F`` runs no step: it writes F (step 2) and leaves the run's
    metrics (steps 3, 4) and newest model alone; training on from step 2 does replace that history."""
    run = tmp_path / "run"
    train(run, steps=4, checkpoint_every=2, keep_checkpoints=5)
    newest = (run / "model.safetensors").read_bytes()
    old = tmp_path / "old.safetensors"
    train(run, steps=2, resume=str(run / "step-000002"), export=str(old))
    assert [record["step"] for record in read_metrics(run)] == [1, 2, 3, 4]
    assert (run / "model.safetensors").read_bytes() == newest
    assert read_metadata(old)["gantool.steps"] == "2"
    train(run, steps=3, resume=str(run / "step-000002"), checkpoint_every=2, keep_checkpoints=5)
    assert [record["step"] for record in read_metrics(run)] == [1, 2, 3]
    assert (run / "model.safetensors").read_bytes() != newest
