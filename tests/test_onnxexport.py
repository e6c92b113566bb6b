"""``gantool export MODEL --format onnx``: dynamic sizes and parity with PyTorch for every exportable built-in.

Needs the ``export`` extra (onnx, onnxscript, onnxruntime); skipped without it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import gantool_colorize
import gantool_cyclegan
import gantool_inpaint
import gantool_pix2pix
import gantool_superres
from gantool.cli.app import build_app
from gantool.engine.export import export_model
from gantool.plugin.manager import build_plugin_system

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

runner = CliRunner()
PLUGINS = [("superres", gantool_superres), ("colorize", gantool_colorize), ("cyclegan", gantool_cyclegan),
           ("pix2pix", gantool_pix2pix), ("inpaint", gantool_inpaint)]
SIZES = ((37, 53), (45, 67))  # not multiples of 8


@pytest.fixture(scope="module")
def app():
    return build_app(build_plugin_system(entry_points=[], extra_plugins=PLUGINS))


def tiny_pix2pix(tmp_path: Path) -> Path:
    from gantool_pix2pix.options import Pix2PixTrainOptions

    task = gantool_pix2pix.SPEC.load_implementation()(gantool_pix2pix.SPEC, Pix2PixTrainOptions(width=8, depth=4,
                                                                                              crop=64))
    return export_model(tmp_path / "p2p.safetensors", task, task.build_inference_networks())


@pytest.mark.slow
@pytest.mark.parametrize(("model", "args", "scale"), [("superres-x2", (), 2), ("colorize", (), 1),
                                                      ("cyclegan-horse2zebra", ("--set", "direction=BtoA"), 1),
                                                      ("pix2pix", (), 1)])
def test_export_parity_for_each_builtin(app, tmp_path: Path, model: str, args: tuple[str, ...], scale: int) -> None:
    source = str(tiny_pix2pix(tmp_path)) if model == "pix2pix" else model
    target = tmp_path / f"{model}.onnx"
    result = runner.invoke(app, ["export", source, "-o", str(target), *args])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("parity ")]
    assert len(lines) == 3 and all("max abs error" in line and "PSNR" in line for line in lines)
    graph = onnx.load(str(target))
    props = {entry.key: entry.value for entry in graph.metadata_props}
    tasks = {"superres-x2": "superres", "colorize": "colorize", "cyclegan-horse2zebra": "cyclegan",
             "pix2pix": "pix2pix"}
    assert props["gantool.task"] == tasks[model] and "RGB" in props["gantool.onnx.input"]
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    for height, width in SIZES:  # one graph, any size
        out = session.run(None, {"image": np.random.default_rng(0).random((1, 3, height, width), np.float32)})[0]
        assert out.shape == (1, 3, height * scale, width * scale) and out.min() >= 0 and out.max() <= 1


@pytest.mark.slow
def test_inpaint_exports_one_windows_fill_with_image_and_mask_inputs(app, tmp_path: Path) -> None:
    """Two inputs; known pixels come back unchanged from the graph; what stays outside is in the metadata."""
    from gantool_inpaint.options import InpaintTrainOptions

    task = gantool_inpaint.SPEC.load_implementation()(gantool_inpaint.SPEC, InpaintTrainOptions(width=8, crop=64))
    networks = task.build_inference_networks()
    torch.nn.init.normal_(networks["generator"].head.weight, std=0.5)  # starts at zero: the fill would be the input
    source = export_model(tmp_path / "inpaint.safetensors", task, networks)
    target = tmp_path / "inpaint.onnx"
    result = runner.invoke(app, ["export", str(source), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert "'image' (1, 3, H, W), 'mask' (1, 1, H, W)" in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("parity ")]) == 3
    props = {entry.key: entry.value for entry in onnx.load(str(target)).metadata_props}
    assert "TELEA" in props["gantool.onnx.outside_graph"] and "mask: (1, 1, H, W)" in props["gantool.onnx.input"]
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_inputs()] == ["image", "mask"]
    rng = np.random.default_rng(0)
    for height, width in SIZES:
        image = rng.random((1, 3, height, width), np.float32)
        mask = np.zeros((1, 1, height, width), np.float32)
        mask[..., height // 4 : height // 2, width // 3 : width // 2] = 1
        out = session.run(None, {"image": image, "mask": mask})[0]
        assert out.shape == image.shape
        known = np.broadcast_to(mask == 0, image.shape)
        assert np.array_equal(out[known], image[known])  # bit for bit outside the hole
        assert np.abs(out[~known] - image[~known]).mean() > 0.01  # and the network's fill inside it


def test_parity_failure_removes_the_file_and_says_why(app, tmp_path: Path) -> None:
    target = tmp_path / "x.onnx"
    result = runner.invoke(app, ["export", "superres-x2", "-o", str(target), "--tolerance", "0"])
    assert result.exit_code == 1 and "ONNX parity failed" in result.output and not target.exists()


def test_bad_options_are_usage_errors(app, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "superres-x2", "--set", "direction=BtoA"])
    assert result.exit_code == 2 and "KEY one of outscale, scale" in result.output
    assert runner.invoke(app, ["export", "superres-x2", "--format", "tflite"]).exit_code == 2
