"""The ``lapgan`` and ``dcgan`` generation tasks: networks per level, class conditioning, training, generate, eval."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

import gantool_lapgan
from gantool import SampleRequest
from gantool.cli.app import build_app
from gantool.engine.export import export_model, load_model
from gantool.errors import InputError, UsageError
from gantool.image.io import Image, read_image, write_image
from gantool.lib.labelled import LabelledImages
from gantool.plugin.manager import build_plugin_system
from gantool.testing import check_task
from gantool_lapgan import DCGAN, LAPGAN
from gantool_lapgan.options import DCGANTrainOptions, GenerateOptions, LapGANTrainOptions
from gantool_lapgan.task import truncated_noise

runner = CliRunner()
TINY = {"latent": 8, "width": 8, "level_width": 8}


def app():
    """The CLI with the lapgan plugin module itself: its cards and the resolver of its bundled model."""
    return build_app(build_plugin_system(entry_points=[], extra_plugins=[("lapgan", gantool_lapgan)]))


def lapgan(**options):
    return LAPGAN.load_implementation()(LAPGAN, LapGANTrainOptions(**{**TINY, **options}))


def write_images(folder: Path, count: int, *, side: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        write_image(folder / f"{index:03d}.png", Image(rng.random((side, side + 6, 3), dtype=np.float32)))
    return folder


def exported(tmp_path: Path, name: str = "m", **options) -> Path:
    torch.manual_seed(0)
    task = lapgan(**options)
    return export_model(tmp_path / f"{name}.safetensors", task, task.build_inference_networks())


# ------------------------------------------------------------------------------------------------ networks


def test_levels_and_their_network_names_come_from_the_options() -> None:
    assert LapGANTrainOptions(size=64).sides == (16, 32, 64)
    assert LapGANTrainOptions(size=32).sides == (16, 32) and LapGANTrainOptions(size=16).sides == (16,)
    assert LapGANTrainOptions(size=32, levels=3).sides == (8, 16, 32)
    task = lapgan(size=32, levels=3)
    assert task.inference_network_names() == ("generator8", "generator16", "generator32")
    assert sorted(task.build_networks()) == ["critic16", "critic32", "critic8", "generator16", "generator32",
                                             "generator8"]
    dcgan = DCGAN.load_implementation()(DCGAN, DCGANTrainOptions(size=16, latent=8, width=8))
    assert sorted(dcgan.build_networks()) == ["critic", "generator"]


def test_each_level_generator_makes_its_own_side() -> None:
    torch.manual_seed(0)
    task = lapgan(size=32, levels=3)
    networks = task.build_inference_networks()
    levels = task.render(networks, 2, torch.Generator().manual_seed(0), None)
    assert [tuple(level.shape) for level in levels] == [(2, 3, 8, 8), (2, 3, 16, 16), (2, 3, 32, 32)]
    band = networks["generator16"](torch.zeros(2, 3, 16, 16), torch.zeros(2, 1, 16, 16))
    assert band.shape == (2, 3, 16, 16)
    critics = task.build_networks()
    assert critics["critic16"](torch.zeros(2, 6, 16, 16)).shape == (2,)  # coarse condition + image
    assert critics["critic8"](torch.zeros(2, 3, 8, 8)).shape == (2,)


def test_option_problems_are_one_usage_error() -> None:
    with pytest.raises(UsageError, match=r"lapgan options: --size 48 is not a power of two"):
        LapGANTrainOptions(size=48)
    with pytest.raises(UsageError, match=r"--attention sides must be powers of two from 8 to 64.*\[128\]"):
        LapGANTrainOptions(size=128, attention=(128,))
    with pytest.raises(UsageError, match="smaller than 8 px"):
        LapGANTrainOptions(size=16, levels=3)
    with pytest.raises(UsageError, match="distinct"):
        DCGANTrainOptions(classes=("cat", "cat"))


def test_truncation_keeps_noise_inside_the_limit_reproducibly() -> None:
    first = truncated_noise(64, 16, torch.Generator().manual_seed(3), 0.5)
    assert first.abs().max() <= 1.0 and torch.equal(first, truncated_noise(64, 16, torch.Generator().manual_seed(3),
                                                                            0.5))
    assert truncated_noise(64, 16, torch.Generator().manual_seed(3), None).abs().max() > 1.0


# --------------------------------------------------------------------------------------------- conditioning


def test_labels_come_from_class_sub_folders(tmp_path: Path) -> None:
    write_images(tmp_path / "data" / "dog", 3)
    write_images(tmp_path / "data" / "cat", 2, seed=1)
    write_images(tmp_path / "data" / "bird", 1, seed=2)
    everything = LabelledImages(tmp_path / "data", 16)
    assert len(everything) == 6 and everything.class_names == ()
    labelled = LabelledImages(tmp_path / "data", 16, classes=True)
    assert labelled.class_names == ("bird", "cat", "dog")
    assert sorted(int(labelled[i]["label"]) for i in range(6)) == [0, 1, 1, 2, 2, 2]
    assert labelled[0]["image"].shape == (3, 16, 16)
    task = lapgan(size=16, classes=("dog", "cat"))  # a chosen subset, in the user's label order
    dataset = task.build_dataset(tmp_path / "data")
    assert len(dataset) == 5 and sorted(int(dataset[i]["label"]) for i in range(5)) == [0, 0, 0, 1, 1]
    with pytest.raises(InputError, match=r"no class sub-folder\(s\) \['fish'\]; it has \['bird', 'cat', 'dog'\]"):
        lapgan(size=16, classes=("fish",)).build_dataset(tmp_path / "data")
    with pytest.raises(InputError, match="no class sub-folders"):
        LabelledImages(tmp_path / "data" / "dog", 16, classes=True)


def test_classes_all_are_the_data_sub_folders_settled_when_training_starts(tmp_path: Path) -> None:
    write_images(tmp_path / "data" / "dog", 2)
    write_images(tmp_path / "data" / "cat", 2, seed=1)
    (tmp_path / "data" / "empty").mkdir()  # holds no images: not a class
    common = ["--size", "16", "--latent", "8", "--width", "8", "--level-width", "8", "--batch-size", "2",
              "--steps", "2", "--device", "cpu", "--num-workers", "0"]
    result = runner.invoke(app(), ["train", "lapgan", "--data", str(tmp_path / "data"), "--classes", "all", *common,
                                   "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    model = load_model(tmp_path / "run" / "model.safetensors", LAPGAN)
    assert model.task.class_names() == ("cat", "dog")  # sorted; the file needs no data to know them
    assert 'classes = ["cat", "dog"]' in (tmp_path / "run" / "config.toml").read_text()
    again = runner.invoke(app(), ["train", "lapgan", "--data", str(tmp_path / "data"), "--classes", "all", *common,
                                  "--run-dir", str(tmp_path / "run"), "--resume", "auto", "--steps", "3"])
    assert again.exit_code == 0 and "changed" not in again.output.lower(), again.output  # same folders: same options
    flat = runner.invoke(app(), ["train", "lapgan", "--data", str(tmp_path / "data" / "dog"), "--classes", "all",
                                 *common, "--run-dir", str(tmp_path / "flat")])
    assert flat.exit_code != 0 and "has no class sub-folders of images" in flat.output
    with pytest.raises(UsageError, match="not both"):
        DCGANTrainOptions(classes=("all", "cat"))
    with pytest.raises(UsageError, match="settled from the training data"):
        lapgan(size=16, classes=("all",)).build_networks()


def test_the_class_label_changes_every_level() -> None:
    torch.manual_seed(0)
    task = lapgan(size=32, classes=("a", "b"))
    networks = task.build_inference_networks()
    for network in networks.values():  # give the label planes weight (fresh init is small but nonzero)
        network.eval()

    def draw(label: int) -> torch.Tensor:
        return task.sample(networks, 2, torch.Generator().manual_seed(1), SampleRequest(label=label))

    assert draw(0).shape == (2, 3, 32, 32) and not torch.allclose(draw(0), draw(1))
    assert torch.equal(draw(1), draw(1))


# ------------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize("spec, options", [
    (LAPGAN, LapGANTrainOptions(size=16, levels=2, classes=("a", "b"), attention=(8,), generator_spectral_norm=True,
                                **TINY)),
    (DCGAN, DCGANTrainOptions(size=16, latent=8, width=8, gan_loss="relativistic")),
], ids=["lapgan", "dcgan"])
def test_a_short_cpu_training_run_meets_the_task_contract(tmp_path: Path, spec, options) -> None:
    write_images(tmp_path / "data" / "a", 2)
    write_images(tmp_path / "data" / "b", 2, seed=1)
    check_task(spec, tmp_path / "data", tmp_path / "run", options)
    model = tmp_path / "run" / "model.safetensors"
    assert not any("parametrizations" in key for key in load_file(str(model)))  # spectral norm folded on export
    loaded = load_model(model, spec)
    assert json.loads(loaded.metadata["gantool.inference_networks"]) == list(loaded.task.inference_network_names())
    assert loaded.task.tileable is False and (tmp_path / "run" / "samples").is_dir()


def test_a_finer_level_trains_alone_on_top_of_a_smaller_model(tmp_path: Path) -> None:
    """``--train-levels 32 --init SMALLER``: the levels the model had are kept bit for bit, only the new one
    (and its critic) trains, and the file holds every level."""
    data = write_images(tmp_path / "data", 4, side=36)
    common = ["--data", str(data), "--latent", "8", "--width", "8", "--level-width", "8", "--steps", "2",
              "--batch-size", "2", "--num-workers", "0", "--device", "cpu", "--sample-every", "0", "--ema-decay", "0"]
    small = runner.invoke(app(), ["train", "lapgan", *common, "--size", "16", "--levels", "2",
                                  "--run-dir", str(tmp_path / "small")])
    assert small.exit_code == 0, small.output
    grown = runner.invoke(app(), ["train", "lapgan", *common, "--size", "32", "--levels", "3", "--train-levels", "32",
                                  "--init", str(tmp_path / "small" / "model.safetensors"),
                                  "--run-dir", str(tmp_path / "grown")])
    assert grown.exit_code == 0, grown.output
    before, after = (load_file(str(tmp_path / run / "model.safetensors")) for run in ("small", "grown"))
    assert {key.split(".")[0] for key in after} == {"generator8", "generator16", "generator32"}
    assert all(torch.equal(tensor, after[key]) for key, tensor in before.items())
    assert {key.split(".")[0] for key in load_file(str(tmp_path / "grown" / "step-000002" / "networks.safetensors"))
            } == {"generator8", "generator16", "generator32", "critic32"}
    logged = [json.loads(line) for line in (tmp_path / "grown" / "metrics.jsonl").read_text().splitlines()]
    assert {"d32", "g32"} <= set(logged[-1]["losses"]) and not {"d8", "d16", "g8", "g16"} & set(logged[-1]["losses"])
    with pytest.raises(UsageError, match="--train-levels 64: this pyramid's levels are 16,32"):
        LapGANTrainOptions(size=32, train_levels=(64,))


def test_a_level_whose_samples_stop_varying_is_warned_about() -> None:
    task = lapgan(size=32)
    assert task.training_warnings({"spread16": 0.95, "spread32": 1.02, "d16": 1.0}, 5000) == {}
    warned = task.training_warnings({"spread16": 0.95, "spread32": 0.31}, 5000)
    assert list(warned) == ["spread32"] and "32 px level" in warned["spread32"] and "0.31x" in warned["spread32"]
    assert task.training_warnings({"spread16": 0.3, "spread32": 0.31}, 200) == {}  # fresh networks: not yet


def test_export_folds_spectral_norm_and_keeps_the_training_networks(tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = lapgan(size=16, levels=2, attention=(8,), generator_spectral_norm=True)
    trained = {name: net for name, net in task.build_networks().items() if name in task.inference_network_names()}
    for net in trained.values():
        net.eval()
    model = export_model(tmp_path / "sn.safetensors", task, trained)
    loaded = load_model(model, LAPGAN)
    request = SampleRequest()
    ours = task.sample(trained, 3, torch.Generator().manual_seed(2), request)
    theirs = loaded.task.sample(loaded.networks, 3, torch.Generator().manual_seed(2), request)
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert any("parametrizations" in name for name, _ in trained["generator16"].named_parameters())


# ------------------------------------------------------------------------------------------- generate, eval


def test_generate_with_a_seed_is_reproducible_and_draws_pyramids(tmp_path: Path) -> None:
    model = exported(tmp_path, size=32)
    cli = app()
    for folder in ("one", "two"):
        result = runner.invoke(cli, ["generate", "--model", str(model), "-n", "3", "--seed", "4", "-o",
                                     str(tmp_path / folder), "--device", "cpu", "--grid"])
        assert result.exit_code == 0, result.output
    names = ["lapgan-seed4-0000.png", "lapgan-seed4-0001.png", "lapgan-seed4-0002.png", "lapgan-seed4-grid.png"]
    assert sorted(p.name for p in (tmp_path / "one").glob("*.png")) == names
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    strip = runner.invoke(cli, ["generate", "--model", str(model), "-n", "1", "--seed", "4", "--pyramid", "-o",
                                str(tmp_path / "pyramid"), "--device", "cpu"])
    assert strip.exit_code == 0, strip.output
    image = read_image(tmp_path / "pyramid" / "lapgan-seed4-0000.png").color
    assert image.shape == (32, 64, 3)  # 16 px level (enlarged) | 32 px level
    final = read_image(tmp_path / "one" / "lapgan-seed4-0000.png").color
    assert np.array_equal(image[:, 32:], final)
    assert GenerateOptions().pyramid is False


def test_interpolation_strips_walk_from_each_sample_to_the_next(tmp_path: Path) -> None:
    model = exported(tmp_path, size=32, classes=("cat", "dog"))
    cli = app()
    plain = runner.invoke(cli, ["generate", "--model", str(model), "-n", "8", "--seed", "2", "-o",
                                str(tmp_path / "plain"), "--device", "cpu"])
    walk = runner.invoke(cli, ["generate", "--model", str(model), "-n", "8", "--seed", "2", "--interpolate", "5",
                               "-o", str(tmp_path / "walk"), "--device", "cpu", "--grid"])
    assert plain.exit_code == 0 and walk.exit_code == 0, plain.output + walk.output
    samples = [read_image(tmp_path / "plain" / f"lapgan-seed2-{i:04d}.png").color.astype(int) for i in range(8)]
    strips = [read_image(tmp_path / "walk" / f"lapgan-seed2-{i:04d}.png").color.astype(int) for i in range(8)]
    assert strips[0].shape == (32, 5 * 32, 3)
    grid = read_image(tmp_path / "walk" / "lapgan-seed2-grid.png").color
    assert grid.shape == (8 * 32 + 7 * 2, 5 * 32, 3)  # wide cells: one strip per row, near a square
    for index, strip in enumerate(strips):
        frames = [strip[:, k * 32:(k + 1) * 32] for k in range(5)]
        assert np.abs(frames[0] - samples[index]).max() <= 1  # starts at this sample (8-bit rounding)
        assert np.abs(frames[-1] - samples[(index + 1) % 8]).max() <= 1  # ends at the next; the 8th at the 1st
    both = runner.invoke(cli, ["generate", "--model", str(model), "--interpolate", "3", "--pyramid", "-o",
                               str(tmp_path / "x"), "--device", "cpu"])
    assert both.exit_code == 2 and "choose one" in both.output
    one = runner.invoke(cli, ["generate", "--model", str(model), "--interpolate", "1", "-o", str(tmp_path / "y")])
    assert one.exit_code == 2 and "single frame" in one.output
    task = lapgan(size=32)  # in float: the middle frame is neither end
    networks = task.build_inference_networks()
    request = SampleRequest(task_options=GenerateOptions(interpolate=5))
    strip = task.sample(networks, 3, torch.Generator().manual_seed(0), request)
    frames = strip.unflatten(-1, (5, 32))
    assert strip.shape == (3, 3, 32, 160)
    assert (frames[..., 2, :] - frames[..., 0, :]).abs().max() > 1e-3
    assert (frames[..., 2, :] - frames[..., 4, :]).abs().max() > 1e-3


def test_generate_by_class_name(tmp_path: Path) -> None:
    model = exported(tmp_path, size=16, classes=("cat", "dog"))
    result = runner.invoke(app(), ["generate", "--model", str(model), "-n", "2", "--class", "dog", "-o",
                                   str(tmp_path / "dogs"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app(), ["generate", "--model", str(model), "--class", "cow", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "cat, dog" in bad.output


def test_eval_prints_swd_with_the_real_floor_and_diversity(tmp_path: Path) -> None:
    model = exported(tmp_path, size=32)
    data = write_images(tmp_path / "real", 12, side=32)
    result = runner.invoke(app(), ["eval", "lapgan", "--model", str(model), "--data", str(data), "-n", "5",
                                   "--device", "cpu", "--json", "--no-inception", "--neighbours",
                                   str(tmp_path / "nn.png")])
    assert result.exit_code == 0, result.output
    rows = {row["set"]: row for row in json.loads(result.output[result.output.index("["):])}
    assert list(rows) == ["samples", "real floor", "real 16px + model detail", "real 16px, pyrUp only"]
    samples, floor = rows["samples"], rows["real floor"]
    assert samples["swd_mean"] > floor["swd_mean"] > 0  # untrained samples are far from real noise images
    assert 0 < floor["ms_ssim"] < 1 and set(samples) >= {"swd32", "swd16", "swd_mean", "ms_ssim"}
    assert rows["real 16px, pyrUp only"]["swd32"] > floor["swd32"]  # no detail: farther at the finest level
    grid = read_image(tmp_path / "nn.png").color
    assert grid.shape == (5 * 32 + 4 * 2, 8 * 32 + 7 * 2, 3)  # 5 samples (N), each with 7 neighbours


def test_eval_at_a_coarser_side_scores_every_set_pyrdowned_to_it(tmp_path: Path) -> None:
    from gantool.lib.pyramid import pyr_down
    from gantool.lib.swd import swd

    model = exported(tmp_path, size=32)
    data = write_images(tmp_path / "real", 12, side=32)
    command = ["eval", "lapgan", "--model", str(model), "--data", str(data), "-n", "5", "--device", "cpu",
               "--no-inception"]
    result = runner.invoke(app(), [*command, "--side", "16", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["set"]: row for row in json.loads(result.output[result.output.index("["):])}
    assert list(rows) == ["samples", "real floor"]  # the upsampler rows are about the finest band: not here
    assert set(rows["samples"]) >= {"swd16", "swd_mean"} and "swd32" not in rows["samples"]
    real = LabelledImages(data, 32)
    expected = swd(pyr_down(real.stack(5, 5)), pyr_down(real.stack(5, 0)), seed=0).levels[0]
    assert rows["real floor"]["swd16"] == pytest.approx(expected)
    table = runner.invoke(app(), [*command, "--side", "16"])
    assert "16 px (every set pyrDown'd from 32 px)" in " ".join(table.output.split())
    bad = runner.invoke(app(), [*command, "--side", "12"])
    assert bad.exit_code == 2 and "--side 12 is not a coarser pyramid level" in bad.output and "16, 8" in bad.output


def test_eval_draws_the_real_sets_from_every_class_folder(tmp_path: Path) -> None:
    from gantool_lapgan.evaluate import _real_sets

    for name, value in (("a", 0.0), ("b", 1.0)):  # sorted order would give a reference of class a only
        (tmp_path / "real" / name).mkdir(parents=True)
        for index in range(8):
            write_image(tmp_path / "real" / name / f"{index}.png", Image(np.full((16, 16, 3), value, np.float32)))
    real = LabelledImages(tmp_path / "real", 16)
    reference, floor = _real_sets(real, tmp_path / "real", 6, seed=0)
    for images in (reference, floor):
        means = images.mean((1, 2, 3))
        assert len(images) == 6 and (means < 0.5).any() and (means > 0.5).any()
    flat = write_images(tmp_path / "flat", 6, side=16)
    plain = LabelledImages(flat, 16)
    first, second = _real_sets(plain, flat, 3, seed=0)  # a flat folder: the first 2N in sorted order, as before
    assert torch.equal(first, plain.stack(3)) and torch.equal(second, plain.stack(3, 3))


def test_generate_without_model_runs_the_bundled_faces(tmp_path: Path) -> None:
    result = runner.invoke(app(), ["generate", "-n", "2", "--seed", "3", "-o", str(tmp_path), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    image = read_image(tmp_path / "lapgan-seed3-0000.png").color
    assert image.shape == (64, 64, 3) and image.std() > 0.05  # the default, lapgan-faces64


@pytest.mark.parametrize(("name", "sides", "classes"), [("lapgan-faces32", (16, 32), 0),
                                                         ("lapgan-faces64", (16, 32, 64), 0),
                                                         ("lapgan-cifar10", (16, 32), 10)])
def test_each_bundled_model_has_a_card_and_loads_as_its_card_says(name: str, sides, classes: int) -> None:
    path = gantool_lapgan.MODELS.find(name)
    assert path is not None and path.with_suffix(".md").is_file(), name
    card = path.with_suffix(".md").read_text(encoding="utf-8")
    assert card.startswith(f"# {name}") and "gantool eval lapgan" in card and "gantool train lapgan" in card
    loaded = load_model(path, LAPGAN)
    assert loaded.task.sides() == sides and len(loaded.task.class_names()) == classes
    images = loaded.task.sample(loaded.networks, 2, torch.Generator().manual_seed(0), SampleRequest())
    assert images.shape == (2, 3, sides[-1], sides[-1]) and float(images.std()) > 0.05


def test_the_bundled_cifar_model_generates_a_class_by_name_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    result = runner.invoke(app(), ["generate", "--model", "lapgan-cifar10", "-n", "2", "--seed", "1", "--class", "dog",
                                   "-o", str(tmp_path / "dogs"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "dogs" / "lapgan-seed1-0001.png").color.shape == (32, 32, 3)
    bad = runner.invoke(app(), ["generate", "--model", "lapgan-cifar10", "--class", "cow", "-o", str(tmp_path / "x"),
                                "--device", "cpu"])
    assert bad.exit_code == 2 and "'cow'" in bad.output and "airplane, automobile" in bad.output
    assert len(bad.output.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_eval_adds_kid_and_fid_when_the_inception_file_is_there(tmp_path: Path, monkeypatch) -> None:
    from gantool.lib import inception

    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not really a network")
    monkeypatch.setattr(inception, "inception_path", lambda: fake)
    monkeypatch.setattr(inception, "load_inception", lambda device: None)
    monkeypatch.setattr(inception, "inception_features",  # a stand-in feature extractor: mean colour per image
                        lambda images, network: images.flatten(2).mean(2).double().numpy())
    model = exported(tmp_path, size=32)
    data = write_images(tmp_path / "real", 12, side=32)
    result = runner.invoke(app(), ["eval", "lapgan", "--model", str(model), "--data", str(data), "-n", "5",
                                   "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("["):])
    assert [row["set"] for row in rows][2:] == ["real 16px + model detail", "real 16px, pyrUp only"]
    assert all(row["kid"] is not None for row in rows)  # the upsampler rows too: where a LapGAN's KID goes
    assert rows[0]["fid"] > rows[1]["fid"] >= 0


def test_eval_per_class_scores_each_class_against_its_own_images(tmp_path: Path) -> None:
    model = exported(tmp_path, size=16, classes=("cat", "dog"))
    for name in ("cat", "dog"):
        write_images(tmp_path / "real" / name, 6, side=16)
    args = ["eval", "lapgan", "--model", str(model), "--data", str(tmp_path / "real"), "-n", "6", "--device", "cpu",
            "--json", "--no-inception", "--per-class"]
    result = runner.invoke(app(), args)
    assert result.exit_code == 0, result.output
    rows = {row["set"]: row for row in json.loads(result.output[result.output.index("["):])}
    assert list(rows) == ["samples", "real floor", "samples: cat", "real floor: cat", "samples: dog", "real floor: dog"]
    for name in ("cat", "dog"):
        assert rows[f"samples: {name}"]["swd_mean"] > rows[f"real floor: {name}"]["swd_mean"] > 0
    unconditional = exported(tmp_path / "plain", size=16)
    refused = runner.invoke(app(), [*args[:3], str(unconditional), *args[4:]])
    assert refused.exit_code != 0 and "class-conditional" in refused.output


def test_init_puts_a_folded_spectral_norm_export_back_under_the_parametrization(tmp_path: Path) -> None:
    """``train --init`` from an export whose generators were trained with spectral norm (folded in the file):
    the new run's parametrized generators compute what the file's plain ones do."""
    from gantool.engine.finetune import load_initial_weights

    torch.manual_seed(0)
    task = lapgan(size=16, levels=2, generator_spectral_norm=True)
    trained = {name: net for name, net in task.build_networks().items() if name in task.inference_network_names()}
    with torch.no_grad():  # a trained model's singular-value estimates have converged (one iteration per step)
        for net in trained.values():
            for layer in net.modules():
                if torch.nn.utils.parametrize.is_parametrized(layer, "weight"):
                    for _ in range(200):
                        layer.weight  # noqa: B018  # a training-mode read runs one power iteration
            net.eval()
    model = export_model(tmp_path / "sn.safetensors", task, trained)
    torch.manual_seed(1)  # another draw: the loaded weights must replace it
    fresh = lapgan(size=16, levels=2, generator_spectral_norm=True)
    networks = {name: net.train() for name, net in fresh.build_networks().items()}
    note = load_initial_weights(networks, LAPGAN, fresh.options, str(model))
    assert "initialised" in note and "start fresh" in note  # the critics
    loaded = load_model(model, LAPGAN)
    for name in loaded.networks:
        assert any("parametrizations" in key for key, _ in networks[name].named_parameters())
        networks[name].eval()
    request = SampleRequest()
    ours = fresh.sample(networks, 3, torch.Generator().manual_seed(2), request)
    theirs = loaded.task.sample(loaded.networks, 3, torch.Generator().manual_seed(2), request)
    assert torch.allclose(ours, theirs, atol=1e-3), (ours - theirs).abs().max()


def test_eval_parzen_rows_for_samples_and_training_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gantool.lib.parzen import SIGMAS

    model = exported(tmp_path, size=16)
    held_out = write_images(tmp_path / "held-out", 10, side=16, seed=1)
    command = ["eval", "lapgan", "--model", str(model), "--data", str(held_out), "--device", "cpu", "--parzen", "10"]
    # the "training set" holds copies of the held-out images: a memorising model's score
    result = runner.invoke(app(), [*command, "--train-data", str(held_out), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["set"]: row for row in json.loads(result.output[result.output.index("["):])}
    assert list(rows) == ["samples", "training images", "training images, blurred"]
    assert all(row["centres"] == 10 for row in rows.values())
    assert all(row["sigma"] in SIGMAS and math.isfinite(row["parzen_ll"]) and row["parzen_se"] > 0
               for row in rows.values())
    copies, samples = rows["training images"], rows["samples"]
    assert copies["sigma"] == SIGMAS[0] and copies["parzen_ll"] > samples["parzen_ll"] + 1000
    assert copies["parzen_ll"] > rows["training images, blurred"]["parzen_ll"]  # blurring lost the exact copies
    table = runner.invoke(app(), command)
    text = " ".join(table.output.split())
    assert table.exit_code == 0 and "chosen on 5 images" in text and "other 5" in text
    monkeypatch.setattr("gantool_lapgan.parzen_eval.TEST", 3)  # a large folder is read only so far
    capped = runner.invoke(app(), command)
    assert capped.exit_code == 0 and "chosen on 5 images" in " ".join(capped.output.split())
    assert "its other 3" in " ".join(capped.output.split())
    alone = runner.invoke(app(), [*command, "--json"])
    assert [row["set"] for row in json.loads(alone.output[alone.output.index("["):])] == ["samples"]


def test_eval_parzen_refuses_too_many_centres_and_options_of_the_other_table(tmp_path: Path) -> None:
    model = exported(tmp_path, size=16)
    held_out = write_images(tmp_path / "held-out", 4, side=16)
    command = ["eval", "lapgan", "--model", str(model), "--data", str(held_out), "--device", "cpu"]
    result = runner.invoke(app(), [*command, "--parzen", "2000000", "--train-data", str(held_out)])
    assert result.exit_code == 2 and "--parzen 2000000 would hold 22.9 GiB of 16 px images" in result.output
    assert "at most 349525 fit the 4 GiB allowed" in " ".join(result.output.split())
    mixed = runner.invoke(app(), [*command, "--parzen", "4", "--per-class", "--neighbours", "nn.png"])
    assert mixed.exit_code == 2 and "run --per-class and --neighbours without it" in " ".join(mixed.output.split())


def test_eval_diversity_repeats_the_estimate_and_flags_a_collapsed_model(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from gantool.lib.diversity import pair_diversity
    from gantool.lib.labelled import LabelledImages
    from gantool_lapgan import diversity_eval

    model = exported(tmp_path, size=16)
    held_out = write_images(tmp_path / "held-out", 12, side=16, seed=3)
    command = ["eval", "lapgan", "--model", str(model), "--data", str(held_out), "--device", "cpu", "--diversity",
               "-n", "8", "--seed", "5"]
    monkeypatch.setattr(diversity_eval, "PAIRS", 40)
    result = runner.invoke(app(), [*command, "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["set"]: row for row in json.loads(result.output[result.output.index("["):])}
    assert list(rows) == ["samples", "real"]
    real = LabelledImages(held_out, 16).stack(8, 0)  # a flat folder: its first N images
    expected = [pair_diversity(real, 40, seed=seed) for seed in (5, 6, 7)]
    assert [rows["real"][f"ms_ssim_{i}"] for i in range(3)] == pytest.approx(expected)
    assert rows["real"]["ms_ssim"] == pytest.approx(sum(expected) / 3)

    # samples that are the real images score exactly as varied; one image repeated is far outside 10%
    monkeypatch.setattr("gantool_lapgan.evaluate.draw_samples", lambda *args, **kwargs: real.clone())
    same = " ".join(runner.invoke(app(), command).output.split())
    assert "samples / real = 1.000 (+0.0%): within 10%" in same
    monkeypatch.setattr("gantool_lapgan.evaluate.draw_samples", lambda *args, **kwargs: real[:1].repeat(8, 1, 1, 1))
    collapsed = runner.invoke(app(), [*command, "--json"])
    rows = {row["set"]: row for row in json.loads(collapsed.output[collapsed.output.index("["):])}
    assert rows["samples"]["ms_ssim"] == pytest.approx(1.0) and rows["real"]["ms_ssim"] < 0.5
    assert "outside 10%" in " ".join(runner.invoke(app(), command).output.split())


def test_eval_diversity_refuses_too_many_images_and_options_of_the_other_tables(tmp_path: Path) -> None:
    model = exported(tmp_path, size=16)
    held_out = write_images(tmp_path / "held-out", 4, side=16)
    command = ["eval", "lapgan", "--model", str(model), "--data", str(held_out), "--device", "cpu", "--diversity"]
    huge = runner.invoke(app(), [*command, "-n", "1000000000"])
    assert huge.exit_code == 2 and "would hold 5722.0 GiB of 16 px images" in " ".join(huge.output.split())
    mixed = runner.invoke(app(), [*command, "--per-class"])
    assert mixed.exit_code == 2 and "--diversity prints a table of its own" in " ".join(mixed.output.split())
    with_parzen = runner.invoke(app(), [*command, "--parzen", "4"])
    assert with_parzen.exit_code == 2 and "run --diversity without it" in " ".join(with_parzen.output.split())
