"""Named inputs: a task declaring ``image`` + ``mask`` runs through the real CLI, pairing, journal and tiling.

The task here is written only against the public API (``gantool`` and ``gantool.testing``), registered
through a plugin object, exported with ``export_model`` and run through ``build_app``, as a plugin author
would. Its ``predict`` keeps the image where the mask is 0 and paints a (nearly) constant colour where the
mask is 1, so every output pixel can be checked.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812
from torch.utils.data import Dataset
from typer.testing import CliRunner

from gantool import InputSpec, Task, TaskSpec, flag, hookimpl
from gantool.cli.app import build_app
from gantool.engine.batchplan import BatchPlan, InputItem, Job, path_key, plan_outputs
from gantool.engine.export import export_model
from gantool.engine.journal import JOURNAL_NAME, skip_reason
from gantool.engine.normstats import shrink_inputs
from gantool.engine.pairing import pair_companions
from gantool.engine.tiling import tiled_apply
from gantool.errors import OutputError, UsageError
from gantool.image.io import Image, read_image, write_image
from gantool.plugin.manager import build_plugin_system
from gantool.testing import check_task, random_image

runner = CliRunner()
FILL = (0.1, 0.8, 0.3)  # the colour the painter puts into holes (within PAINT_TOLERANCE)
PAINT_TOLERANCE = 0.08


# ---------------------------------------------------------------------------------------- the task


@dataclass(kw_only=True)
class FillOptions:
    strength: float = flag(1.0, "How much of the painted colour goes into the holes.")


@dataclass(kw_only=True)
class FillTrainOptions:
    lr: float = flag(1e-3, "Learning rate.")


class Painter(nn.Module):
    """A 3x3 conv on (holed image, mask): nearly the constant FILL colour, but it does see its neighbours."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 3, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=torch.Generator().manual_seed(0))
                                   * 0.02)
            self.conv.bias.copy_(torch.logit(torch.tensor(FILL)))

    def forward(self, holed: Tensor, mask: Tensor) -> Tensor:
        return torch.sigmoid(self.conv(torch.cat([holed, mask], dim=1)))


class Holes(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(index)
        image = torch.rand(3, 16, 16, generator=generator)
        mask = (torch.rand(1, 16, 16, generator=generator) < 0.3).float()
        return {"image": image, "mask": mask}


class FillTask(Task):
    """Keeps the image where the mask is 0 and paints where it is 1."""

    def build_networks(self) -> dict[str, nn.Module]:
        return {"generator": Painter()}

    def predict(self, networks, inputs, options=None):
        image, mask = inputs["image"], inputs["mask"]
        assert image.shape[1] == 3 and mask.shape[1] == 1, (image.shape, mask.shape)
        strength = options.strength if options is not None else 1.0
        paint = networks["generator"](image * (1 - mask), mask)
        return image * (1 - mask * strength) + mask * strength * paint

    def build_dataset(self, data: Path) -> Dataset:
        return Holes()

    def training_step(self, batch, step):
        image, mask = batch["image"], batch["mask"]
        with step.autocast():
            paint = step.networks["generator"](image * (1 - mask), mask)
            loss = F.l1_loss(paint * mask, image * mask)
        step.update("generator", loss)
        return {"l1": loss}


SPEC = TaskSpec(
    name="fill", verb="fill", summary="Fill the holes of a photo with paint (test task).",
    implementation=f"{__name__}:FillTask", infer_options=FillOptions, train_options=FillTrainOptions,
    inputs=(InputSpec("image", "Photos.", alpha="as-mask"),
            InputSpec("mask", "Holes to fill: white (1) is a hole.", channels=1)),
)


class FillPlugin:
    __name__ = "fill_plugin"

    @hookimpl
    def gantool_register_tasks(self, register):
        register(SPEC)


@pytest.fixture
def app():
    return build_app(build_plugin_system(entry_points=[], extra_plugins=[("fill", FillPlugin())]))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    task = FillTask(SPEC, FillTrainOptions())
    return export_model(tmp_path / "fill.safetensors", task, task.build_inference_networks())


# ------------------------------------------------------------------------------------------ helpers


def photo(path: Path, seed: int, size: tuple[int, int] = (24, 32), alpha: np.ndarray | None = None) -> np.ndarray:
    """Write a random photo; return its pixels as read back (JPEG is lossy)."""
    write_image(path, Image(random_image(*size, seed=seed), alpha))
    return read_image(path).color


def mask(path: Path, seed: int, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    """Write a binary gray mask (about a third holes); return it as (H, W) bools."""
    holes = np.random.default_rng(100 + seed).random(size) < 0.35
    write_image(path, Image(holes.astype(np.float32)[..., None]))
    return holes


def fill(app, *args: str | Path):
    return runner.invoke(app, ["fill", *map(str, args), "--device", "cpu", "--ext", "png"])


def check_filled(output: Path, source: np.ndarray, holes: np.ndarray) -> None:
    """Outside the holes the photo, unchanged; inside them the paint colour."""
    out = read_image(output)
    assert out.alpha is None and out.color.shape == source.shape
    np.testing.assert_allclose(out.color[~holes], source[~holes], atol=1e-6)
    assert holes.any() and np.abs(out.color[holes] - np.array(FILL)).max() < PAINT_TOLERANCE
    assert np.abs(source[holes] - np.array(FILL)).max() > 0.3  # the photo alone would not pass the check


def journal_lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / JOURNAL_NAME).read_text().splitlines()]


# -------------------------------------------------------------------------------------- through the CLI


def test_folder_of_masks_pairs_by_relative_path_and_stem(app, model, tmp_path: Path) -> None:
    photos, masks, out = tmp_path / "photos", tmp_path / "masks", tmp_path / "out"
    names = ["a", "b", os.path.join("sub", "deep", "c")]
    sources = {name: photo(photos / f"{name}.jpg", seed) for seed, name in enumerate(names)}
    holes = {name: mask(masks / f"{name}.png", seed) for seed, name in enumerate(names)}
    result = fill(app, photos, "--mask", masks, "--model", model, "-o", out, "-r")
    assert result.exit_code == 0, result.output
    for name in names:
        check_filled(out / f"{name}.png", sources[name], holes[name])


def test_one_mask_file_applies_to_every_image(app, model, tmp_path: Path) -> None:
    sources = {name: photo(tmp_path / "in" / f"{name}.png", seed) for seed, name in enumerate("xyz")}
    holes = mask(tmp_path / "holes.png", 7)
    result = fill(app, tmp_path / "in", "--mask", tmp_path / "holes.png", "--model", model, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    for name, source in sources.items():
        check_filled(tmp_path / "out" / f"{name}.png", source, holes)


def test_missing_mask_fails_that_image_only(app, model, tmp_path: Path) -> None:
    for seed, name in enumerate("abc"):
        photo(tmp_path / "in" / f"{name}.jpg", seed)
        if name != "b":
            mask(tmp_path / "masks" / f"{name}.png", seed)
    out = tmp_path / "out"
    result = fill(app, tmp_path / "in", "--mask", tmp_path / "masks", "--model", model, "-o", out)
    assert result.exit_code == 1
    expected = f"no mask for image '{tmp_path / 'in' / 'b.jpg'}' (no '{tmp_path / 'masks' / 'b.*'}')"
    assert expected in result.output
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "c.png"]


def test_mask_of_another_size_fails_naming_both_sizes(app, model, tmp_path: Path) -> None:
    photo(tmp_path / "in" / "a.png", 0)
    photo(tmp_path / "in" / "b.png", 1)
    mask(tmp_path / "masks" / "a.png", 0)
    mask(tmp_path / "masks" / "b.png", 1, size=(20, 32))
    result = fill(app, tmp_path / "in", "--mask", tmp_path / "masks", "--model", model, "-o", tmp_path / "out")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "b.png" in line and "failed" in line]
    assert len(lines) == 1 and "32x20 pixels" in lines[0] and "is 32x24" in lines[0], result.output
    assert (tmp_path / "out" / "a.png").is_file() and not (tmp_path / "out" / "b.png").exists()


def test_rerun_resumes_and_a_changed_mask_recomputes_only_its_image(app, model, tmp_path: Path) -> None:
    out = tmp_path / "out"
    sources = {name: photo(tmp_path / "in" / f"{name}.png", seed) for seed, name in enumerate("abc")}
    for seed, name in enumerate("abc"):
        mask(tmp_path / "masks" / f"{name}.png", seed)
    args = (tmp_path / "in", "--mask", tmp_path / "masks", "--model", model, "-o", out)
    assert fill(app, *args).exit_code == 0
    first = journal_lines(out)
    assert [line["status"] for line in first] == ["done"] * 3 and all("mask" in line["companions"] for line in first)

    assert fill(app, *args).exit_code == 0
    again = journal_lines(out)[len(first):]
    assert [(line["status"], line["error"]) for line in again] == [("skipped", "done earlier (journal)")] * 3

    changed = tmp_path / "masks" / "b.png"
    before = changed.stat().st_mtime_ns
    holes = mask(changed, 42)
    os.utime(changed, ns=(before + 5_000_000_000, before + 5_000_000_000))
    assert fill(app, *args).exit_code == 0
    last = journal_lines(out)[len(first) + len(again):]
    done = [Path(line["input"]).name for line in last if line["status"] == "done"]
    # a and c are skipped for the same reason as before: the journal records a skip once per (item, reason)
    assert done == ["b.png"] and sum(line["status"] == "skipped" for line in last) == 0
    check_filled(out / "b.png", sources["b"], holes)


def test_output_that_would_overwrite_a_mask_is_refused(app, model, tmp_path: Path) -> None:
    photo(tmp_path / "in" / "a.jpg", 0)
    mask(tmp_path / "masks" / "a.png", 0)
    before = (tmp_path / "masks" / "a.png").read_bytes()
    result = fill(app, tmp_path / "in", "--mask", tmp_path / "masks", "--model", model, "-o", tmp_path / "masks")
    assert result.exit_code == 1 and "would replace their mask file" in result.output
    assert (tmp_path / "masks" / "a.png").read_bytes() == before


def test_tiled_run_matches_untiled(app, model, tmp_path: Path) -> None:
    photo(tmp_path / "in" / "a.png", 0, size=(72, 96))
    mask(tmp_path / "masks" / "a.png", 0, size=(72, 96))
    outputs = {}
    for tile in ("0", "40"):
        out = tmp_path / f"out{tile}"
        result = fill(app, tmp_path / "in", "--mask", tmp_path / "masks", "--model", model, "-o", out,
                      "--tile", tile, "--tile-overlap", "16")
        assert result.exit_code == 0, result.output
        outputs[tile] = read_image(out / "a.png").color
    np.testing.assert_allclose(outputs["40"], outputs["0"], atol=1.5 / 255)


def test_transparent_areas_are_the_mask_when_no_mask_is_given(app, model, tmp_path: Path) -> None:
    alpha = np.ones((24, 32, 1), np.float32)
    alpha[4:12, 8:20] = 0.0
    source = photo(tmp_path / "in" / "cutout.png", 0, alpha=alpha)
    photo(tmp_path / "in" / "opaque.jpg", 1)  # no alpha and no --mask: nothing says where the holes are
    out = tmp_path / "out"
    result = fill(app, tmp_path / "in", "--model", model, "-o", out)
    assert result.exit_code == 1
    assert "opaque.jpg: no mask for this image (pass --mask FILE|DIR|GLOB" in " ".join(result.output.split())
    check_filled(out / "cutout.png", source, alpha[..., 0] == 0)  # opaque output, painted where transparent


def test_help_lists_the_mask_option_and_a_missing_required_input_is_a_usage_error(tmp_path: Path) -> None:
    plain = dataclasses.replace(SPEC, inputs=(InputSpec("image"), InputSpec("mask", "Holes.", channels=1)))

    class Plugin:
        @hookimpl
        def gantool_register_tasks(self, register):
            register(plain)

    app = build_app(build_plugin_system(entry_points=[], extra_plugins=[("plain", Plugin())]))
    help_text = " ".join(runner.invoke(app, ["fill", "--help"]).output.split())
    assert "--mask" in help_text and "FILE|DIR|GLOB" in help_text and "Holes." in help_text
    model = export_model(tmp_path / "m.safetensors", FillTask(plain), FillTask(plain).build_inference_networks())
    photo(tmp_path / "a.png", 0)
    result = runner.invoke(app, ["fill", str(tmp_path / "a.png"), "--model", str(model)])
    assert result.exit_code == 2 and "'fill' needs --mask FILE|DIR|GLOB" in result.output


def test_input_name_clashing_with_an_option_of_the_verb_names_both() -> None:
    @dataclass(kw_only=True)
    class Other:
        mask: str = flag("x", "An option called mask.")

    other = TaskSpec(name="other", verb="fill", summary="Shares the verb.", implementation="x:Y",
                     infer_options=Other)

    class Plugin:
        @hookimpl
        def gantool_register_tasks(self, register):
            register(SPEC)
            register(other)

    app = build_app(build_plugin_system(entry_points=[], extra_plugins=[("both", Plugin())]))
    assert any("input 'mask' clashes with option Other.mask" in problem for problem in app.problems)


def test_check_task_synthesises_every_declared_input(tmp_path: Path) -> None:
    check_task(SPEC, tmp_path, tmp_path / "run", FillTrainOptions(), steps=2)


# ---------------------------------------------------------------------------------------- the card


@pytest.mark.parametrize(("inputs", "problem"), [
    ((InputSpec("image"), InputSpec("image", channels=1)), "input name 'image' is used twice"),
    ((InputSpec("mask", channels=1), InputSpec("image")), "primary image: it must be required and have 3"),
    ((InputSpec("image"), InputSpec("model", channels=1)), "input name 'model' is reserved"),
    ((InputSpec("image"), InputSpec("strength", channels=1)), "clashes with option FillOptions.strength"),
    ((InputSpec("image", alpha="as-mask"), InputSpec("guide")), "needs exactly one 1-channel input"),
    ((InputSpec("image"), InputSpec("mask", channels=1, alpha="as-mask")), "for the primary image only"),
    ((InputSpec("image"), InputSpec("Mask-1", channels=2)), "lowercase identifier"),
    ((InputSpec("image"), InputSpec("mask", channels=2)), "channels must be 3 (RGB) or 1"),
])
def test_card_refuses_bad_inputs(inputs, problem) -> None:
    with pytest.raises(ValueError, match="invalid TaskSpec 'fill'") as error:
        dataclasses.replace(SPEC, inputs=inputs)
    assert problem in str(error.value)


def test_single_input_cards_are_unchanged() -> None:
    card = TaskSpec(name="one", verb="one", summary="One input.", implementation="x:Y")
    assert card.inputs == (InputSpec("image"),) and card.mask_input() is None
    assert SPEC.mask_input() is SPEC.inputs[1]


# ---------------------------------------------------------------------------------------------- pairing


def items_under(root: Path, *names: str) -> list[InputItem]:
    return [InputItem(root / name, Path(name), root) for name in names]


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_pairing_a_file_applies_to_every_image(tmp_path: Path) -> None:
    one = touch(tmp_path / "m.png")
    paired = pair_companions(items_under(tmp_path / "in", "a.jpg", "b.jpg"), "mask", one)
    assert [item.companions for item in paired] == [{"mask": one}, {"mask": one}]


def test_pairing_a_folder_by_relative_path_and_stem_any_extension(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    touch(masks / "a" / "b" / "x.png")
    touch(masks / "x.PNG")  # not the same relative path as a/b/x.jpg
    touch(masks / "a" / "b" / ".y.png")  # hidden
    touch(masks / "a" / "b" / "y.txt")  # not an image
    paired = pair_companions(items_under(tmp_path / "photos", "a/b/x.jpg", "a/b/y.jpg", "x.jpg"), "mask", masks)
    assert paired[0].companions == {"mask": masks / "a" / "b" / "x.png"} and paired[0].error is None
    assert paired[1].error == (f"no mask for image '{tmp_path / 'photos' / 'a/b/y.jpg'}' "
                               f"(no '{masks / 'a' / 'b' / 'y.*'}')")
    assert paired[2].companions == {"mask": masks / "x.PNG"}


def test_pairing_two_candidates_with_one_stem_fail_that_image(tmp_path: Path) -> None:
    touch(tmp_path / "masks" / "x.png")
    touch(tmp_path / "masks" / "x.jpg")
    touch(tmp_path / "masks" / "y.png")
    paired = pair_companions(items_under(tmp_path / "in", "x.jpg", "y.jpg"), "mask", tmp_path / "masks")
    assert paired[0].error is not None and paired[0].error.startswith("2 mask files match image")
    assert "x.jpg'" in paired[0].error and "x.png'" in paired[0].error and not paired[0].companions
    assert paired[1].companions == {"mask": tmp_path / "masks" / "y.png"}


def test_pairing_a_glob_by_stem_among_its_matches(tmp_path: Path) -> None:
    touch(tmp_path / "m" / "one" / "a.png")
    touch(tmp_path / "m" / "two" / "b.png")
    touch(tmp_path / "m" / "two" / "a.webp")  # not matched by the pattern
    pattern = str(tmp_path / "m" / "**" / "*.png")
    paired = pair_companions(items_under(tmp_path / "in", "sub/a.jpg", "b.jpg", "c.jpg"), "mask", pattern)
    assert paired[0].companions == {"mask": tmp_path / "m" / "one" / "a.png"}
    assert paired[1].companions == {"mask": tmp_path / "m" / "two" / "b.png"}
    assert paired[2].error is not None and "no file named 'c.*' among the files matching" in paired[2].error
    touch(tmp_path / "m" / "three" / "a.png")
    ambiguous = pair_companions(items_under(tmp_path / "in", "a.jpg"), "mask", pattern)
    assert ambiguous[0].error is not None and ambiguous[0].error.startswith("2 mask files match")


def test_pairing_keeps_failed_items_and_refuses_the_image_itself(tmp_path: Path) -> None:
    touch(tmp_path / "in" / "a.png")
    broken = InputItem(tmp_path / "gone.png", Path("gone.png"), None, "no such file")
    paired = pair_companions([broken, *items_under(tmp_path / "in", "a.png")], "mask", tmp_path / "in")
    assert paired[0] is broken
    assert paired[1].error is not None and "is the image itself" in paired[1].error


@pytest.mark.parametrize(("source", "message"), [
    ("nowhere", "no such file or folder"),
    ("*.nothing", "no image files match this pattern"),
    ("notes.txt", "is not a supported image"),
])
def test_pairing_sources_that_pair_with_nothing_are_usage_errors(tmp_path: Path, source, message) -> None:
    touch(tmp_path / "notes.txt")
    with pytest.raises(UsageError, match=f"--mask .*{message}"):
        pair_companions(items_under(tmp_path, "a.png"), "mask", str(tmp_path / source))


# ------------------------------------------------------------------------------- plan, journal, engine


def test_plan_refuses_outputs_over_any_input_file(tmp_path: Path) -> None:
    source, out = tmp_path / "in", tmp_path / "o"
    a = InputItem(source / "a.jpg", Path("a.jpg"), source, companions={"mask": out / "a.png"})
    with pytest.raises(OutputError, match="would replace their mask file"):
        plan_outputs([a], BatchPlan(output=out, ext="png"))
    b = InputItem(source / "b.jpg", Path("b.jpg"), source, companions={"mask": out / "c.png"})
    c = InputItem(source / "c.jpg", Path("c.jpg"), source)
    jobs = plan_outputs([b, c], BatchPlan(output=out, ext="png"))
    assert jobs[0].error is None and jobs[1].error == f"output '{out / 'c.png'}' would overwrite another input"


def test_old_single_input_journal_lines_stay_valid(tmp_path: Path) -> None:
    image, output = touch(tmp_path / "a.png"), touch(tmp_path / "out" / "a.png")

    def old_line(item_path: Path) -> dict:  # what a journal written before named inputs holds
        size, mtime = item_path.stat().st_size, item_path.stat().st_mtime_ns
        return {"input": path_key(item_path), "input_size": size, "input_mtime_ns": mtime,
                "output": path_key(output), "output_size": output.stat().st_size,
                "output_mtime_ns": output.stat().st_mtime_ns, "status": "done", "params": "p"}

    previous = {(path_key(image), path_key(output)): old_line(image)}
    single = Job(InputItem(image, Path("a.png")), output)
    assert skip_reason(single, previous, "p", overwrite=False) == "done earlier (journal)"
    with_mask = Job(InputItem(image, Path("a.png"), companions={"mask": touch(tmp_path / "m.png")}), output)
    assert skip_reason(with_mask, previous, "p", overwrite=False) is None  # no record of its mask: recompute


def test_tiled_apply_slices_a_dict_of_inputs_in_lockstep() -> None:
    conv = nn.Conv2d(3, 2, 3, padding=1)
    generator = torch.Generator().manual_seed(1)
    inputs = {"image": torch.rand(1, 3, 50, 70, generator=generator),
              "mask": (torch.rand(1, 1, 50, 70, generator=generator) > 0.5).float()}

    def fn(parts: dict[str, Tensor]) -> Tensor:
        return conv(parts["image"]) * (1 - parts["mask"]) + parts["mask"]

    whole = tiled_apply(fn, inputs, tile=0)
    tiled = tiled_apply(fn, inputs, tile=24, overlap=8)
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="aligned inputs"):
        tiled_apply(fn, {"image": inputs["image"], "mask": inputs["mask"][..., :60]}, tile=24)


def test_whole_image_statistics_shrink_masks_so_holes_survive() -> None:
    holes = torch.zeros(1, 1, 64, 64)
    holes[..., 10, 10] = 1.0
    small = shrink_inputs({"image": torch.ones(1, 3, 64, 64), "mask": holes}, 16, masks={"mask"})
    assert small["image"].shape[-2:] == small["mask"].shape[-2:] == (16, 16)
    assert small["mask"].max() == 1.0 and small["mask"].sum() == 1.0
    assert shrink_inputs({"mask": holes}, 16)["mask"].max() < 0.1  # area-averaged, the hole would fade
