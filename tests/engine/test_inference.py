"""Tests for gantool.engine.inference with a tiny fake task (no real model, CPU only).

The first half drives ``make_processor`` directly; the tests under "end to end" go through
``export_model`` + ``load_model`` (gantool.engine.export) and the batch pipeline.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gantool.engine import inference
from gantool.engine.inference import make_processor, resize_alpha, resolve_tile, run_inference, run_sampling
from gantool.engine.runtime import Runtime
from gantool.errors import InputError, PluginError, UsageError
from gantool.io import Image, read_image, write_image
from gantool.settings import InferenceOptions, SampleOptions
from gantool.spec import TaskSpec
from gantool.task import Task

MODULE = "_gantool_test_inference_tasks"


class TinyNet(nn.Module):
    """3x3 conv + PixelShuffle + sigmoid: receptive radius 1, deterministic weights."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator) * 0.3)
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.shuffle(self.conv(x)))


class FakeTask(Task):
    calls: list[tuple[int, ...]] = []

    def build_networks(self) -> dict[str, nn.Module]:
        return {"generator": TinyNet(self.spec.scale), "critic": nn.Conv2d(3, 1, 3)}

    def predict(self, networks, image, options=None):
        FakeTask.calls.append(tuple(image.shape))
        return networks["generator"](image)


class ColorizingTask(FakeTask):
    output_gray_for_gray_input = False


class SamplingTask(Task):
    def build_networks(self) -> dict[str, nn.Module]:
        return {"generator": nn.Conv2d(3, 3, 1)}

    def sample(self, networks, count, generator, options=None):
        noise = torch.rand(count, 3, 8, 8, generator=generator, device=generator.device)
        return networks["generator"](noise).clamp(0, 1)


@pytest.fixture(autouse=True)
def task_module(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType(MODULE)
    module.FakeTask, module.SamplingTask, module.ColorizingTask = FakeTask, SamplingTask, ColorizingTask
    monkeypatch.setitem(sys.modules, MODULE, module)
    FakeTask.calls = []


def spec(scale: int = 2, cls: str = "FakeTask", kind: str = "image-to-image") -> TaskSpec:
    return TaskSpec(name="fake", verb="fake" if kind == "image-to-image" else "dream", summary="Fake task.",
                    implementation=f"{MODULE}:{cls}", scale=scale, kind=kind)


def processor(scale: int = 2, tile: int = 0, cls: type[Task] = FakeTask):
    task = cls(spec(scale))
    networks = {k: v.eval() for k, v in task.build_inference_networks().items()}
    return make_processor(task, networks, None, scale=scale, tile=tile, overlap=8,
                          runtime=Runtime(device=torch.device("cpu")))


def rgb(h: int = 20, w: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3), dtype=np.float32)


# ------------------------------------------------------------------------------------- make_processor


def test_gray_stays_gray_and_matches_the_rgb_result_luma() -> None:
    gray = rgb()[..., :1]
    out = processor()(Image(gray))
    assert out.color.shape == (40, 48, 1) and out.alpha is None
    as_rgb = processor()(Image(np.repeat(gray, 3, axis=2))).color
    np.testing.assert_allclose(out.color[..., 0], as_rgb @ inference.LUMA, atol=1e-6)
    assert processor(cls=ColorizingTask)(Image(gray)).color.shape == (40, 48, 3)


def test_alpha_is_kept_at_scale_one_and_resized_bicubic_otherwise() -> None:
    alpha = np.linspace(0, 1, 20 * 24, dtype=np.float32).reshape(20, 24, 1)
    same = processor(scale=1)(Image(rgb(), alpha))
    assert same.alpha is not None and np.array_equal(same.alpha, alpha)
    up = processor(scale=2)(Image(rgb(), alpha))
    assert up.alpha.shape == (40, 48, 1) and up.color.shape == (40, 48, 3)
    expected = torch.nn.functional.interpolate(torch.from_numpy(alpha[..., 0])[None, None], scale_factor=2,
                                               mode="bicubic", align_corners=False).clamp(0, 1)[0, 0]
    np.testing.assert_allclose(up.alpha[..., 0], expected.numpy(), atol=1e-6)
    assert up.alpha.min() >= 0 and up.alpha.max() <= 1
    assert resize_alpha(None, (4, 4)) is None


def test_bit_depth_is_carried_through() -> None:
    assert processor()(Image(rgb(), None, 16)).bit_depth == 16
    assert processor()(Image(rgb(), None, 8)).bit_depth == 8


def test_tiled_path_is_used_and_matches_untiled() -> None:
    image = Image(rgb(40, 44))
    whole = processor(tile=0)(image).color
    assert FakeTask.calls == [(1, 3, 40, 44)]
    FakeTask.calls = []
    tiled = processor(tile=16)(image).color
    assert len(FakeTask.calls) > 4 and all(s[-2] <= 16 and s[-1] <= 16 for s in FakeTask.calls)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_resolve_tile() -> None:
    assert resolve_tile("0", scale=4, device="cpu") == 0
    assert resolve_tile(" 256 ", scale=4, device="cpu") == 256
    assert 64 <= resolve_tile("auto", scale=4, device="cpu") <= 2048
    with pytest.raises(UsageError, match="--tile"):
        resolve_tile("big", scale=4, device="cpu")


# --------------------------------------------------------------------- end to end (needs load_model)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    from gantool.engine.export import export_model

    task = FakeTask(spec())
    return export_model(tmp_path / "fake.safetensors", task, task.build_inference_networks())


def options(out: Path, **kwargs) -> InferenceOptions:
    return InferenceOptions(output=out, device="cpu", tile="16", workers=1, **kwargs)


def test_run_inference_end_to_end_gray_rgba_16bit(tmp_path: Path, model_file: Path) -> None:
    src = tmp_path / "src"
    alpha = np.full((20, 24, 1), 0.5, dtype=np.float32)
    write_image(src / "gray.png", Image(rgb()[..., :1]))
    write_image(src / "rgba.png", Image(rgb(), alpha))
    write_image(src / "deep.png", Image(rgb(), None, 16))
    result = run_inference(spec=spec(), model_path=model_file, options=options(tmp_path / "out"),
                           task_options=None, inputs=[str(src)])
    assert len(result.done) == 3
    gray, rgba, deep = (read_image(tmp_path / "out" / n) for n in ("gray.png", "rgba.png", "deep.png"))
    assert gray.is_gray and gray.color.shape == (40, 48, 1)
    assert rgba.alpha is not None and rgba.alpha.shape == (40, 48, 1)
    np.testing.assert_allclose(rgba.alpha, 0.5, atol=1 / 255)
    assert deep.bit_depth == 16 and rgba.bit_depth == 8
    assert any(s[-1] <= 16 for s in FakeTask.calls)  # the --tile 16 path ran


def test_run_inference_resumes_and_fails_at_the_end(tmp_path: Path, model_file: Path) -> None:
    src = tmp_path / "src"
    write_image(src / "a.png", Image(rgb()))
    (src / "b.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="1 of 2 images failed"):
        run_inference(spec=spec(), model_path=model_file, options=options(tmp_path / "out"), task_options=None,
                      inputs=[str(src)])
    assert (tmp_path / "out" / "a.png").is_file()
    FakeTask.calls = []
    (src / "b.png").unlink()
    result = run_inference(spec=spec(), model_path=model_file, options=options(tmp_path / "out"),
                           task_options=None, inputs=[str(src)])
    assert FakeTask.calls == [] and [r.reason for r in result.skipped] == ["done earlier (journal)"]


def test_run_inference_refuses_sample_tasks_and_empty_inputs(tmp_path: Path, model_file: Path) -> None:
    with pytest.raises(UsageError):
        run_inference(spec=spec(kind="sample"), model_path=model_file, options=options(tmp_path),
                      task_options=None, inputs=["x.png"])
    with pytest.raises(InputError, match="no input images"):
        run_inference(spec=spec(), model_path=model_file, options=options(tmp_path), task_options=None,
                      inputs=[])


def test_run_sampling_is_deterministic_per_seed(tmp_path: Path) -> None:
    from gantool.engine.export import export_model

    sample_spec = spec(scale=1, cls="SamplingTask", kind="sample")
    task = SamplingTask(sample_spec)
    model = export_model(tmp_path / "s.safetensors", task, task.build_inference_networks())

    def sample(out: Path, seed: int) -> list[bytes]:
        paths = run_sampling(spec=sample_spec, model_path=model, task_options=None,
                             options=SampleOptions(output=out, device="cpu", count=10, seed=seed))
        assert [p.name for p in paths] == [f"fake-seed{seed}-{i:04d}.png" for i in range(10)]
        return [p.read_bytes() for p in paths]

    first, again, other = sample(tmp_path / "a", 1), sample(tmp_path / "b", 1), sample(tmp_path / "c", 2)
    assert first == again and first != other and len(set(first)) == 10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_autocast_tiled_matches_cpu(tmp_path: Path, model_file: Path) -> None:
    src = tmp_path / "src"
    write_image(src / "gray.png", Image(rgb(40, 44)[..., :1]))
    write_image(src / "rgba.png", Image(rgb(40, 44), np.full((40, 44, 1), 0.25, np.float32)))
    write_image(src / "deep.png", Image(rgb(40, 44), None, 16))
    outputs = {}
    for device, tile in (("cpu", "0"), ("cuda", "16"), ("cuda", "auto")):
        out = tmp_path / f"{device}-{tile}"
        run_inference(spec=spec(), model_path=model_file, task_options=None, inputs=[str(src)],
                      options=InferenceOptions(output=out, device=device, tile=tile, workers=1))
        outputs[device, tile] = {n: read_image(out / n) for n in ("gray.png", "rgba.png", "deep.png")}
    for key in (("cuda", "16"), ("cuda", "auto")):
        for name, image in outputs[key].items():
            reference = outputs["cpu", "0"][name]
            assert image.mode == reference.mode and image.bit_depth == reference.bit_depth
            np.testing.assert_allclose(image.color, reference.color, atol=0.02)  # bf16/fp16 autocast


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_run_sampling_on_cuda(tmp_path: Path) -> None:
    from gantool.engine.export import export_model

    sample_spec = spec(scale=1, cls="SamplingTask", kind="sample")
    task = SamplingTask(sample_spec)
    model = export_model(tmp_path / "s.safetensors", task, task.build_inference_networks())
    runs = [run_sampling(spec=sample_spec, model_path=model, task_options=None,
                         options=SampleOptions(output=tmp_path / str(i), device="cuda", count=3, seed=4))
            for i in range(2)]
    assert [p.read_bytes() for p in runs[0]] == [p.read_bytes() for p in runs[1]]


def test_run_sampling_needs_a_sample_method(tmp_path: Path) -> None:
    from gantool.engine.export import export_model

    bad = spec(scale=1, cls="FakeTask", kind="sample")
    task = FakeTask(bad)
    model = export_model(tmp_path / "s.safetensors", task, task.build_inference_networks())
    with pytest.raises(PluginError, match="sample"):
        run_sampling(spec=bad, model_path=model, task_options=None,
                     options=SampleOptions(output=tmp_path, device="cpu", count=1))
