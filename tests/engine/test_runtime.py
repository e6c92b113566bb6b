"""Runtime policy, TrainStep, EMA and LR schedules in isolation."""

from __future__ import annotations

import math
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from gantool.engine.ema import EMA
from gantool.engine.runtime import Runtime, resolve_device, resolve_precision, tune_cpu_allocator
from gantool.engine.schedules import build_scheduler, lr_multiplier
from gantool.engine.step import TrainStep, check_finite, reduce_scalars
from gantool.errors import TrainingError, UsageError

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(os.environ.get("GANTOOL_TEST_DEVICE", "cpu") != "cuda"
                                or not torch.cuda.is_available(), reason="set GANTOOL_TEST_DEVICE=cuda")


def cpu_runtime() -> Runtime:
    return Runtime.from_options(SimpleNamespace(device="cpu", precision="auto", compile=False))


# ---------------------------------------------------------------------------------------------- runtime


def test_cpu_is_fp32_unless_bf16_is_asked_for_and_native(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_precision("auto", CPU) == "fp32"
    monkeypatch.setenv("GANTOOL_CPU_BF16", "0")  # a CPU without AVX512-BF16/AMX
    for precision in ("bf16", "fp16"):
        with pytest.raises(UsageError, match=f"--precision {precision} is not available on .*fp32") as caught:
            resolve_precision(precision, CPU)
        assert "\n" not in str(caught.value)
    monkeypatch.setenv("GANTOOL_CPU_BF16", "1")
    assert resolve_precision("bf16", CPU) == "bf16" and resolve_precision("auto", CPU) == "fp32"
    with pytest.raises(UsageError, match="fp16 is not available on the CPU"):
        resolve_precision("fp16", CPU)
    with pytest.raises(UsageError, match="not one of"):
        resolve_precision("fp8", CPU)


def test_cpu_bf16_inference_is_close_to_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    """The opt-in CPU bf16 path: autocast in the processor, float32 out, and within bf16 rounding of fp32."""
    from gantool.engine.processor import make_processor, prepare_networks
    from gantool.image.io import Image

    monkeypatch.setenv("GANTOOL_CPU_BF16", "1")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.PReLU(8), nn.Conv2d(8, 3, 3, padding=1)).eval()

    class Identityish:
        def predict(self, networks, x, options):  # noqa: ANN001, ANN201
            return x + 0.1 * networks["g"](x)

    image = Image(np.random.default_rng(0).random((37, 45, 3), dtype=np.float32))
    outputs = {}
    for precision in ("fp32", "bf16"):
        runtime = Runtime.from_options(SimpleNamespace(device="cpu", precision=precision, compile=False))
        assert runtime.precision == precision
        networks = prepare_networks({"g": net}, runtime)
        for tile in (0, 16):  # whole image and tiled (with a dynamic last tile)
            process = make_processor(Identityish(), networks, None, scale=1, tile=tile, overlap=4, runtime=runtime)
            outputs[precision, tile] = process(image).color
    for tile in (0, 16):
        assert outputs["bf16", tile].dtype == np.float32
        gap = np.abs(outputs["bf16", tile] - outputs["fp32", tile])
        assert 0 < gap.max() < 0.01  # bf16 did run (not bit-identical), and stays within its rounding


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_without_cuda_is_one_line_usage_error() -> None:
    for name in ("cuda", "cuda:1"):
        with pytest.raises(UsageError, match="CUDA is not available.*use --device cpu") as caught:
            resolve_device(name)
        assert "\n" not in str(caught.value)
    with pytest.raises(UsageError, match="not one of auto, cpu"):
        resolve_device("tpu")


def test_cpu_runtime_defaults() -> None:
    runtime = cpu_runtime()
    assert (runtime.device, runtime.precision, runtime.world_size, runtime.is_main) == (CPU, "fp32", 1, True)
    assert not runtime.grad_scaler().is_enabled()
    assert runtime.memory_format(training=True) == torch.contiguous_format
    assert runtime.memory_format(training=False) == torch.channels_last  # ~2x faster CPU inference
    batch = runtime.to_device({"x": torch.rand(1, 3, 4, 4), "y": [torch.zeros(2)]}, training=False)
    assert batch["x"].is_contiguous(memory_format=torch.channels_last)
    with runtime.autocast():
        assert not torch.is_autocast_enabled("cpu")
    assert runtime.gather_objects(5) == [5] and runtime.broadcast_object("a") == "a"


def test_tune_cpu_allocator_is_idempotent() -> None:
    assert tune_cpu_allocator() == tune_cpu_allocator()


@needs_cuda
def test_cuda_auto_precision_and_layout() -> None:
    runtime = Runtime.from_options(SimpleNamespace(device="cuda", precision="auto", compile=False))
    assert runtime.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert runtime.memory_format(training=True) == torch.channels_last
    fp16 = Runtime.from_options(SimpleNamespace(device="cuda", precision="fp16", compile=False))
    assert fp16.grad_scaler().is_enabled()
    with fp16.autocast():
        assert (torch.ones(2, 2, device="cuda") @ torch.ones(2, 2, device="cuda")).dtype == torch.float16


# --------------------------------------------------------------------------------------------- TrainStep


def make_step(grad_clip: float | None = None) -> tuple[TrainStep, dict[str, nn.Module]]:
    networks = {"g": nn.Linear(2, 2), "d": nn.Linear(2, 1)}
    optimizers = {name: torch.optim.SGD(net.parameters(), lr=0.1) for name, net in networks.items()}
    runtime = cpu_runtime()
    step = TrainStep(runtime=runtime, networks=networks, raw_networks=networks, optimizers=optimizers,
                     scaler=runtime.grad_scaler(), grad_clip=grad_clip)
    return step, networks


def test_update_steps_only_its_network_and_ignores_leaked_grads() -> None:
    step, networks = make_step()
    before_g = networks["g"].weight.clone()
    fake = networks["g"](torch.ones(1, 2))
    d_loss = networks["d"](fake).mean()  # no detach: grads leak into g
    step.update("d", d_loss)
    assert torch.equal(networks["g"].weight, before_g) and step.updated == ["d"]
    with step.frozen("d") as critic:
        assert not any(p.requires_grad for p in critic.parameters())
        g_loss = critic(networks["g"](torch.ones(1, 2))).mean()
    assert all(p.requires_grad for p in networks["d"].parameters())
    before_d = networks["d"].weight.clone()
    step.update("g", g_loss)
    assert not torch.equal(networks["g"].weight, before_g) and torch.equal(networks["d"].weight, before_d)
    with pytest.raises(KeyError, match="no optimizer named 'x'"):
        step.update("x", g_loss)


def test_grad_clip_limits_the_update() -> None:
    step, networks = make_step(grad_clip=1e-3)
    before = networks["g"].weight.clone()
    step.update("g", 1e6 * networks["g"](torch.ones(1, 2)).sum())
    assert (networks["g"].weight - before).norm() <= 0.1 * 1e-3 * 1.0001


def test_losses_are_reduced_and_checked() -> None:
    means, flags = reduce_scalars({"a": torch.tensor(2.0), "b": 0.5}, [1.0], cpu_runtime())
    assert means == {"a": 2.0, "b": 0.5} and flags == [1.0]
    with pytest.raises(TrainingError, match="must be scalars"):
        reduce_scalars({"a": torch.ones(2)}, [], cpu_runtime())
    check_finite(means, 0)
    with pytest.raises(TrainingError, match=r"loss 'b' became inf at step 8; .*'runs/x/step-000006'"):
        check_finite({"a": 1.0, "b": math.inf}, 7, last_checkpoint="runs/x/step-000006")


# ------------------------------------------------------------------------------------------------- EMA


def test_ema_warmup_buffers_and_state() -> None:
    live = nn.BatchNorm1d(2)
    ema = EMA({"n": live}, decay=0.99)
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(10_000) == 0.99
    with torch.no_grad():
        live.weight.fill_(2.0)
        live.running_mean.fill_(5.0)
    ema.update({"n": live})
    assert torch.allclose(ema.networks["n"].weight, torch.full((2,), 1.9))  # 1 + 0.9 * (2 - 1)
    assert torch.equal(ema.networks["n"].running_mean, live.running_mean)  # copied, not averaged
    assert not ema.networks["n"].training and not ema.networks["n"].weight.requires_grad
    other = EMA({"n": nn.BatchNorm1d(2)}, decay=0.99)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and torch.equal(other.networks["n"].weight, ema.networks["n"].weight)


# ------------------------------------------------------------------------------------------- schedules


def test_schedule_values() -> None:
    constant = lr_multiplier("constant", 10)
    assert [constant(s) for s in (0, 9)] == [1.0, 1.0]
    linear = lr_multiplier("linear", 10, decay_start=0.5)
    assert [linear(s) for s in (0, 5, 6, 8, 10)] == [1.0, 1.0, 0.8, 0.4, 0.0]
    cosine = lr_multiplier("cosine", 10, warmup_steps=2)
    assert [cosine(s) for s in (0, 1, 2)] == [0.5, 1.0, 1.0]
    assert cosine(6) == pytest.approx(0.5) and cosine(10) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_multiplier("step", 10)


def test_scheduler_steps_the_optimizer_and_checkpoints() -> None:
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
    scheduler = build_scheduler(optimizer, "linear", 4, decay_start=0.0)
    rates = []
    for _ in range(4):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == [1.0, 0.75, 0.5, 0.25]
    assert scheduler.state_dict()["last_epoch"] == 4
