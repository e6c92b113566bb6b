"""``gantool generate`` end to end, with a tiny generation task written only against the public API.

``Dream`` is what a plugin author would write: a linear generator from noise (plus a one-hot class, when
the model has classes) to 8x8 RGB, one generator per "level" (so its network names depend on an option,
like a LapGAN pyramid), truncation support, and a tiny GAN training step so that ``check_task`` can train
it. Models are exported with the engine's ``export_model`` and run through the real CLI.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.utils.data import Dataset
from typer.testing import CliRunner

from gantool import Task, TaskSpec, flag
from gantool.cli.app import build_app
from gantool.engine.export import export_model, load_model
from gantool.errors import CheckpointError
from gantool.image.io import read_image
from gantool.plugin.manager import build_plugin_system
from gantool.testing import TOY_SPEC, TaskCards, ToyTask, check_task

runner = CliRunner()
SIDE = 8
_file_numbers = itertools.count()


@dataclass(kw_only=True)
class DreamTrainOptions:
    latent: int = flag(4, "Noise size.")
    classes: str = flag("", "Comma-separated class names (empty: unconditional).")
    levels: int = flag(1, "Generators summed into the image: level0, level1 ...")
    dataset_size: int = flag(8, "Synthetic training images.")


class Pictures(Dataset):
    def __init__(self, size: int, classes: int) -> None:
        self.size, self.classes = size, max(classes, 1)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = torch.rand(3, SIDE, SIDE, generator=torch.Generator().manual_seed(index))
        return {"image": image, "label": torch.tensor(index % self.classes)}


class Dream(Task):
    """A tiny (class-conditional) generator; ``calls`` counts chunks drawn, across instances."""

    supports_truncation = True
    calls = 0

    def inference_network_names(self) -> tuple[str, ...]:
        return tuple(f"level{i}" for i in range(self.options.levels))

    def class_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.options.classes.split(",") if name)

    def build_networks(self) -> dict[str, nn.Module]:
        inputs = self.options.latent + len(self.class_names())
        networks: dict[str, nn.Module] = {name: nn.Linear(inputs, 3 * SIDE * SIDE)
                                          for name in self.inference_network_names()}
        networks["critic"] = nn.Linear(3 * SIDE * SIDE, 1)
        return networks

    def build_dataset(self, data: Path) -> Dataset:
        del data  # synthetic
        return Pictures(self.options.dataset_size, len(self.class_names()))

    def render(self, networks: dict[str, nn.Module], noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        classes = len(self.class_names())
        if classes:
            noise = torch.cat([noise, F.one_hot(labels, classes).to(noise.dtype)], dim=1)
        total = sum(networks[name](noise) for name in self.inference_network_names())
        return torch.sigmoid(total).view(-1, 3, SIDE, SIDE)

    def sample(self, networks, count, generator, options):
        Dream.calls += 1
        device = generator.device
        noise = torch.randn(count, self.options.latent, generator=generator, device=device)
        if options.truncation is not None:
            noise = noise.clamp(-2 * options.truncation, 2 * options.truncation)
        classes = max(len(self.class_names()), 1)
        if options.label is not None:
            labels = torch.full((count,), options.label, device=device)
        else:
            labels = torch.randint(classes, (count,), generator=generator, device=device)
        return self.render(networks, noise, labels)

    def training_step(self, batch, step):
        real, labels = batch["image"], batch["label"]
        noise = torch.randn(len(real), self.options.latent, device=real.device)
        with step.autocast():
            fake = self.render(step.networks, noise, labels)
            scores = step.networks["critic"](torch.cat([real, fake.detach()]).flatten(1))
            d_loss = F.softplus(-scores[: len(real)]).mean() + F.softplus(scores[len(real):]).mean()
        step.update("critic", d_loss)
        losses = {"d": d_loss}
        for name in self.inference_network_names():  # one forward per backward for every generator
            with step.autocast(), step.frozen("critic") as critic:
                g_loss = F.softplus(-critic(self.render(step.networks, noise, labels).flatten(1))).mean()
            step.update(name, g_loss)
            losses[name] = g_loss
        return losses


class Plain(Dream):
    """The same generator without truncation support."""

    supports_truncation = False


def card(name: str, implementation: str = "Dream", verb: str = "generate", kind: str = "sample") -> TaskSpec:
    return TaskSpec(name=name, verb=verb, summary=f"Dream up pictures ({name}).",
                    implementation=f"{__name__}:{implementation}", train_options=DreamTrainOptions,
                    kind=kind, inference_networks=("level0",))


DREAM = card("dream")
HAZE = card("haze", "Plain")


def app_with(*specs: TaskSpec):
    return build_app(build_plugin_system(entry_points=[], extra_plugins=[("dream-plugin", TaskCards(*specs))]))


def exported(tmp_path: Path, spec: TaskSpec = DREAM, **options) -> Path:
    torch.manual_seed(0)
    task = spec.load_implementation()(spec, DreamTrainOptions(**options))
    return export_model(tmp_path / f"{spec.name}-{next(_file_numbers)}.safetensors", task,
                        task.build_inference_networks())


def generate(app, model: Path, out: Path, *args: str):
    result = runner.invoke(app, ["generate", "--model", str(model), "-o", str(out), "--device", "cpu", *args])
    return result


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.glob("*.png"))}


@pytest.fixture(autouse=True)
def count_calls():
    Dream.calls = 0


# ------------------------------------------------------------------------------------ reproducible, resumable


def test_same_seed_same_files_and_a_rerun_skips_them_all(tmp_path: Path) -> None:
    app, model = app_with(DREAM), exported(tmp_path)
    first = generate(app, model, tmp_path / "out", "-n", "3", "--seed", "5")
    assert first.exit_code == 0, first.output
    files = snapshot(tmp_path / "out")
    assert list(files) == [f"dream-seed5-{i:04d}.png" for i in range(3)]
    assert len({data for data, _ in files.values()}) == 3  # three different images
    calls = Dream.calls
    again = generate(app, model, tmp_path / "out", "-n", "3", "--seed", "5")
    assert again.exit_code == 0, again.output
    assert snapshot(tmp_path / "out") == files  # same bytes, not even rewritten
    assert Dream.calls == calls and "generated 0 image(s), skipped 3 (done earlier (journal))" in again.output
    elsewhere = generate(app, model, tmp_path / "elsewhere", "-n", "3", "--seed", "5")
    assert elsewhere.exit_code == 0
    assert [data for data, _ in snapshot(tmp_path / "elsewhere").values()] == [data for data, _ in files.values()]


def test_more_images_later_computes_only_the_new_ones(tmp_path: Path) -> None:
    app, model = app_with(DREAM), exported(tmp_path)
    assert generate(app, model, tmp_path / "out", "-n", "3", "--seed", "5").exit_code == 0
    before = snapshot(tmp_path / "out")
    Dream.calls = 0
    more = generate(app, model, tmp_path / "out", "-n", "5", "--seed", "5")
    assert more.exit_code == 0, more.output
    assert "generated 2 image(s), skipped 3" in more.output and Dream.calls == 1  # one chunk drawn
    after = snapshot(tmp_path / "out")
    assert {name: after[name] for name in before} == before
    # image i is the same whatever -n is: a fresh -n 5 run gives the same five files
    assert generate(app, model, tmp_path / "fresh", "-n", "5", "--seed", "5").exit_code == 0
    assert [d for d, _ in snapshot(tmp_path / "fresh").values()] == [d for d, _ in after.values()]
    # more than one chunk: images 0-4 are still the same
    assert generate(app, model, tmp_path / "many", "-n", "11", "--seed", "5").exit_code == 0
    many = snapshot(tmp_path / "many")
    assert len({d for d, _ in many.values()}) == 11
    assert [d for d, _ in list(many.values())[:5]] == [d for d, _ in after.values()]


def test_another_seed_gives_other_images(tmp_path: Path) -> None:
    app, model = app_with(DREAM), exported(tmp_path)
    assert generate(app, model, tmp_path / "out", "-n", "2", "--seed", "5").exit_code == 0
    assert generate(app, model, tmp_path / "out", "-n", "2", "--seed", "6").exit_code == 0
    files = snapshot(tmp_path / "out")
    assert sorted(files) == ["dream-seed5-0000.png", "dream-seed5-0001.png", "dream-seed6-0000.png",
                             "dream-seed6-0001.png"]
    assert files["dream-seed5-0000.png"][0] != files["dream-seed6-0000.png"][0]
    assert files["dream-seed5-0001.png"][0] != files["dream-seed6-0001.png"][0]


def test_changed_parameters_and_foreign_files_are_kept_unless_overwrite(tmp_path: Path) -> None:
    app, model = app_with(DREAM), exported(tmp_path, classes="cat,dog")
    out = tmp_path / "out"
    assert generate(app, model, out, "-n", "2", "--class", "cat").exit_code == 0
    cats = snapshot(out)
    kept_cats = generate(app, model, out, "-n", "2", "--class", "dog")  # other parameters: not replaced
    assert kept_cats.exit_code == 0 and "made with other parameters; --overwrite to replace" in kept_cats.output
    assert all(snapshot(out)[name][0] == data for name, (data, _) in cats.items())
    dogs = generate(app, model, out, "-n", "2", "--class", "dog", "--overwrite")
    assert dogs.exit_code == 0 and "generated 2 image(s)" in dogs.output
    assert all(snapshot(out)[name][0] != data for name, (data, _) in cats.items())
    (out / "dream-seed0-0002.png").write_bytes(b"mine")  # not written by gantool: kept ...
    kept = generate(app, model, out, "-n", "3", "--class", "dog")
    assert kept.exit_code == 0 and "output exists (use --overwrite" in kept.output
    assert (out / "dream-seed0-0002.png").read_bytes() == b"mine"
    replaced = generate(app, model, out, "-n", "3", "--class", "dog", "--overwrite")  # ... unless --overwrite
    assert replaced.exit_code == 0 and "generated 3 image(s)" in replaced.output  # which recomputes all
    assert read_image(out / "dream-seed0-0002.png").color.shape == (SIDE, SIDE, 3)


def test_grid_shows_every_sample(tmp_path: Path) -> None:
    app, model = app_with(DREAM), exported(tmp_path)
    result = generate(app, model, tmp_path / "out", "-n", "5", "--seed", "1", "--grid")
    assert result.exit_code == 0, result.output
    grid = read_image(tmp_path / "out" / "dream-seed1-grid.png")
    assert grid.color.shape == (2 * SIDE + 2, 3 * SIDE + 2 * 2, 3)  # 3 columns, 2 rows, 2-pixel gaps
    first = read_image(tmp_path / "out" / "dream-seed1-0000.png").color
    fifth = read_image(tmp_path / "out" / "dream-seed1-0004.png").color
    assert (grid.color[:SIDE, :SIDE] == first).all()
    assert (grid.color[SIDE + 2:, SIDE + 2:2 * SIDE + 2] == fifth).all()
    assert not grid.color[SIDE + 2:, 2 * (SIDE + 2):].any()  # the sixth cell is empty
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        *(f"dream-seed1-{i:04d}.png" for i in range(5)), "dream-seed1-grid.png"]


def test_grids_of_square_cells_are_ceil_sqrt_wide_and_strips_stack() -> None:
    from gantool.engine.sampling import grid_columns

    assert [grid_columns(n, 16, 16) for n in (1, 2, 5, 9, 10, 64, 65)] == [1, 2, 3, 3, 4, 8, 9]
    assert grid_columns(8, 32, 8 * 32) == 1  # 8 strips of 8 frames: one per row, a square grid
    assert grid_columns(8, 64, 3 * 64) == 2  # pyramid strips of three levels: 4 rows of 2


# ---------------------------------------------------------------------------------------- class, truncation


def test_class_by_name_or_index_reaches_sample(tmp_path: Path) -> None:
    app, model = app_with(DREAM), exported(tmp_path, classes="cat,dog,bird")
    for folder, label in (("name", "dog"), ("index", "1"), ("bird", "bird")):
        assert generate(app, model, tmp_path / folder, "-n", "2", "--class", label).exit_code == 0
    name, index, bird = (snapshot(tmp_path / f) for f in ("name", "index", "bird"))
    assert [d for d, _ in name.values()] == [d for d, _ in index.values()]
    assert [d for d, _ in name.values()] != [d for d, _ in bird.values()]


def test_unknown_class_is_a_one_line_usage_error_listing_the_classes(tmp_path: Path) -> None:
    app, model = app_with(DREAM), exported(tmp_path, classes="cat,dog,bird")
    for label in ("zebra", "3"):
        result = generate(app, model, tmp_path / "out", "--class", label)
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert f"--class {label!r} is not a class" in result.output and "cat, dog, bird" in result.output
    assert "did you mean 'bird'" in generate(app, model, tmp_path / "out", "--class", "brid").output
    assert not (tmp_path / "out").exists() and Dream.calls == 0
    unconditional = generate(app, exported(tmp_path), tmp_path / "out", "--class", "cat")
    assert unconditional.exit_code == 2 and "not class-conditional" in unconditional.output


def test_truncation_goes_to_tasks_that_support_it_only(tmp_path: Path) -> None:
    app = app_with(DREAM, HAZE)
    model = exported(tmp_path)
    assert generate(app, model, tmp_path / "free", "-n", "2").exit_code == 0
    assert generate(app, model, tmp_path / "tight", "-n", "2", "--truncation", "0.1").exit_code == 0
    assert [d for d, _ in snapshot(tmp_path / "free").values()] != [d for d, _ in snapshot(tmp_path / "tight").values()]
    for value in ("0", "1.5"):
        bad = generate(app, model, tmp_path / "bad", "--truncation", value)
        assert bad.exit_code == 2 and "must be in (0, 1]" in bad.output
    unsupported = generate(app, exported(tmp_path, HAZE), tmp_path / "haze", "--truncation", "0.5")
    assert unsupported.exit_code == 2 and len(unsupported.output.strip().splitlines()) == 1
    assert "'haze' does not support --truncation" in unsupported.output


# ------------------------------------------------------------------------------------------- shared verbs


def test_two_sample_tasks_share_generate_and_the_model_file_picks(tmp_path: Path) -> None:
    app = app_with(DREAM, HAZE)
    assert app.problems == []
    help_text = runner.invoke(app, ["--help"]).output
    assert "Generate with a dream or haze model" in help_text and help_text.count("generate") == 1
    for spec in (DREAM, HAZE):
        result = generate(app, exported(tmp_path, spec), tmp_path / "out", "-n", "1")
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["dream-seed0-0000.png",
                                                                         "haze-seed0-0000.png"]
    bare = runner.invoke(app, ["generate", "-o", str(tmp_path / "x")])
    assert bare.exit_code == 2 and "needs --model: it runs dream or haze models" in bare.output


def test_a_verb_of_two_kinds_is_left_out_naming_both_tasks() -> None:
    image_task = TaskSpec(name="brighten", verb="generate", summary="Brighten images.",
                          implementation="gantool.testing:ToyTask")
    app = app_with(DREAM, image_task)
    [problem] = app.problems
    assert problem.startswith("verb 'generate' left out: claimed by tasks of two kinds")
    assert "image-to-image task(s) 'brighten'" in problem and "sample task(s) 'dream'" in problem
    assert runner.invoke(app, ["generate", "--help"]).exit_code == 2  # no such command


def test_a_model_of_another_kind_points_to_its_verb(tmp_path: Path) -> None:
    app = app_with(DREAM, card("wake", verb="wake"))
    result = generate(app, exported(tmp_path, card("wake", verb="wake")), tmp_path / "out")
    assert result.exit_code == 2 and "run it with `gantool wake`" in result.output


# ------------------------------------------------------------------------------ per-model facts, contract


def test_inference_network_names_drive_training_export_and_loading(tmp_path: Path) -> None:
    check_task(DREAM, tmp_path, tmp_path / "run", DreamTrainOptions(levels=2, classes="a,b"))
    model = tmp_path / "run" / "model.safetensors"
    loaded = load_model(model, DREAM)
    assert json.loads(loaded.metadata["gantool.inference_networks"]) == ["level0", "level1"]
    assert sorted(loaded.networks) == ["level0", "level1"]  # exactly those: no critic
    assert loaded.task.class_names() == ("a", "b")
    [checkpoint] = (tmp_path / "run").glob("step-*")
    assert {key.split(".")[0] for key in load_file(str(checkpoint / "ema.safetensors"))} == {"level0", "level1"}


def test_a_file_whose_networks_disagree_with_its_options_is_refused(tmp_path: Path) -> None:
    good = load_model(exported(tmp_path, levels=2), DREAM)
    tensors = {f"{name}.{key}": value for name, net in good.networks.items() for key, value in net.state_dict().items()}
    forged = dict(good.metadata, **{"gantool.inference_networks": json.dumps(["level0"])})
    save_file(tensors, str(tmp_path / "forged.safetensors"), metadata=forged)
    with pytest.raises(CheckpointError, match=r"stores networks \['level0'\].*expects \['level0', 'level1'\]"):
        load_model(tmp_path / "forged.safetensors", DREAM)


def test_a_sample_task_without_sample_fails_clearly() -> None:
    task = Task(DREAM, DreamTrainOptions())
    with pytest.raises(NotImplementedError, match=r"Task must implement sample\(networks, count, generator"):
        task.sample({}, 1, torch.Generator(), None)
    assert task.class_names() == () and task.supports_truncation is False
    assert task.inference_network_names() == ("level0",) and task.scale == 1


class DoubleToy(ToyTask):
    """An image task whose scale comes from its options, as superres's does."""

    @property
    def scale(self) -> int:
        return 2


class LyingToy(ToyTask):
    """Writes another gantool.scale than its own: what check_task must catch."""

    def export_metadata(self) -> dict[str, str]:
        return {**super().export_metadata(), "gantool.scale": "3"}


def test_export_writes_the_tasks_own_scale_and_check_task_compares_it(tmp_path: Path) -> None:
    task = DoubleToy(TOY_SPEC)
    model = export_model(tmp_path / "x2.safetensors", task, task.build_inference_networks())
    loaded = load_model(model, TOY_SPEC)
    assert loaded.metadata["gantool.scale"] == "2" and loaded.scale == 2 and TOY_SPEC.scale == 1
    lying = TaskSpec(name="toy", verb="brighten", summary="Toy.", implementation=f"{__name__}:LyingToy",
                     train_options=TOY_SPEC.train_options)
    with pytest.raises(AssertionError, match="gantool.scale '3' but the rebuilt task's scale is 1"):
        check_task(lying, tmp_path, tmp_path / "run")
