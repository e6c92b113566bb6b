"""One copy of each small shared piece: error lines, name lists, image listing, luma, value ranges, U-Net depth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gantool.errors import InputError, UsageError, few, one_line
from gantool.image.files import list_images


def test_one_line_keeps_gantool_messages_and_names_other_exceptions() -> None:
    assert one_line(UsageError("bad flag\nsecond line")) == "bad flag"
    assert one_line(RuntimeError("boom\nmore")) == "RuntimeError: boom"
    assert one_line(KeyError()) == "KeyError"
    try:
        raise ValueError("here")
    except ValueError as error:
        located = one_line(error, location=True)
    assert located.startswith("ValueError: here (") and f"{Path(__file__).name}:" in located


def test_few_names_shows_the_first_and_counts_the_rest() -> None:
    assert few(["a", "b"]) == "a, b"
    assert few([str(i) for i in range(8)]) == "0, 1, 2, 3, 4 and 3 more"
    assert few(["a", "b", "c"], limit=2) == "a, b and 1 more"


def test_list_images_skips_hidden_and_unsupported_files(tmp_path: Path) -> None:
    for name in ("b.png", "a.JPG", "notes.txt", ".hidden.png", "sub/c.webp", ".git/d.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png"]
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["a.JPG", "b.png", "c.webp"]
    assert [p.name for p in list_images(tmp_path, extensions={".webp"}, recursive=True)] == ["c.webp"]
    with pytest.raises(InputError, match="does not exist"):
        list_images(tmp_path / "missing")


def test_training_data_and_the_batch_pipeline_share_the_lister(tmp_path: Path) -> None:
    from gantool.engine.batchplan import collect_inputs
    from gantool.lib import data

    for name in ("x.png", ".y.png", "z.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert data.list_images is list_images
    assert [item.path.name for item in collect_inputs([str(tmp_path)], recursive=False)] == ["x.png"]


def test_one_luma_definition() -> None:
    from gantool.image import color as image_color
    from gantool.lib import color as lib_color

    assert lib_color.REC601 is image_color.REC601
    assert np.allclose(image_color.LUMA, image_color.REC601)


def test_load_image_uses_the_tensor_bridge_and_luma(tmp_path: Path) -> None:
    from gantool.image.color import REC601
    from gantool.image.io import Image, read_image, write_image
    from gantool.image.tensor import to_tensor
    from gantool.lib.data import load_image

    pixels = np.random.default_rng(0).random((5, 7, 3), dtype=np.float32)
    path = write_image(tmp_path / "p.png", Image(color=pixels))
    expected = to_tensor(read_image(path).rgb())[0]
    assert torch.equal(load_image(path), expected)
    gray = load_image(path, channels=1)
    torch.testing.assert_close(gray[0], sum(w * expected[c] for c, w in enumerate(REC601)))


def test_signed_range_mapping_round_trips() -> None:
    from gantool.lib.ranges import to_signed, to_unit

    image = torch.rand(2, 3, 4, 4)
    signed = to_signed(image)
    assert signed.min() >= -1 and signed.max() <= 1 and torch.allclose(to_unit(signed), image)
    assert torch.equal(to_unit(torch.tensor([-3.0, 0.0, 3.0]), clamp=True), torch.tensor([0.0, 0.5, 1.0]))


@pytest.mark.parametrize("crop", [4, 8, 31, 32, 100, 256, 512, 4096])
def test_one_unet_depth_formula(crop: int) -> None:
    from gantool.lib.conditional import ConditionalGANOptions
    from gantool.lib.nets import geometry, unet

    assert unet.depth_for_crop is geometry.depth_for_crop
    options = ConditionalGANOptions.__new__(ConditionalGANOptions)  # skip validation: only the property
    options.crop, options.depth = crop, None
    assert options.unet_depth == unet.depth_for_crop(crop)


def test_option_groups_and_helpers_import_without_torch() -> None:
    code = ("import sys; import gantool.lib.options, gantool.lib.ranges, gantool.lib.nets.geometry, "
            "gantool.image.files, gantool.lib.conditional; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stderr
