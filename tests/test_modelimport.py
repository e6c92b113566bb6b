"""``gantool models import``: published generator layouts round trip into models every verb accepts.

The published files are made here from gantool's own networks, renamed into each layout by mappings
written for these tests (independently of gantool.modelimport), and saved with ``torch.save``. Nothing is
downloaded.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from typer.testing import CliRunner

import gantool
import gantool_cyclegan
import gantool_pix2pix
import gantool_superres
from gantool.cli.app import build_app
from gantool.engine.export import load_model
from gantool.lib.nets.resnet import ResnetGenerator
from gantool.lib.nets.unet import UNet
from gantool.modelimport import Converted
from gantool.plugin.manager import build_plugin_system
from gantool.plugin.spec import WeightsLayout
from gantool.testing import TOY_SPEC, TaskCards, ToyGenerator
from gantool_superres.networks import CompactSR, RRDBNet

runner = CliRunner()
PLUGINS = [("superres", gantool_superres), ("cyclegan", gantool_cyclegan), ("pix2pix", gantool_pix2pix)]


@pytest.fixture(scope="module")
def system():
    return build_plugin_system(entry_points=[], extra_plugins=PLUGINS)


def randomised(network: nn.Module) -> nn.Module:
    """Every parameter and buffer random, so a wrong mapping cannot pass by symmetry or zero init."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in network.parameters():
            tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.2 - 0.1)
        for tensor in (b for b in network.buffers() if b.is_floating_point()):  # batch-norm statistics: var > 0
            tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.5 + 0.5)
    return network.eval()


# ------------------------------------------------ gantool's names -> the published ones (written for the tests)


def as_basicsr_rrdb(sd: dict) -> dict:
    names = {"head": "conv_first", "body_conv": "conv_body", "upsample_convs.0": "conv_up1",
             "upsample_convs.1": "conv_up2", "hr_conv": "conv_hr", "tail": "conv_last"}
    out = {}
    for key, value in sd.items():
        if m := re.fullmatch(r"body\.(\d+)\.blocks\.(\d)\.(convs\.(\d)|fuse)\.(weight|bias)", key):
            conv = int(m[4]) + 1 if m[4] is not None else 5
            out[f"body.{m[1]}.rdb{int(m[2]) + 1}.conv{conv}.{m[5]}"] = value
        else:
            module, leaf = key.rsplit(".", 1)
            out[f"{names[module]}.{leaf}"] = value
    return out


def as_old_esrgan(sd: dict, blocks: int) -> dict:
    names = {"conv_first": "model.0", "conv_body": f"model.1.sub.{blocks}", "conv_up1": "model.3",
             "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    out = {}
    for key, value in as_basicsr_rrdb(sd).items():
        if m := re.fullmatch(r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)", key):
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{m[4]}"] = value
        else:
            module, leaf = key.rsplit(".", 1)
            out[f"{names[module]}.{leaf}"] = value
    return out


def as_srvgg(sd: dict, blocks: int) -> dict:
    last = 2 * blocks + 2
    return {(f"body.{last}." + key[len("tail."):] if key.startswith("tail.") else key): value
            for key, value in sd.items()}


def as_junyanz_resnet(sd: dict) -> dict:
    return {key.replace(".branch.", ".conv_block."): value for key, value in sd.items()}


def as_junyanz_unet(sd: dict, depth: int) -> dict:
    prefixes = ["model.model."]
    for level in range(1, depth):
        prefixes.append(prefixes[-1] + ("1." if level == 1 else "3.") + "model.")
    out = {}
    for key, value in sd.items():
        kind, index, layer, leaf = key.split(".", 3)
        level = int(index) if kind == "down" else depth - 1 - int(index)
        innermost = level == depth - 1
        if kind == "down":
            slot = {"0": "0", "1": "1", "2": "2"}[layer]
        else:
            slot = {"1": "3" if level == 0 or innermost else "5", "2": "4" if innermost else "6"}[layer]
        if kind == "down" and leaf == "bias" and (level == 0 or innermost) and "running_mean" in str(sd.keys()):
            continue  # the published batch-norm U-Net has no bias on these two convs
        out[f"{prefixes[level]}{slot}.{leaf}"] = value
    return out


# ------------------------------------------------------------------------------------------------ tests


def run_import(system, source: Path, *args: str):
    return runner.invoke(build_app(system), ["models", "import", str(source), *args])


def imported_network(system, tmp_path: Path, published: dict, name: str, *args: str) -> dict[str, nn.Module]:
    source = tmp_path / f"{name}.pth"
    torch.save(published, source)
    result = run_import(system, source, "-o", str(tmp_path / f"{name}.safetensors"), *args)
    assert result.exit_code == 0, result.output
    path = tmp_path / f"{name}.safetensors"
    task = gantool.weights.read_metadata(path)["gantool.task"]
    return load_model(path, system.registry.get(task)).networks


def assert_same(ours: nn.Module, loaded: nn.Module, *inputs: torch.Tensor) -> None:
    with torch.no_grad():
        torch.testing.assert_close(loaded(*inputs), ours(*inputs), rtol=1e-5, atol=1e-5)


def test_esrgan_layouts_round_trip(system, tmp_path: Path) -> None:
    ours = randomised(RRDBNet(scale=4, width=8, blocks=2))
    x = torch.rand(1, 3, 6, 5)
    for name, published in (("new", {"params_ema": as_basicsr_rrdb(ours.state_dict())}),
                            ("old", as_old_esrgan(ours.state_dict(), 2))):
        assert_same(ours, imported_network(system, tmp_path, published, name)["generator"], x)


def test_srvgg_compact_round_trip_with_the_nearest_skip(system, tmp_path: Path) -> None:
    ours = randomised(CompactSR(scale=2, width=8, blocks=3, skip="nearest"))
    published = as_srvgg(ours.state_dict(), 3)
    loaded = imported_network(system, tmp_path, published, "srvgg")["generator"]
    x = torch.rand(1, 3, 7, 5)
    body = nn.Sequential(*ours.body, ours.tail)  # SRVGGNetCompact: shuffle(body(x)) + nearest(x)
    reference = F.pixel_shuffle(body(x), 2) + F.interpolate(x, scale_factor=2, mode="nearest")
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), reference, rtol=1e-5, atol=1e-5)


def test_cyclegan_resnet_round_trip_both_directions(system, tmp_path: Path) -> None:
    forward, backward = randomised(ResnetGenerator(width=4, blocks=2)), randomised(ResnetGenerator(width=4, blocks=2))
    torch.save(as_junyanz_resnet(backward.state_dict()), tmp_path / "netG_B.pth")
    networks = imported_network(system, tmp_path, as_junyanz_resnet(forward.state_dict()), "netG_A",
                                "--reverse", str(tmp_path / "netG_B.pth"))
    x = torch.rand(1, 3, 12, 8) * 2 - 1
    assert_same(forward, networks["generator_ab"], x)
    assert_same(backward, networks["generator_ba"], x)


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_pix2pix_unet_round_trip(system, tmp_path: Path, norm: str) -> None:
    ours = randomised(UNet(3, 3, width=4, depth=3, norm=norm))
    if norm == "batch":  # the published batch-norm U-Net has no bias on its first and innermost down convs
        with torch.no_grad():
            ours.down[0][0].bias.zero_()
            ours.down[2][1].bias.zero_()
    loaded = imported_network(system, tmp_path, as_junyanz_unet(ours.state_dict(), 3), f"unet-{norm}")["generator"]
    assert_same(ours, loaded, torch.rand(1, 3, 16, 8) * 2 - 1)


def test_imported_model_runs_through_the_verbs_and_the_api(system, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GANTOOL_MODELS", str(tmp_path / "models"))
    torch.save(as_srvgg(randomised(CompactSR(scale=2, width=8, blocks=1, skip="nearest")).state_dict(), 1),
               tmp_path / "realesr-tiny.pth")
    result = run_import(system, tmp_path / "realesr-tiny.pth", "--name", "tiny-x2")
    assert result.exit_code == 0 and "gantool upscale IMAGE --model tiny-x2" in result.output, result.output
    assert (tmp_path / "models" / "tiny-x2.safetensors").is_file()
    model = gantool.load("tiny-x2", plugins=system, device="cpu")
    assert model(np.zeros((5, 4, 3), np.uint8)).shape == (10, 8, 3) and "srvgg" in model.info["gantool.data"].lower()
    again = run_import(system, tmp_path / "realesr-tiny.pth", "--name", "tiny-x2")
    assert again.exit_code == 1 and "--overwrite" in again.output


def test_unknown_layout_pickled_code_and_bad_files_are_one_line(system, tmp_path: Path) -> None:
    torch.save({"encoder.weight": torch.zeros(2, 3)}, tmp_path / "odd.pth")
    odd = run_import(system, tmp_path / "odd.pth")
    assert odd.exit_code == 1 and "pass --arch cyclegan-resnet|esrgan|esrgan-old|pix2pix-unet|srvgg" in odd.output
    assert "encoder.weight (2, 3)" in odd.output and len(odd.output.strip().splitlines()) == 1

    torch.save(nn.Linear(2, 2), tmp_path / "pickled.pth")  # a whole module: pickled code, refused unread
    pickled = run_import(system, tmp_path / "pickled.pth")
    assert pickled.exit_code == 1 and "never unpickles code" in pickled.output
    assert len(pickled.output.strip().splitlines()) == 1

    (tmp_path / "text.pth").write_text("not weights")
    assert "not a PyTorch weights file" in run_import(system, tmp_path / "text.pth").output
    wrong = run_import(system, tmp_path / "odd.pth", "--arch", "esrgan")
    assert wrong.exit_code == 1 and "not a complete esrgan layout" in wrong.output
    assert run_import(system, tmp_path / "odd.pth", "--arch", "vdsr").exit_code == 2


def toy_layout(sd: dict, reverse: dict | None = None) -> Converted:
    """A third-party layout: the toy generator saved with ``net.`` instead of ``body.``."""
    renamed = {key.replace("net.", "body.", 1): value for key, value in sd.items()}
    return Converted({"channels": int(sd["net.0.weight"].shape[0])}, {"generator": renamed}, "toy generator")


def test_a_plugin_task_brings_its_own_layout(tmp_path: Path) -> None:
    """gantool's core knows no layout: a task card's weights_layouts are recognised, listed and converted."""
    layout = WeightsLayout("toy-net", ("net.0.weight", "net.2.weight"), f"{__name__}:toy_layout")
    spec = dataclasses.replace(TOY_SPEC, weights_layouts=(layout,))
    system = build_plugin_system(entry_points=[], extra_plugins=[("toy", TaskCards(spec))])
    assert "toy-net (toy)" in " ".join(runner.invoke(build_app(system), ["models", "import", "--help"]).output.split())
    ours = randomised(ToyGenerator(5))
    published = {key.replace("body.", "net.", 1): value for key, value in ours.state_dict().items()}
    assert_same(ours, imported_network(system, tmp_path, published, "toy")["generator"], torch.rand(1, 3, 6, 5))
    assert run_import(system, tmp_path / "toy.pth", "--reverse", str(tmp_path / "toy.pth")).exit_code == 2


def test_a_layout_card_is_checked() -> None:
    with pytest.raises(ValueError, match="weights_layouts"):
        dataclasses.replace(TOY_SPEC, weights_layouts=(WeightsLayout("x", (), "no_colon"),))
