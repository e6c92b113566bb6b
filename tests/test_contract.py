"""The contract every registered task meets, checked for each one (as timm tests every registered model).

Parametrised over the tasks of the installed plugins, built-ins and third-party alike, with their default
options and freshly initialised networks (no training, no bundled weights): build, export and load back
(same outputs), run through the engine's real processor on odd-sized RGB, gray, RGBA and 16-bit images,
tiled against untiled where the task allows tiling, and every option field reachable as a CLI flag.
A new task gets all of this for free by registering.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer

from gantool.cli.app import build_app
from gantool.engine.export import export_model, load_model
from gantool.engine.normstats import instance_norms
from gantool.engine.processor import make_processor
from gantool.engine.runtime import Runtime
from gantool.engine.tileplan import TilePlan
from gantool.engine.tiling import tiled_apply
from gantool.image.io import Image
from gantool.image.tensor import to_array, to_tensor
from gantool.plugin.manager import build_plugin_system
from gantool.plugin.spec import TaskSpec
from gantool.plugin.task import SampleRequest

SYSTEM = build_plugin_system()
SPECS = SYSTEM.registry.specs()
IMAGE_TASKS = [spec for spec in SPECS if spec.kind == "image-to-image"]


def _ids(specs: list[TaskSpec]) -> list[str]:
    return [spec.name for spec in specs]


def _defaults(option_class: type | None) -> Any:
    return option_class() if option_class is not None else None


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One freshly initialised model file per task, exported through the engine."""
    folder = tmp_path_factory.mktemp("contract")
    paths = {}
    for spec in SPECS:
        torch.manual_seed(0)
        task = spec.load_implementation()(spec, _defaults(spec.train_options))
        paths[spec.name] = export_model(folder / spec.name, task, task.build_inference_networks(),
                                        command="contract test")
    return paths


def _process(spec: TaskSpec, model: Path, image: Image, tile: int) -> Image:
    runtime = Runtime(torch.device("cpu"))
    loaded = load_model(model, spec)
    scale = int(loaded.metadata.get("gantool.scale") or spec.scale)
    process = make_processor(loaded.task, loaded.networks, _defaults(spec.infer_options), scale=scale,
                             tile=tile, overlap=16, runtime=runtime)
    if len(spec.inputs) == 1:
        return process(image)
    return process(image, _companions(spec, image.height, image.width))


def _companions(spec: TaskSpec, height: int, width: int) -> dict[str, Image]:
    """A file's worth of every extra input: a binary mask (about a quarter holes) or another photo."""
    found = {}
    for index, item in enumerate(spec.inputs[1:], start=1):
        if item.channels == 1:
            holes = np.random.default_rng(index).random((height, width, 1)) < 0.25
            found[item.name] = Image(holes.astype(np.float32))
        else:
            found[item.name] = Image(_photo(height, width, seed=index))
    return found


def _photo(height: int, width: int, channels: int = 3, *, seed: int = 0) -> np.ndarray:
    """A smooth random picture (GAN inputs are photos, not noise), float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((height // 8 + 2, width // 8 + 2, channels), dtype=np.float32)
    rows = np.linspace(0, coarse.shape[0] - 1.001, height)
    cols = np.linspace(0, coarse.shape[1] - 1.001, width)
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
    top = coarse[r0][:, c0] * (1 - fc) + coarse[r0][:, c0 + 1] * fc
    bottom = coarse[r0 + 1][:, c0] * (1 - fc) + coarse[r0 + 1][:, c0 + 1] * fc
    return (top * (1 - fr) + bottom * fr).astype(np.float32)


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_export_then_load_gives_the_same_networks(spec: TaskSpec, exported: dict[str, Path]) -> None:
    torch.manual_seed(0)
    task = spec.load_implementation()(spec, _defaults(spec.train_options))
    networks = task.build_inference_networks()
    loaded = load_model(exported[spec.name], spec)
    assert sorted(loaded.networks) == sorted(networks)
    for name, network in networks.items():
        original = network.state_dict()
        for key, value in loaded.networks[name].state_dict().items():
            assert torch.equal(value, original[key].to(value.dtype)), f"{spec.name}: {name}.{key} changed"


@pytest.mark.parametrize("spec", IMAGE_TASKS, ids=_ids(IMAGE_TASKS))
def test_rgb_gray_alpha_and_16_bit_images_keep_their_form(spec: TaskSpec, exported: dict[str, Path]) -> None:
    model = exported[spec.name]
    rgb = _photo(37, 45)
    out = _process(spec, model, Image(rgb), tile=0)
    assert out.color.shape[2] in (1, 3) and out.alpha is None
    assert np.isfinite(out.color).all() and out.color.min() >= 0.0 and out.color.max() <= 1.0

    gray = _process(spec, model, Image(rgb.mean(axis=2, keepdims=True)), tile=0)
    keeps_gray = getattr(load_model(model, spec).task, "output_gray_for_gray_input", True)
    assert gray.color.shape[2] == (1 if keeps_gray else 3)

    alpha = np.ones((37, 45, 1), np.float32)
    alpha[:, :10] = 0.0
    with_alpha = _process(spec, model, Image(rgb, alpha), tile=0)
    assert with_alpha.alpha is not None and with_alpha.alpha.shape[:2] == with_alpha.color.shape[:2]
    assert with_alpha.alpha[:, -1].min() > 0.9  # the opaque side stays opaque at any scale

    deep = _process(spec, model, Image(rgb, bit_depth=16), tile=0)
    assert deep.bit_depth == 16 and deep.color.shape == out.color.shape


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(((a - b) ** 2).mean()), 1e-12)))


@pytest.mark.parametrize("spec", IMAGE_TASKS, ids=_ids(IMAGE_TASKS))
def test_tiled_equals_untiled_where_the_task_tiles(spec: TaskSpec, exported: dict[str, Path]) -> None:
    """Exact (to float rounding) for local networks; with whole-image normalisation, closer than per-tile.

    Instance norm makes a network's output depend on the whole image, so tiles can only approximate it:
    the engine shares statistics measured on a shrunk copy (gantool.engine.normstats). That must beat
    normalising each tile on its own, the naive tiling, which this measures for comparison.
    """
    model = exported[spec.name]
    loaded = load_model(model, spec)
    if not getattr(loaded.task, "tileable", True):
        pytest.skip(f"{spec.name} runs whole images (tileable = False)")
    image = Image(_photo(128, 112, seed=1))
    whole = _process(spec, model, image, tile=0)
    tiled = _process(spec, model, image, tile=64)
    assert tiled.color.shape == whole.color.shape
    if not instance_norms(loaded.networks):
        difference = np.abs(tiled.color - whole.color)
        assert float(difference.mean()) < 2e-3 and float(difference.max()) < 0.05
        return
    options = _defaults(spec.infer_options)
    tile = TilePlan(64).tile_for(image.height, image.width, scale=1, overlap=16)  # what the processor used
    with torch.no_grad():
        naive = tiled_apply(lambda x: loaded.task.predict(loaded.networks, x, options), to_tensor(image.color),
                            scale=whole.color.shape[0] // image.height, tile=tile, overlap=16)
    naive_color = to_array(naive.clamp(0, 1))
    if naive_color.shape[2] != whole.color.shape[2]:
        naive_color = naive_color.mean(axis=2, keepdims=True)
    assert not np.allclose(tiled.color, naive_color, atol=1e-4)  # the whole image's statistics were used
    # Freshly initialised networks are no fair judge of how much closer (docs/cyclegan.md measures trained
    # ones); they must at least not make it worse than normalising each tile on its own.
    assert _psnr(tiled.color, whole.color) > _psnr(naive_color, whole.color) - 0.5


@pytest.mark.parametrize("spec", SPECS, ids=_ids(SPECS))
def test_every_option_is_reachable_from_the_cli(spec: TaskSpec) -> None:
    command = typer.main.get_command(build_app(SYSTEM))
    train = command.commands["train"].commands[spec.name]  # type: ignore[attr-defined]
    train_flags = {p.name for p in train.params}
    for field in dataclasses.fields(spec.train_options or object):  # type: ignore[arg-type]
        assert field.name in train_flags, f"`gantool train {spec.name}` lacks --{field.name.replace('_', '-')}"
    if spec.verb is None:
        return
    verb_flags = {p.name for p in command.commands[spec.verb].params}  # type: ignore[attr-defined]
    for field in dataclasses.fields(spec.infer_options or object):  # type: ignore[arg-type]
        assert field.name in verb_flags, f"`gantool {spec.verb}` lacks --{field.name.replace('_', '-')}"
    for extra in spec.inputs[1:]:
        assert extra.name in verb_flags, f"`gantool {spec.verb}` lacks --{extra.name} for its extra input"
    if spec.eval_options is not None:
        evaluate = command.commands["eval"].commands[spec.name]  # type: ignore[attr-defined]
        eval_flags = {p.name for p in evaluate.params}
        for field in dataclasses.fields(spec.eval_options):
            assert field.name in eval_flags, f"`gantool eval {spec.name}` lacks --{field.name.replace('_', '-')}"


SAMPLE_TASKS = [spec for spec in SPECS if spec.kind == "sample"]


@pytest.mark.parametrize("spec", SAMPLE_TASKS, ids=_ids(SAMPLE_TASKS))
def test_sample_tasks_draw_valid_images_reproducibly(spec: TaskSpec, exported: dict[str, Path]) -> None:
    loaded = load_model(exported[spec.name], spec)
    request = SampleRequest(task_options=_defaults(spec.infer_options))

    def draw(seed: int) -> torch.Tensor:
        with torch.no_grad():
            return loaded.task.sample(loaded.networks, 2, torch.Generator().manual_seed(seed), request)

    first = draw(0)
    assert first.ndim == 4 and first.shape[0] == 2 and first.shape[1] in (1, 3)
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert torch.equal(first, draw(0)) and not torch.equal(first, draw(1))
