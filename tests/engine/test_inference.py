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

from gantool.engine import tileplan, tiling
from gantool.engine.inference import resolve_tile, run_inference
from gantool.engine.processor import make_processor
from gantool.engine.runtime import Runtime
from gantool.engine.sampling import run_sampling
from gantool.engine.tileplan import (
    CPU_IMAGE_BYTES,
    CPU_MIN_TILE,
    LiveTensorBytes,
    TilePlan,
    balanced_tile,
    full_image_bytes,
    measure_bytes_per_pixel,
)
from gantool.errors import InputError, PluginError, UsageError
from gantool.image.alpha import TRANSPARENT_ALPHA, fill_transparent, resize_alpha
from gantool.image.color import LUMA
from gantool.image.io import Image, read_image, write_image
from gantool.image.tensor import hwc_array, to_array
from gantool.plugin.common import InferenceOptions, SampleOptions
from gantool.plugin.spec import TaskSpec
from gantool.plugin.task import Task

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


class WholeImageTask(FakeTask):
    tileable = False


class CroppingTask(FakeTask):
    """Records each postprocess call and crops the stitched result by 2 pixels on each side."""

    post_calls: list[tuple[tuple[int, ...], tuple[int, int]]] = []

    def postprocess(self, output, source_size, options=None):
        CroppingTask.post_calls.append((tuple(output.shape), source_size))
        return output[..., 2:-2, 2:-2]


class BilinearTask(Task):
    """Upscales x2 by bilinear interpolation: a stand-in for any network that mixes neighbouring pixels."""

    def build_networks(self) -> dict[str, nn.Module]:
        return {"generator": nn.Upsample(scale_factor=2, mode="bilinear")}


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


def processor(scale: int = 2, tile: int | None = 0, cls: type[Task] = FakeTask):
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
    np.testing.assert_allclose(out.color[..., 0], as_rgb @ LUMA, atol=1e-6)
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


def test_untileable_task_always_sees_the_whole_image() -> None:
    processor(tile=16, cls=WholeImageTask)(Image(rgb(40, 44)))
    assert FakeTask.calls == [(1, 3, 40, 44)]


def test_resolve_tile() -> None:
    assert resolve_tile("0") == 0
    assert resolve_tile(" 256 ") == 256
    assert resolve_tile("auto") is None and resolve_tile("AUTO") is None
    with pytest.raises(UsageError, match="--tile"):
        resolve_tile("big")


def test_auto_tiling_measures_the_network_and_matches_untiled() -> None:
    image = Image(rgb(40, 44))
    whole = processor(tile=0)(image).color
    auto = processor(tile=None)(image).color  # a 40x44 image fits any auto tile: one call
    assert FakeTask.calls[-1] == (1, 3, 40, 44)
    np.testing.assert_allclose(auto, whole, atol=1e-6)


# ---------------------------------------------------------------------------------- postprocess, alpha


def test_postprocess_runs_once_on_the_stitched_image_and_alpha_follows_its_size() -> None:
    CroppingTask.post_calls = []
    alpha = np.full((40, 44, 1), 0.5, np.float32)
    out = processor(tile=16, cls=CroppingTask)(Image(rgb(40, 44), alpha))
    assert len(FakeTask.calls) > 4  # tiled ...
    assert CroppingTask.post_calls == [((1, 3, 80, 88), (40, 44))]  # ... but postprocessed once, whole
    assert out.color.shape == (76, 84, 3) and out.alpha.shape == (76, 84, 1)
    gray = processor(cls=CroppingTask)(Image(rgb(40, 44)[..., :1]))
    assert gray.color.shape == (76, 84, 1)


def test_default_postprocess_is_the_identity() -> None:
    output = torch.rand(1, 3, 4, 4)
    assert FakeTask(spec()).postprocess(output, (2, 2), None) is output
    assert Task.output_gray_for_gray_input is True


def red_disc(h: int = 20, w: int = 24, radius: float = 7.0) -> Image:
    """An opaque red disc with antialiased edges on a transparent background whose colour is black."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.clip(radius + 0.5 - np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2), 0, 1)[..., None]
    color = np.zeros((h, w, 3), np.float32)
    color[alpha[..., 0] > 0] = (1.0, 0.0, 0.0)
    return Image(color, alpha)


def test_alpha_edges_keep_their_colour_through_a_mixing_network() -> None:
    image = red_disc()
    task = BilinearTask(spec(2))
    out = make_processor(task, task.build_inference_networks(), None, scale=2, tile=0, overlap=8,
                         runtime=Runtime(device=torch.device("cpu")))(image)
    visible = out.alpha[..., 0] > 0.05
    assert out.color[visible][:, 0].min() > 0.999 and out.color[visible][:, 1:].max() < 1e-6
    naive = to_array(torch.nn.functional.interpolate(torch.from_numpy(image.color).permute(2, 0, 1)[None],
                                                     scale_factor=2, mode="bilinear"))
    assert naive[out.alpha[..., 0] > 0.5][:, 0].min() < 0.8  # what the hidden black does untreated


def test_fill_transparent_only_changes_invisible_pixels() -> None:
    color = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(1))
    alpha = torch.zeros(1, 1, 16, 20)
    alpha[..., 4:8, 2:6] = 1.0
    alpha[..., 10, 15] = 0.25
    filled = fill_transparent(color, alpha)
    visible = (alpha > TRANSPARENT_ALPHA).expand_as(color)
    assert torch.equal(filled[visible], color[visible])
    assert not torch.equal(filled[~visible], color[~visible])
    lo = torch.minimum(color[..., 4:8, 2:6].amin((-1, -2)), color[..., 10, 15])[0]  # filled colours are
    hi = torch.maximum(color[..., 4:8, 2:6].amax((-1, -2)), color[..., 10, 15])[0]  # means of visible ones
    assert ((filled[0] >= lo[:, None, None] - 1e-6) & (filled[0] <= hi[:, None, None] + 1e-6)).all()
    assert fill_transparent(color, torch.ones(1, 1, 16, 20)) is color  # nothing transparent
    assert fill_transparent(color, torch.zeros(1, 1, 16, 20)) is color  # nothing visible to copy


def test_fill_transparent_reaches_across_large_areas() -> None:
    color = torch.zeros(1, 3, 65, 63)
    color[..., 3, 60] = torch.tensor([0.2, 0.4, 0.6])
    alpha = torch.zeros(1, 1, 65, 63)
    alpha[..., 3, 60] = 1.0
    filled = fill_transparent(color, alpha)
    torch.testing.assert_close(filled, color[..., 3:4, 60:61].expand_as(color))


def test_resize_alpha_antialiases_only_when_shrinking() -> None:
    alpha = np.random.default_rng(0).random((40, 48, 1), dtype=np.float32)
    small = resize_alpha(alpha, (10, 12))
    expected = torch.nn.functional.interpolate(torch.from_numpy(alpha[..., 0])[None, None], size=(10, 12),
                                               mode="bicubic", antialias=True).clamp(0, 1)[0, 0]
    np.testing.assert_allclose(small[..., 0], expected.numpy(), atol=1e-6)


def test_hwc_array_matches_to_array_without_a_copy() -> None:
    values = torch.randn(1, 3, 5, 7) * 2
    values[0, 1, 2, 3], values[0, 0, 0, 0], values[0, 2, 4, 6] = float("nan"), float("inf"), -float("inf")
    expected = to_array(values)
    for layout in (torch.contiguous_format, torch.channels_last):
        tensor = values.clone(memory_format=layout)
        out = hwc_array(tensor)
        np.testing.assert_array_equal(out, expected)
        assert np.shares_memory(out, tensor.numpy())  # a view: no full-size copy
        assert out.flags.c_contiguous == (layout == torch.channels_last)
    expanded = values[:, :1].expand(1, 3, 5, 7)  # overlapping elements: copied, the source left alone
    np.testing.assert_array_equal(hwc_array(expanded), to_array(values[:, :1].expand(1, 3, 5, 7)))
    assert torch.isnan(values[0, 1, 2, 3])
    with pytest.raises(ValueError, match="batch of one"):
        hwc_array(torch.zeros(2, 3, 4, 4))


def test_hwc_array_clean_trusts_the_caller() -> None:
    """``clean=True`` (the processor sanitised the result on the GPU) skips the host passes: values as given."""
    values = torch.rand(1, 3, 5, 7)
    values[0, 0, 0, 0] = 1.5  # out of range on purpose: a clean caller would never hand this over
    out = hwc_array(values, clean=True)
    assert out[0, 0, 0] == np.float32(1.5)
    assert np.shares_memory(out, values.numpy())
    assert hwc_array(values)[0, 0, 0] == np.float32(1.0)


# ---------------------------------------------------------------------------------------- tile planning


def tile_count(length: int, tile: int, overlap: int) -> int:
    return 1 if tile == 0 or length <= tile else len(tiling._tile_starts(length, tile, min(overlap, tile // 2)))


@pytest.mark.parametrize(("height", "width", "tile"), [(2048, 2048, 520), (500, 2048, 520), (1000, 333, 256),
                                                       (130, 129, 64), (24, 20, 8), (100, 100, 100)])
def test_balanced_tile_keeps_the_count_and_shrinks_the_overlap(height: int, width: int, tile: int) -> None:
    planned = balanced_tile(height, width, tile, 16)
    if height <= tile and width <= tile:
        assert planned == 0
        return
    assert isinstance(planned, tuple)
    for length, side in zip((height, width), planned, strict=True):
        assert side <= tile
        if length <= tile:
            assert side == length  # an axis that fits is not split
        else:
            assert tile_count(length, side, 16) <= tile_count(length, tile, 16)
    assert balanced_tile(2048, 2048, 520, 16) == (424, 424)  # 5 x 5 tiles either way, 7% instead of 61% extra work


def test_each_axis_is_planned_on_its_own() -> None:
    """A 768x512 photo under a 512-pixel cap: 2 tiles across, none down, overlapping by the minimum only."""
    assert balanced_tile(512, 768, 512, 16) == (512, 392)
    assert TilePlan(512).tile_for(512, 768, scale=4, overlap=16) == (512, 392)


def test_auto_runs_an_image_whole_when_its_pixels_fit_the_budget() -> None:
    plan = TilePlan(None, budget=1e12, bytes_per_pixel=2000.0, cpu=False)  # a GPU-sized budget: 2048 px sides
    side = plan.auto_side(512, 768, 4)
    assert side * side >= 768 * 512 and plan.tile_for(512, 768, scale=4, overlap=16) == 0
    wide = plan.tile_for(200, 40000, scale=1, overlap=16)  # more pixels than a 2048^2 tile: tiled across only
    assert wide != 0 and wide[0] == 200 and wide[1] <= side


def test_auto_on_the_cpu_runs_ordinary_photos_whole_and_tiles_large_ones() -> None:
    plan = TilePlan(None, budget=1e10, bytes_per_pixel=2000.0, cpu=True)
    assert plan.auto_side(512, 768, 4) ** 2 < 512 * 768  # a square tile would split it...
    assert plan.tile_for(512, 768, scale=4, overlap=16) == 0  # ...but one pass needs well under 2x the bound
    whole = 2048 * 2048 * 2000.0 + full_image_bytes(2048, 2048, 4)
    assert whole > tileplan.CPU_WHOLE_IMAGE_BYTES and plan.tile_for(2048, 2048, scale=4, overlap=16) != 0
    tight = TilePlan(None, budget=5e8, bytes_per_pixel=2000.0, cpu=True)  # little free memory: tiles anyway
    assert tight.tile_for(512, 768, scale=4, overlap=16) != 0


def _tiled_work(height: int, width: int, tile) -> int:
    """Input pixels ``tiled_apply`` feeds the network for this tile (0: the image once)."""
    if tile == 0:
        return height * width
    th, tw = tile
    rows = tile_count(height, th, 16) if height > th else 1
    cols = tile_count(width, tw, 16) if width > tw else 1
    return rows * min(th, height) * cols * min(tw, width)


def test_per_axis_tiles_waste_little_work_on_an_ordinary_photo() -> None:
    square = 2 * 512 * 512  # the old plan: two 512-pixel squares across a 768x512 photo
    per_axis = _tiled_work(512, 768, TilePlan(512).tile_for(512, 768, scale=4, overlap=16))
    assert per_axis / (768 * 512) < 1.03 < square / (768 * 512)


def test_auto_tile_fits_the_budget_with_the_full_size_buffers() -> None:
    plan = TilePlan(None, budget=6e8, bytes_per_pixel=2000.0, cpu=True)
    side, full = plan.auto_side(1024, 1024, 4), full_image_bytes(1024, 1024, 4)
    assert full == 1024 * 1024 * 3 * 4 * (2 + 16)  # input and its tensor, the output
    assert side**2 * 2000 + full <= 6e8 < (side + 1) ** 2 * 2000 + full
    planned = plan.tile_for(1024, 1024, scale=4, overlap=16)
    assert planned != 0 and max(planned) <= side
    capped = TilePlan(None, budget=1e12, bytes_per_pixel=2000.0).auto_side(512, 512, 4)
    assert capped > 256 and capped**2 * 2000 + full_image_bytes(512, 512, 4) <= CPU_IMAGE_BYTES
    assert full_image_bytes(2048, 2048, 4) > CPU_IMAGE_BYTES  # no room left: the smallest useful tile
    assert TilePlan(None, budget=1e12, bytes_per_pixel=2000.0).auto_side(2048, 2048, 4) == CPU_MIN_TILE
    assert TilePlan(None, budget=1e12, bytes_per_pixel=2000.0, cpu=False).auto_side(8, 8, 4) == tileplan.AUTO_TILE_MAX
    assert TilePlan(None, budget=1e6, bytes_per_pixel=2000.0).auto_side(2048, 2048, 4) == tileplan.AUTO_TILE_MIN
    assert TilePlan(16).tile_for(40, 44, scale=2, overlap=8) == (16, 16)
    assert TilePlan(0).tile_for(9, 9, scale=2, overlap=8) == 0


def test_measure_bytes_per_pixel_counts_live_tensors() -> None:
    assert measure_bytes_per_pixel(lambda x: x * 2 + 1, "cpu", side=8) == 24  # two 3-channel float32 maps
    assert measure_bytes_per_pixel(lambda x: (x * 2).add_(1), "cpu", side=8) == 12  # in place: one
    assert measure_bytes_per_pixel(lambda x: (x * 2)[:, :1].exp(), "cpu", side=8) == 16  # a view costs nothing
    assert measure_bytes_per_pixel(lambda x: x.view(-1).sum(), "cpu", side=8) == pytest.approx(4 / 64)

    def broken(x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("needs 64 pixels")

    assert measure_bytes_per_pixel(broken, "cpu") is None
    with LiveTensorBytes() as meter:
        kept = torch.ones(10)
        del kept
        again = torch.ones(10)
    assert meter.peak == 40 and meter.live == 40 and again.numel() == 10


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
        result = run_sampling(spec=sample_spec, model_path=model, task_options=None,
                              options=SampleOptions(output=out, device="cpu", count=10, seed=seed))
        assert [p.name for p in result.images] == [f"fake-seed{seed}-{i:04d}.png" for i in range(10)]
        assert result.written == result.images
        return [p.read_bytes() for p in result.images]

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
    assert [p.read_bytes() for p in runs[0].images] == [p.read_bytes() for p in runs[1].images]


def test_run_sampling_needs_a_sample_method(tmp_path: Path) -> None:
    from gantool.engine.export import export_model

    bad = spec(scale=1, cls="FakeTask", kind="sample")
    task = FakeTask(bad)
    model = export_model(tmp_path / "s.safetensors", task, task.build_inference_networks())
    with pytest.raises(PluginError, match="sample"):
        run_sampling(spec=bad, model_path=model, task_options=None,
                     options=SampleOptions(output=tmp_path, device="cpu", count=1))
